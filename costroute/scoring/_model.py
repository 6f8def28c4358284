"""What the transformers-backed scorers share: model source, device, dtype, loading and cost.

Weights load on first :meth:`~ModelScorer.load` (which :meth:`~costroute.scoring.Scorer.score`
calls) into the shared, bounded :data:`costroute.generators.pipeline_cache`, keyed by
(scorer class, model, processor, dtype, device, load arguments): scorers that differ only
in name, batch size or output share one loaded copy, and loading one more model than the
cache holds evicts the least recently used one (a generator pipeline or a scorer).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..generators import pipeline_cache
from ..generators._loading import check_hub_sources, known_notices_filtered
from ._base import Scorer

__all__ = ["ModelScorer"]

_DTYPES = {
    "auto": "auto",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
}
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?|xpu(:\d+)?)$")


def looks_like_path(model: str) -> bool:
    """Whether ``model`` names a local folder rather than a hub id ("org/name")."""
    return (
        os.path.isabs(model)
        or model.startswith((".", "~"))
        or "\\" in model
        or model.count("/") > 1
        or os.path.exists(os.path.expanduser(model))
    )


def check_source(value: Any, what: str) -> str:
    """A hub id as given, or a local folder (holding a config file) as an absolute path."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"{what} must be a hub id ('org/name') or a local folder, got {value!r}")
    if not looks_like_path(value):
        return value
    folder = os.path.abspath(os.path.expanduser(value))
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"{what} folder {value!r} does not exist; pass a folder written by save_pretrained or a hub id"
        )
    if not any(
        os.path.isfile(os.path.join(folder, f))
        for f in ("config.json", "processor_config.json", "preprocessor_config.json", "tokenizer_config.json")
    ):
        raise FileNotFoundError(
            f"{what} folder {value!r} holds no config.json, processor or tokenizer files; pass a "
            "folder written by save_pretrained"
        )
    return folder


def check_device(device: Any) -> str:
    """'auto', 'cpu', 'cuda', 'cuda:N', 'mps', 'xpu[:N]' or a torch.device, as a string."""
    if type(device).__module__ == "torch":  # a torch.device, without importing torch
        device = str(device)
    if not isinstance(device, str) or not _DEVICE.match(device):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N', 'mps' or a torch.device, got {device!r}")
    return device


def check_dtype(dtype: Any) -> str:
    """A dtype name from ``_DTYPES`` (or a torch.dtype), normalised."""
    if type(dtype).__module__ == "torch":
        dtype = str(dtype).removeprefix("torch.")
    if not isinstance(dtype, str) or dtype.lower() not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(set(_DTYPES))} or a torch.dtype, got {dtype!r}")
    return _DTYPES[dtype.lower()]


def resolve_device(device: str) -> str:
    """The device to load on: "auto" is CUDA when available, else CPU; an unavailable one is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available on this machine; use device='auto' or 'cpu'")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device='mps' but MPS is not available on this machine; use device='auto' or 'cpu'")
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    """ "auto" is float16 on CUDA and float32 elsewhere."""
    if dtype != "auto":
        return dtype
    return "float16" if device.startswith("cuda") else "float32"


def dtype_kwargs(dtype: str) -> dict:
    """``{"dtype": ...}`` for transformers that renamed ``torch_dtype`` (4.56+), else ``{"torch_dtype": ...}``."""
    import torch
    import transformers
    from packaging.version import Version

    key = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
    return {key: getattr(torch, dtype)}


def without_progress_bars(loader):
    """Run ``loader()`` with transformers' progress bars (loading, saving) off, restored afterwards."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return loader()
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def to_rgb(image: Any, index: int) -> Any:
    """A PIL RGB image from a PIL image or an ``(H, W)``/``(H, W, 3|4)`` array (uint8, or floats in [0, 1])."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    if isinstance(image, np.ndarray):
        array = image
        if array.ndim == 3 and array.shape[2] in (3, 4) and array.shape[0] > 0 and array.shape[1] > 0:
            array = array[:, :, :3]
        elif not (array.ndim == 2 and array.size):
            raise ValueError(f"images[{index}] must be an (H, W, 3) or (H, W) array, got shape {array.shape}")
        if array.dtype == np.uint8:
            pixels = array
        elif np.issubdtype(array.dtype, np.floating):
            if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 1:
                raise ValueError(f"images[{index}] is a float array; its values must lie in [0, 1]")
            pixels = np.round(array * 255).astype(np.uint8)
        else:
            raise TypeError(f"images[{index}] must hold uint8 values or floats in [0, 1], got dtype {array.dtype}")
        return Image.fromarray(pixels).convert("RGB")
    hint = " (a missing image?)" if image is None else ""
    raise TypeError(
        f"images[{index}] must be a PIL image or an (H, W, 3) array, got "
        f"{type(image).__name__}{hint}; open files with PIL.Image.open(path)"
    )


class ModelScorer(Scorer):
    """A scorer backed by a transformers model and processor (abstract).

    Subclasses implement :meth:`_load_model` (return the loaded object kept in the cache)
    and :meth:`_score_batch`. See :class:`~costroute.scoring.CLIPScorer` for the parameters.
    """

    _default_batch_size = 16
    _prefix = "scorer"

    def __init__(
        self,
        model: str | os.PathLike,
        *,
        processor: str | os.PathLike | None = None,
        name: str | None = None,
        batch_size: int | None = None,
        device: Any = "auto",
        dtype: Any = "auto",
        cost: float | None = None,
        cost_unit: str = "flops",
        price_model: Any = None,
        load_kwargs: Mapping[str, Any] | None = None,
    ):
        self.model = check_source(model, "model")
        self.processor = None if processor is None else check_source(processor, "processor")
        if name is None:
            name = f"{self._prefix}:{os.path.basename(self.model.rstrip('/')) or self.model}"
        super().__init__(
            name,
            cost=cost,
            cost_unit=cost_unit,
            price_model=price_model,
            batch_size=self._default_batch_size if batch_size is None else batch_size,
        )
        self.device = check_device(device)
        self.dtype = check_dtype(dtype)
        if load_kwargs is not None and not isinstance(load_kwargs, Mapping):
            raise TypeError(f"load_kwargs must be a dict of from_pretrained arguments, got {load_kwargs!r}")
        self.load_kwargs = dict(load_kwargs or {})

    # ------------------------------------------------------------------ cost
    def cost_breakdown(self):
        """FLOPs per image by part (a :class:`~costroute.scoring.ScorerCost`), counted from the model's config.

        The config is the local folder's ``config.json``, the shipped published config of a
        known hub id (:data:`~costroute.scoring.KNOWN_SCORER_MODELS`) or the one in the
        local Hugging Face cache; nothing is downloaded and no weights are loaded.

        Raises
        ------
        ValueError
            No config can be found, or its model type cannot be counted; pass ``cost=``.
        """
        from ._costs import KNOWN_SCORER_MODELS, config_for, scorer_cost

        config = config_for(self.model)
        if config is None:
            raise ValueError(
                f"cannot count the cost of scorer {self.name!r}: {self.model!r} is not a local folder, not in the "
                f"local Hugging Face cache and not a known hub id ({sorted(KNOWN_SCORER_MODELS)}); pass an explicit "
                "cost= (in cost_unit) instead"
            )
        return scorer_cost(config, **self._cost_kwargs())

    def _cost_kwargs(self) -> dict:
        return {}

    def _counted_flops(self) -> float:
        return float(self.cost_breakdown().total)

    # ------------------------------------------------------------------ loading
    def _load_key(self) -> tuple:
        device = resolve_device(self.device)
        dtype = resolve_dtype(self.dtype, device)
        return (
            "scorer",
            type(self).__name__,
            self.model,
            self.processor,
            dtype,
            device,
            repr(sorted(self.load_kwargs.items())),
        )

    def _load_model(self, model: str, processor: str, dtype: str, device: str) -> Any:
        raise NotImplementedError

    def load(self) -> Any:
        """The loaded model and processor, from the shared cache or freshly loaded into it.

        Raises
        ------
        ValueError
            The device is not available (for example ``"cuda"`` on a machine without CUDA).
        OSError
            The model or processor cannot be loaded (the message names them).
        """
        key = self._load_key()
        _, _, model, processor, dtype, device, _ = key
        return pipeline_cache.get(key, lambda: self._load_checked(model, processor or model, dtype, device))

    def _load_checked(self, model: str, processor: str, dtype: str, device: str) -> Any:
        try:
            check_hub_sources([s for s in (model, processor) if not looks_like_path(s)])
            with known_notices_filtered():
                return without_progress_bars(lambda: self._load_model(model, processor, dtype, device))
        except (OSError, ValueError) as exc:
            where = "local folder" if os.path.isdir(model) else "hub id"
            raise OSError(
                f"scorer {self.name!r} could not load model {model!r} ({where}) with processor "
                f"{processor!r} (dtype={dtype}, device={device}): {exc}"
            ) from exc

    def _from_pretrained(self, cls: Any, source: str, **kwargs: Any) -> Any:
        if os.path.isdir(source):
            kwargs["local_files_only"] = True
        return cls.from_pretrained(source, **kwargs)

    def unload(self) -> None:
        """Drop this scorer's model from the shared cache (frees its memory)."""
        pipeline_cache.evict(self._load_key())

    @property
    def loaded(self) -> bool:
        """Whether the model is in the shared cache now."""
        return self._load_key() in pipeline_cache

    def _prepare_images(self, images: list) -> list:
        return [to_rgb(image, i) for i, image in enumerate(images)]

    def _to_device(self, inputs: Mapping[str, Any], model: Any) -> dict:
        """Processor outputs on the model's device; floating tensors in the model's dtype."""
        out = {}
        for key, value in inputs.items():
            if hasattr(value, "to") and hasattr(value, "is_floating_point"):
                value = (
                    value.to(model.device, dtype=model.dtype) if value.is_floating_point() else value.to(model.device)
                )
            out[key] = value
        return out

    def _params(self) -> dict[str, Any]:
        params = {"model": self.model}
        if self.processor is not None:
            params["processor"] = self.processor
        params.update(super()._params())
        params.update(device=self.device, dtype=self.dtype)
        if self.load_kwargs:
            params["load_kwargs"] = self.load_kwargs
        return params
