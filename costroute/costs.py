"""Cost per image of text-to-image generators: FLOPs counted from real architectures, and prices.

Everything here is counted, not guessed:

* :func:`count_flops` runs **one forward pass** of a module under
  :class:`torch.utils.flop_counter.FlopCounterMode` (a multiply-add counts as 2 FLOPs;
  attention matmuls included, elementwise ops, norms and softmax not counted, as in
  PyTorch's counter).
* The shipped architectures are the published ``config.json`` files of the real models
  (``costroute/configs/<arch>/<component>.json``, provenance in ``_source.json`` next to
  them). Models are built on the ``meta`` device from those configs, so no weights and no
  memory are needed, and counted at the shapes a diffusers pipeline feeds them.
* :func:`pipeline_cost` adds the components of one image: text encoder(s) once, the
  denoiser ``steps x (2 if guidance else 1)`` times (classifier-free guidance doubles the
  denoiser batch), and the VAE decoder once. DeepFloyd IF is two pixel-space stages.
* :class:`GPUPriceModel` turns FLOPs into US dollars with a stated hourly price and a
  stated utilisation of the GPU's dense peak.

Importing this module does not import torch, diffusers or transformers.

Examples
--------
>>> from costroute.costs import pipeline_cost
>>> cost = pipeline_cost("sd15", steps=50)            # doctest: +SKIP
>>> round(cost.total / 1e12)                           # doctest: +SKIP
83
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from typing import Any

__all__ = [
    "ARCHITECTURES",
    "COMPONENTS",
    "DEFAULT_PRICE_MODEL",
    "ComponentCost",
    "GPUPriceModel",
    "PipelineCost",
    "component_cost",
    "cost_from_pretrained",
    "count_flops",
    "count_parameters",
    "diffusion_cost_from_configs",
    "load_config",
    "pipeline_cost",
]

#: Architectures whose published component configs ship with costroute.
ARCHITECTURES: tuple[str, ...] = ("sd15", "sd21", "sdxl", "deepfloyd_if", "pixart_alpha")

#: Components shipped for each architecture (``load_config(arch, component)``).
COMPONENTS: Mapping[str, tuple[str, ...]] = {
    "sd15": ("unet", "vae", "text_encoder"),
    "sd21": ("unet", "vae", "text_encoder"),
    "sdxl": ("unet", "vae", "text_encoder", "text_encoder_2"),
    "deepfloyd_if": ("unet_stage1", "unet_stage2", "text_encoder"),
    "pixart_alpha": ("transformer", "vae", "text_encoder"),
}

#: Native resolution (pixels, square) of each architecture; the default of ``pipeline_cost``.
NATIVE_RESOLUTION: Mapping[str, int] = {
    "sd15": 512,
    "sd21": 768,
    "sdxl": 1024,
    "deepfloyd_if": 256,
    "pixart_alpha": 1024,
}

#: diffusers' default number of denoising steps of each architecture's pipeline
#: (``StableDiffusionPipeline``/``StableDiffusionXLPipeline``: 50, ``PixArtAlphaPipeline``: 20,
#: ``IFPipeline``: 100 and ``IFSuperResolutionPipeline``: 50).
DEFAULT_STEPS: Mapping[str, int | tuple[int, int]] = {
    "sd15": 50,
    "sd21": 50,
    "sdxl": 50,
    "deepfloyd_if": (100, 50),
    "pixart_alpha": 20,
}

#: Text tokens the pipelines encode: CLIP pads to 77, IF's T5 to 77, PixArt-alpha's T5 to 120.
TEXT_TOKENS: Mapping[str, int] = {"clip": 77, "t5_if": 77, "t5_pixart": 120}

_IF_STAGE1_RESOLUTION = 64


# --------------------------------------------------------------------------------------
# counting primitives
# --------------------------------------------------------------------------------------
def _owner_module(fn: Any) -> Any:
    import torch

    if isinstance(fn, torch.nn.Module):
        return fn
    owner = getattr(fn, "__self__", None)
    return owner if isinstance(owner, torch.nn.Module) else None


def _iter_tensors(obj: Any):
    import torch

    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, Mapping):
        for value in obj.values():
            yield from _iter_tensors(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _iter_tensors(value)


def _runs_on_meta(fn: Any, args: tuple, kwargs: dict) -> bool:
    owner = _owner_module(fn)
    if owner is not None:
        for tensor in list(owner.parameters()) + list(owner.buffers()):
            return tensor.is_meta
    for tensor in _iter_tensors((args, kwargs)):
        return tensor.is_meta
    return False


def count_flops(module: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Total FLOPs of one forward call, attention included (multiply-add = 2 FLOPs).

    The call runs under :func:`torch.no_grad` and
    :class:`torch.utils.flop_counter.FlopCounterMode`. On the ``meta`` device the fused
    scaled-dot-product-attention op is counted directly. On real tensors PyTorch's CPU
    SDPA kernel is invisible to the counter, so the call is made with the math backend
    (``torch.nn.attention.sdpa_kernel(SDPBackend.MATH)``), whose matmuls are counted:
    both ways give the same number.

    Parameters
    ----------
    module : callable
        A :class:`torch.nn.Module` or a bound method of one (for example
        ``vae.decode``). Build it on ``torch.device("meta")`` to count without weights.
    *args, **kwargs
        Inputs of the call, on the module's device.

    Returns
    -------
    int
        Total FLOPs counted.

    Examples
    --------
    >>> import torch
    >>> from costroute.costs import count_flops
    >>> count_flops(torch.nn.Linear(8, 4), torch.zeros(2, 8))
    128
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    if not callable(module):
        raise TypeError(f"module must be a torch.nn.Module or a callable, got {type(module).__name__}")
    on_meta = _runs_on_meta(module, args, kwargs)
    counter = FlopCounterMode(display=False)
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.no_grad())
        if not on_meta:
            from torch.nn.attention import SDPBackend, sdpa_kernel

            stack.enter_context(sdpa_kernel(SDPBackend.MATH))
        stack.enter_context(counter)
        module(*args, **kwargs)
    return int(counter.get_total_flops())


def count_parameters(module: Any) -> int:
    """Number of parameters of a :class:`torch.nn.Module` (works on the meta device).

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    int

    Examples
    --------
    >>> import torch
    >>> from costroute.costs import count_parameters
    >>> count_parameters(torch.nn.Linear(8, 4))
    36
    """
    parameters = getattr(module, "parameters", None)
    if parameters is None:
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    return int(sum(p.numel() for p in parameters()))


# --------------------------------------------------------------------------------------
# shipped configs
# --------------------------------------------------------------------------------------
def _check_arch(arch: Any) -> str:
    if arch not in COMPONENTS:
        raise ValueError(f"unknown architecture {arch!r}; valid architectures are {list(ARCHITECTURES)}")
    return arch


@functools.lru_cache(maxsize=None)
def _read_config_text(arch: str, component: str) -> str:
    return resources.files("costroute").joinpath("configs", arch, f"{component}.json").read_text(encoding="utf-8")


def load_config(arch: str, component: str) -> dict:
    """The published ``config.json`` of one component of a shipped architecture.

    Parameters
    ----------
    arch : {"sd15", "sd21", "sdxl", "deepfloyd_if", "pixart_alpha"}
        Architecture name (see :data:`ARCHITECTURES`).
    component : str
        Component name, one of ``COMPONENTS[arch]`` (for example ``"unet"``, ``"vae"``,
        ``"text_encoder"``, ``"text_encoder_2"``, ``"unet_stage1"``, ``"transformer"``).

    Returns
    -------
    dict
        A fresh copy of the configuration (mutating it does not affect later calls).

    Raises
    ------
    ValueError
        If the architecture or component is unknown; the message lists the valid ones.

    Examples
    --------
    >>> from costroute.costs import load_config
    >>> load_config("sd15", "unet")["cross_attention_dim"]
    768
    """
    _check_arch(arch)
    if component not in COMPONENTS[arch]:
        raise ValueError(
            f"unknown component {component!r} for architecture {arch!r}; valid components are {list(COMPONENTS[arch])}"
        )
    return json.loads(_read_config_text(arch, component))


def _config_key(config: Mapping[str, Any]) -> str:
    """Canonical JSON text of a config without metadata keys (hashable cache key)."""
    clean = {k: v for k, v in config.items() if k not in ("_name_or_path", "_commit_hash", "_use_default_values")}
    return json.dumps(clean, sort_keys=True, default=str)


# --------------------------------------------------------------------------------------
# per-component counting (cached)
# --------------------------------------------------------------------------------------
_CLIP_KINDS = ("CLIPTextModel", "CLIPTextModelWithProjection")
_T5_KINDS = ("T5EncoderModel",)
_TRANSFORMER_KINDS = ("PixArtTransformer2DModel", "Transformer2DModel")
_KINDS = ("UNet2DConditionModel", "AutoencoderKL") + _TRANSFORMER_KINDS + _CLIP_KINDS + _T5_KINDS


def _kind_of(config: Mapping[str, Any]) -> str:
    """Model class of a diffusers/transformers config dict."""
    kind = config.get("_class_name")
    if kind is None:
        archs = config.get("architectures") or []
        kind = archs[0] if archs else None
    if kind is None:
        model_type = config.get("model_type")
        kind = {"clip_text_model": "CLIPTextModel", "t5": "T5EncoderModel"}.get(model_type)
    if kind is None:  # an in-memory diffusers config (``dict(model.config)``) has no class name
        if config.get("norm_type") == "ada_norm_single":
            kind = "PixArtTransformer2DModel"
        elif "cross_attention_dim" in config and "block_out_channels" in config:
            kind = "UNet2DConditionModel"
        elif "latent_channels" in config and "up_block_types" in config:
            kind = "AutoencoderKL"
    if kind not in _KINDS:
        raise ValueError(f"cannot cost a component of class {kind!r}; supported classes are {list(_KINDS)}")
    return kind


#: Set ``COSTROUTE_FLOPS_CACHE=0`` to count every component afresh instead of reading counts
#: that an earlier process saved in the data home (``flop-counts.json``).
_DISK_CACHE_ENV = "COSTROUTE_FLOPS_CACHE"


def _disk_cache_path():
    if os.environ.get(_DISK_CACHE_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    from .datasets._base import get_data_home

    try:
        return get_data_home() / "flop-counts.json"
    except OSError:
        return None


def _disk_cache_key(kind: str, config_key: str, shape: tuple) -> str:
    import hashlib

    import torch

    text = json.dumps([kind, config_key, list(shape), torch.__version__], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@functools.lru_cache(maxsize=256)
def _count_component(kind: str, config_key: str, shape: tuple) -> tuple[int, int]:
    """(FLOPs of one batch-1 forward, parameters) of a component at an input shape.

    Counting builds the model on the meta device and takes seconds for the large ones, so
    results are also kept on disk, keyed by the config, the input shape and the torch
    version, and re-used by later processes (disable with ``COSTROUTE_FLOPS_CACHE=0``).
    """
    path = _disk_cache_path()
    if path is None:
        return _count_component_now(kind, config_key, shape)
    key = _disk_cache_key(kind, config_key, shape)
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        saved = {}
    if key in saved:
        flops, params = saved[key]
        return int(flops), int(params)
    result = _count_component_now(kind, config_key, shape)
    saved[key] = list(result)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(saved))
        os.replace(tmp, path)
    except OSError:
        pass
    return result


def _count_component_now(kind: str, config_key: str, shape: tuple) -> tuple[int, int]:
    import torch

    config = json.loads(config_key)
    meta = torch.device("meta")
    with torch.device(meta):
        if kind == "UNet2DConditionModel":
            from diffusers import UNet2DConditionModel

            model = UNet2DConditionModel.from_config(config)
            height, width, text_tokens, text_dim, pooled_dim = shape
            in_channels = config.get("in_channels", 4)
            kwargs: dict[str, Any] = {
                "sample": torch.empty(1, in_channels, height, width),
                "timestep": torch.tensor([999]),
                "encoder_hidden_states": torch.empty(1, text_tokens, text_dim),
                "return_dict": False,
            }
            if config.get("class_embed_type") == "timestep":  # IF stage II: noise level of the low-res image
                kwargs["class_labels"] = torch.tensor([250])
            if config.get("addition_embed_type") == "text_time":  # SDXL micro-conditioning
                kwargs["added_cond_kwargs"] = {
                    "text_embeds": torch.empty(1, pooled_dim),
                    "time_ids": torch.empty(1, 6),
                }
            flops = count_flops(model, **kwargs)
        elif kind == "AutoencoderKL":
            from diffusers import AutoencoderKL

            model = AutoencoderKL.from_config(config)
            height, width = shape
            latent = torch.empty(1, config.get("latent_channels", 4), height, width)
            flops = count_flops(model.decode, latent, return_dict=False)
        elif kind in _TRANSFORMER_KINDS:
            from diffusers import PixArtTransformer2DModel

            if config.get("norm_type") != "ada_norm_single":
                raise ValueError(
                    f"only PixArt-style transformers (norm_type='ada_norm_single') can be costed, got {config.get('norm_type')!r}"
                )
            model = PixArtTransformer2DModel.from_config(config)
            height, width, text_tokens = shape
            added = {"resolution": None, "aspect_ratio": None}
            if model.use_additional_conditions:
                added = {"resolution": torch.empty(1, 2), "aspect_ratio": torch.empty(1, 1)}
            flops = count_flops(
                model,
                torch.empty(1, config.get("in_channels", 4), height, width),
                encoder_hidden_states=torch.empty(1, text_tokens, config.get("caption_channels", 4096)),
                timestep=torch.tensor([999]),
                added_cond_kwargs=added,
                return_dict=False,
            )
        elif kind in _CLIP_KINDS:
            from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

            cls = CLIPTextModelWithProjection if kind == "CLIPTextModelWithProjection" else CLIPTextModel
            model = cls(CLIPTextConfig(**config))
            (text_tokens,) = shape
            flops = count_flops(model, input_ids=torch.zeros(1, text_tokens, dtype=torch.long))
        else:
            from transformers import T5Config, T5EncoderModel

            model = T5EncoderModel(T5Config(**config))
            (text_tokens,) = shape
            flops = count_flops(model, input_ids=torch.zeros(1, text_tokens, dtype=torch.long))
        params = count_parameters(model)
    del model
    return int(flops), int(params)


@dataclasses.dataclass(frozen=True)
class ComponentCost:
    """Cost of one pipeline component for one image.

    Attributes
    ----------
    name : str
        Component name (``"unet"``, ``"vae_decode"``, ``"text_encoder"``, ...).
    model_class : str
        The diffusers/transformers class that was counted.
    flops_per_call : int
        FLOPs of one batch-1 forward at ``input_shape``.
    calls : int
        Batch-1 forwards per image (for a denoiser: steps x 2 with guidance).
    params : int
        Parameters of the component.
    input_shape : tuple
        The shape key the component was counted at (latent/pixel height and width, tokens).
    """

    name: str
    model_class: str
    flops_per_call: int
    calls: int
    params: int
    input_shape: tuple

    @property
    def flops(self) -> int:
        """FLOPs of this component per image (``flops_per_call * calls``)."""
        return self.flops_per_call * self.calls

    def to_dict(self) -> dict:
        """Plain-Python view (JSON-serialisable)."""
        return {
            "model_class": self.model_class,
            "flops_per_call": self.flops_per_call,
            "calls": self.calls,
            "flops": self.flops,
            "params": self.params,
            "input_shape": list(self.input_shape),
        }


def component_cost(
    config: Mapping[str, Any],
    *,
    name: str | None = None,
    calls: int = 1,
    height: int | None = None,
    width: int | None = None,
    text_tokens: int | None = None,
    text_dim: int | None = None,
    pooled_dim: int | None = None,
) -> ComponentCost:
    """Count one component built from its ``config.json`` on the meta device.

    Counts are cached in-process by (config hash, input shape), so repeating a call is
    instant, and on disk in the data home (``flop-counts.json``, keyed also by the torch
    version) so later processes skip the count; ``COSTROUTE_FLOPS_CACHE=0`` disables the
    disk cache.

    Parameters
    ----------
    config : mapping
        A diffusers/transformers config dict. Supported classes: ``UNet2DConditionModel``
        (SD, SDXL with ``text_time`` conditioning, DeepFloyd IF), ``AutoencoderKL`` (decoder
        only), PixArt ``Transformer2DModel``/``PixArtTransformer2DModel``, ``CLIPTextModel``,
        ``CLIPTextModelWithProjection`` and ``T5EncoderModel``.
    name : str, optional
        Name recorded in the result; defaults to the class name.
    calls : int, default=1
        Batch-1 forwards per image.
    height, width : int
        Spatial size of the component's input: latent size for a UNet/transformer/VAE
        decoder (pixels / 8 for SD-family VAEs), pixel size for a pixel-space UNet.
        Not used by text encoders.
    text_tokens : int
        Number of text tokens (encoder input length, or cross-attention context length).
    text_dim : int
        Width of the cross-attention context fed to a UNet.
    pooled_dim : int
        Width of SDXL's pooled text embedding (``text_time`` conditioning only).

    Returns
    -------
    ComponentCost
    """
    kind = _kind_of(config)
    if isinstance(calls, bool) or not isinstance(calls, numbers.Integral) or calls < 0:
        raise ValueError(f"calls must be a non-negative integer, got {calls!r}")

    def need(value: Any, what: str) -> int:
        if value is None:
            raise ValueError(f"{what} is required to cost a {kind}")
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ValueError(f"{what} must be a positive integer, got {value!r}")
        return int(value)

    if kind == "UNet2DConditionModel":
        pooled = need(pooled_dim, "pooled_dim") if config.get("addition_embed_type") == "text_time" else 0
        shape: tuple = (
            need(height, "height"),
            need(width, "width"),
            need(text_tokens, "text_tokens"),
            need(text_dim, "text_dim"),
            pooled,
        )
    elif kind == "AutoencoderKL":
        shape = (need(height, "height"), need(width, "width"))
    elif kind in _TRANSFORMER_KINDS:
        shape = (need(height, "height"), need(width, "width"), need(text_tokens, "text_tokens"))
    else:
        shape = (need(text_tokens, "text_tokens"),)
    flops, params = _count_component(kind, _config_key(config), shape)
    return ComponentCost(
        name=name or kind, model_class=kind, flops_per_call=flops, calls=int(calls), params=params, input_shape=shape
    )


# --------------------------------------------------------------------------------------
# pipeline cost
# --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=True)
class PipelineCost:
    """FLOPs of one image from a text-to-image pipeline, with a per-component breakdown.

    Attributes
    ----------
    arch : str
        Architecture name (a shipped one, ``"custom"`` or the pipeline class of a folder).
    height, width : int
        Output image size in pixels.
    steps : int or tuple of int
        Denoising steps (a ``(stage I, stage II)`` pair for DeepFloyd IF).
    guidance : bool or tuple of bool
        Whether classifier-free guidance is on (doubles the denoiser batch).
    components : dict of str to ComponentCost
        Breakdown, in pipeline order: text encoder(s), denoiser(s), VAE decoder.
    notes : str
        Counting assumptions specific to this pipeline.
    """

    arch: str
    height: int
    width: int
    steps: int | tuple[int, ...]
    guidance: bool | tuple[bool, ...]
    components: dict[str, ComponentCost]
    notes: str = ""

    __hash__ = None  # type: ignore[assignment]  # holds a dict

    @property
    def total(self) -> int:
        """Total FLOPs per image."""
        return int(sum(c.flops for c in self.components.values()))

    def to_dict(self) -> dict:
        """Plain-Python view (JSON-serialisable)."""
        return {
            "arch": self.arch,
            "height": self.height,
            "width": self.width,
            "steps": list(self.steps) if isinstance(self.steps, tuple) else self.steps,
            "guidance": list(self.guidance) if isinstance(self.guidance, tuple) else self.guidance,
            "total_flops": self.total,
            "components": {name: c.to_dict() for name, c in self.components.items()},
            "notes": self.notes,
        }

    def __str__(self) -> str:
        steps = "+".join(map(str, self.steps)) if isinstance(self.steps, tuple) else str(self.steps)
        guidance = "/".join(map(str, self.guidance)) if isinstance(self.guidance, tuple) else str(self.guidance)
        lines = [
            f"{self.arch} {self.width}x{self.height}px, steps={steps}, guidance={guidance}: "
            f"{_human(self.total)}FLOPs per image"
        ]
        for name, c in self.components.items():
            share = c.flops / self.total if self.total else 0.0
            lines.append(
                f"  {name:<16} {_human(c.flops_per_call):>10}FLOPs x {c.calls:>3} = {_human(c.flops):>10}FLOPs"
                f"  ({share:6.1%}, {c.params / 1e6:,.1f}M params)"
            )
        return "\n".join(lines)


def _human(value: float) -> str:
    for unit, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.3g} "


def _check_positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)


def _check_size(value: Any, what: str, multiple: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0 or value % multiple:
        raise ValueError(f"{what} must be a positive integer multiple of {multiple}, got {value!r}")
    return int(value)


def _vae_scale(vae_config: Mapping[str, Any]) -> int:
    """Spatial down-sampling factor of an AutoencoderKL: 2 ** (number of blocks - 1)."""
    blocks = vae_config.get("block_out_channels") or (0,) * 4
    return 2 ** (len(blocks) - 1)


def _text_dim(config: Mapping[str, Any]) -> int:
    return int(config.get("hidden_size") or config.get("d_model"))


def diffusion_cost_from_configs(
    unet_config: Mapping[str, Any],
    vae_config: Mapping[str, Any] | None,
    text_encoder_configs: Sequence[Mapping[str, Any]] | Mapping[str, Mapping[str, Any]],
    *,
    height: int,
    width: int,
    steps: int,
    guidance: bool = True,
    text_tokens: int = 77,
    arch: str = "custom",
) -> PipelineCost:
    """Per-image FLOPs of a latent diffusion pipeline from its component configs.

    Use it to cost any diffusers pipeline whose configs you have (for example a folder
    saved with ``save_pretrained``; :func:`cost_from_pretrained` reads one for you).

    Parameters
    ----------
    unet_config : mapping
        Denoiser config: a ``UNet2DConditionModel`` (SD 1.x/2.x, SDXL including its
        ``text_time`` added conditioning) or a PixArt ``Transformer2DModel``.
    vae_config : mapping or None
        ``AutoencoderKL`` config; its decoder runs once per image. ``None`` for a
        pixel-space denoiser (then ``height``/``width`` are the denoiser's input size).
    text_encoder_configs : sequence or mapping of mappings
        ``CLIPTextModel``, ``CLIPTextModelWithProjection`` or ``T5EncoderModel`` configs,
        in pipeline order (a mapping gives them names). Each runs once per image; the UNet's
        cross-attention context is their hidden states concatenated along the feature axis
        (SDXL: 768 + 1280 = 2048), and SDXL's pooled embedding is the last encoder's
        projection.
    height, width : int
        Image size in pixels (a multiple of the VAE's scale factor, 8 for SD-family VAEs).
    steps : int
        Denoising steps.
    guidance : bool, default=True
        Classifier-free guidance: the denoiser runs on a batch of 2 at every step.
    text_tokens : int, default=77
        Tokens encoded per prompt (CLIP pipelines pad to 77; PixArt-alpha to 120).
    arch : str, default="custom"
        Name recorded in the result.

    Returns
    -------
    PipelineCost

    Notes
    -----
    The unconditional (negative-prompt) text embedding of classifier-free guidance is not
    counted: with the default empty negative prompt it is the same for every prompt and is
    computed once and cached (SDXL even uses zeros), so per image it costs nothing.
    """
    steps = _check_positive_int(steps, "steps")
    if not isinstance(guidance, bool):
        raise TypeError(f"guidance must be a bool, got {type(guidance).__name__}: {guidance!r}")
    multiple = _vae_scale(vae_config) if vae_config is not None else 1
    height = _check_size(height, "height", multiple)
    width = _check_size(width, "width", multiple)
    text_tokens = _check_size(text_tokens, "text_tokens", 1)
    if isinstance(text_encoder_configs, Mapping):
        single = any(k in text_encoder_configs for k in ("_class_name", "architectures", "model_type"))
        named = [("text_encoder", text_encoder_configs)] if single else list(text_encoder_configs.items())
    else:
        named = [
            ("text_encoder" if i == 0 else f"text_encoder_{i + 1}", cfg) for i, cfg in enumerate(text_encoder_configs)
        ]

    components: dict[str, ComponentCost] = {}
    for name, cfg in named:
        components[name] = component_cost(cfg, name=name, calls=1, text_tokens=text_tokens)
    text_dim = sum(_text_dim(cfg) for _, cfg in named) if named else None
    pooled_dim = None
    if named:
        last = named[-1][1]
        pooled_dim = int(last.get("projection_dim") or _text_dim(last))

    kind = _kind_of(unet_config)
    latent_h, latent_w = (height // multiple, width // multiple)
    calls = steps * (2 if guidance else 1)
    if kind in _TRANSFORMER_KINDS:
        components["transformer"] = component_cost(
            unet_config, name="transformer", calls=calls, height=latent_h, width=latent_w, text_tokens=text_tokens
        )
    elif kind == "UNet2DConditionModel":
        cross_dim = unet_config.get("encoder_hid_dim") or text_dim or unet_config.get("cross_attention_dim")
        components["unet"] = component_cost(
            unet_config,
            name="unet",
            calls=calls,
            height=latent_h,
            width=latent_w,
            text_tokens=text_tokens,
            text_dim=int(cross_dim),
            pooled_dim=pooled_dim,
        )
    else:
        raise ValueError(f"the denoiser must be a UNet2DConditionModel or a PixArt transformer, got {kind!r}")
    if vae_config is not None:
        if _kind_of(vae_config) != "AutoencoderKL":
            raise ValueError(f"vae_config must be an AutoencoderKL config, got {_kind_of(vae_config)!r}")
        components["vae_decode"] = component_cost(vae_config, name="vae_decode", calls=1, height=latent_h, width=latent_w)
    return PipelineCost(
        arch=arch,
        height=height,
        width=width,
        steps=steps,
        guidance=guidance,
        components=components,
        notes="text encoders once per image (cached unconditional embedding not counted); "
        f"denoiser {steps} steps x {2 if guidance else 1}; VAE decoder once",
    )


def _if_cost(height: int, width: int, steps: Any, guidance: Any) -> PipelineCost:
    """DeepFloyd IF stages I (64 px) and II (x4 super-resolution), one shared T5 encoding."""
    if steps is None:
        steps = DEFAULT_STEPS["deepfloyd_if"]
    if isinstance(steps, numbers.Integral) and not isinstance(steps, bool):
        steps = (int(steps), DEFAULT_STEPS["deepfloyd_if"][1])
    if not (isinstance(steps, (tuple, list)) and len(steps) == 2):
        raise ValueError(f"steps for deepfloyd_if must be an int (stage I) or a pair (stage I, stage II), got {steps!r}")
    steps = (_check_positive_int(steps[0], "stage I steps"), _check_positive_int(steps[1], "stage II steps"))
    if isinstance(guidance, bool):
        guidance = (guidance, guidance)
    if not (isinstance(guidance, (tuple, list)) and len(guidance) == 2 and all(isinstance(g, bool) for g in guidance)):
        raise ValueError(f"guidance for deepfloyd_if must be a bool or a pair of bools, got {guidance!r}")
    guidance = (bool(guidance[0]), bool(guidance[1]))
    if height % 4 or width % 4 or (height // 4) % 8 or (width // 4) % 8:
        raise ValueError(f"deepfloyd_if needs height and width that are multiples of 32, got {height}x{width}")
    t5 = load_config("deepfloyd_if", "text_encoder")
    s1 = load_config("deepfloyd_if", "unet_stage1")
    s2 = load_config("deepfloyd_if", "unet_stage2")
    tokens = TEXT_TOKENS["t5_if"]
    components = {
        "text_encoder": component_cost(t5, name="text_encoder", text_tokens=tokens),
        "unet_stage1": component_cost(
            s1,
            name="unet_stage1",
            calls=steps[0] * (2 if guidance[0] else 1),
            height=height // 4,
            width=width // 4,
            text_tokens=tokens,
            text_dim=_text_dim(t5),
        ),
        "unet_stage2": component_cost(
            s2,
            name="unet_stage2",
            calls=steps[1] * (2 if guidance[1] else 1),
            height=height,
            width=width,
            text_tokens=tokens,
            text_dim=_text_dim(t5),
        ),
    }
    return PipelineCost(
        arch="deepfloyd_if",
        height=height,
        width=width,
        steps=steps,
        guidance=guidance,
        components=components,
        notes=(
            "pixel space, no VAE; one T5-XXL encoding (77 tokens) shared by both stages; "
            f"stage I at {height // 4}x{width // 4}px, stage II at {height}x{width}px on the noisy image concatenated "
            "with the upsampled stage-I image (6 channels) and conditioned on the noise level (class_labels)"
        ),
    )


def pipeline_cost(
    arch: str,
    *,
    height: int | None = None,
    width: int | None = None,
    steps: int | tuple[int, int] | None = None,
    guidance: bool | tuple[bool, bool] = True,
) -> PipelineCost:
    """Per-image FLOPs of a shipped architecture at the given settings.

    Parameters
    ----------
    arch : {"sd15", "sd21", "sdxl", "deepfloyd_if", "pixart_alpha"}
        Architecture. SDXL-Turbo and LCM-SDXL share ``"sdxl"`` (set ``steps`` and
        ``guidance``).
    height, width : int, optional
        Image size in pixels; default the native resolution (512 sd15, 768 sd21, 1024 sdxl
        and pixart_alpha, 256 deepfloyd_if = stage II output).
    steps : int or (int, int), optional
        Denoising steps; default diffusers' pipeline default (50; 20 for PixArt-alpha;
        ``(100, 50)`` for DeepFloyd IF). For ``"deepfloyd_if"`` give a pair
        ``(stage_I_steps, stage_II_steps)``; an int sets stage I only (stage II keeps 50).
    guidance : bool or (bool, bool), default=True
        Classifier-free guidance (denoiser batch of 2). A pair sets IF's two stages
        separately (diffusers' defaults, guidance scales 7.0 and 4.0, both guide).

    Returns
    -------
    PipelineCost

    Raises
    ------
    ValueError
        Unknown architecture (the message lists the valid ones) or invalid settings.

    Examples
    --------
    >>> from costroute.costs import pipeline_cost
    >>> turbo = pipeline_cost("sdxl", height=512, width=512, steps=1, guidance=False)  # doctest: +SKIP
    >>> print(turbo)                                                                    # doctest: +SKIP
    """
    _check_arch(arch)
    native = NATIVE_RESOLUTION[arch]
    height = native if height is None else height
    width = native if width is None else width
    if arch == "deepfloyd_if":
        height = _check_size(height, "height", 32)
        width = _check_size(width, "width", 32)
        return _if_cost(height, width, steps, guidance)
    if steps is None:
        steps = DEFAULT_STEPS[arch]
    if not isinstance(guidance, bool):
        raise TypeError(f"guidance must be a bool for {arch!r}, got {guidance!r}")
    if arch == "pixart_alpha":
        return diffusion_cost_from_configs(
            load_config(arch, "transformer"),
            load_config(arch, "vae"),
            {"text_encoder": load_config(arch, "text_encoder")},
            height=height,
            width=width,
            steps=steps,
            guidance=guidance,
            text_tokens=TEXT_TOKENS["t5_pixart"],
            arch=arch,
        )
    encoders = {name: load_config(arch, name) for name in COMPONENTS[arch] if name.startswith("text_encoder")}
    return diffusion_cost_from_configs(
        load_config(arch, "unet"),
        load_config(arch, "vae"),
        encoders,
        height=height,
        width=width,
        steps=steps,
        guidance=guidance,
        text_tokens=TEXT_TOKENS["clip"],
        arch=arch,
    )


def cost_from_pretrained(
    path: str | os.PathLike,
    *,
    height: int | None = None,
    width: int | None = None,
    steps: int,
    guidance: bool = True,
    text_tokens: int | None = None,
) -> PipelineCost:
    """Per-image FLOPs of a local diffusers pipeline folder (as written by ``save_pretrained``).

    Reads ``model_index.json`` and the ``config.json`` of the denoiser (``unet`` or
    ``transformer``), ``vae`` and every ``text_encoder*``; no weights are loaded.

    Parameters
    ----------
    path : str or path-like
        Folder holding ``model_index.json``.
    height, width : int, optional
        Image size in pixels; default ``unet.sample_size x vae scale factor``.
    steps : int
        Denoising steps.
    guidance : bool, default=True
        Classifier-free guidance.
    text_tokens : int, optional
        Tokens per prompt; default 120 for a PixArt transformer, else the first text
        encoder's ``max_position_embeddings`` (77 for CLIP) or 77.

    Returns
    -------
    PipelineCost

    Raises
    ------
    FileNotFoundError
        No ``model_index.json`` or a listed component has no ``config.json``.
    ValueError
        A component class that cannot be costed (the message lists the supported ones).
    """
    root = os.fspath(path)
    index_path = os.path.join(root, "model_index.json")
    if not os.path.isfile(index_path):
        raise FileNotFoundError(f"no model_index.json in {root!r}; pass a folder written by save_pretrained")
    with open(index_path, encoding="utf-8") as f:
        index = json.load(f)

    def read(component: str) -> dict:
        config_path = os.path.join(root, component, "config.json")
        if not os.path.isfile(config_path):
            raise FileNotFoundError(f"component {component!r} listed in model_index.json has no {config_path}")
        with open(config_path, encoding="utf-8") as f:
            cfg = json.load(f)
        entry = index.get(component)
        if isinstance(entry, (list, tuple)) and len(entry) == 2 and entry[1]:
            cfg.setdefault("_class_name", entry[1])
            if "architectures" in cfg or "model_type" in cfg:
                cfg["architectures"] = [entry[1]]
        return cfg

    denoiser_name = next((n for n in ("unet", "transformer") if isinstance(index.get(n), (list, tuple))), None)
    if denoiser_name is None:
        raise ValueError(f"{index_path} lists no 'unet' or 'transformer' component")
    denoiser = read(denoiser_name)
    vae = read("vae") if isinstance(index.get("vae"), (list, tuple)) and index["vae"][0] else None
    encoders = {
        name: read(name)
        for name in sorted(k for k in index if k.startswith("text_encoder"))
        if isinstance(index[name], (list, tuple)) and index[name][0]
    }
    scale = _vae_scale(vae) if vae is not None else 1
    sample = denoiser.get("sample_size") or 64
    sample = sample[0] if isinstance(sample, (list, tuple)) else sample
    height = int(sample) * scale if height is None else height
    width = int(sample) * scale if width is None else width
    if text_tokens is None:
        if _kind_of(denoiser) in _TRANSFORMER_KINDS:
            text_tokens = TEXT_TOKENS["t5_pixart"]
        else:
            first = next(iter(encoders.values()), {})
            text_tokens = int(first.get("max_position_embeddings") or 77)
    return diffusion_cost_from_configs(
        denoiser,
        vae,
        encoders,
        height=height,
        width=width,
        steps=steps,
        guidance=guidance,
        text_tokens=text_tokens,
        arch=str(index.get("_class_name", "custom")),
    )


# --------------------------------------------------------------------------------------
# price model
# --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class GPUPriceModel:
    """Turns FLOPs into US dollars: rent a GPU by the hour and run at a stated utilisation.

    ``usd_per_image(flops) = flops / (peak_flops_per_second * utilization) / 3600 * usd_per_hour``

    Parameters
    ----------
    name : str
        Description (GPU, price source).
    usd_per_hour : float
        Rental price of one GPU for one hour, in USD.
    peak_flops_per_second : float
        The GPU's dense (no sparsity) peak for the precision used, in FLOP/s.
    utilization : float
        Fraction of the peak actually achieved on the workload, in (0, 1].

    Examples
    --------
    >>> from costroute.costs import GPUPriceModel
    >>> gpu = GPUPriceModel("toy", usd_per_hour=3.6, peak_flops_per_second=1e12, utilization=1.0)
    >>> gpu.usd_per_image(1e12)
    0.001
    """

    name: str
    usd_per_hour: float
    peak_flops_per_second: float
    utilization: float

    def __post_init__(self) -> None:
        for what in ("usd_per_hour", "peak_flops_per_second"):
            value = getattr(self, what)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{what} must be a positive finite number, got {value!r}")
        u = self.utilization
        if isinstance(u, bool) or not isinstance(u, numbers.Real) or not 0 < u <= 1:
            raise ValueError(f"utilization must be in (0, 1], got {u!r}")

    @property
    def achieved_flops_per_second(self) -> float:
        """``peak_flops_per_second * utilization``."""
        return float(self.peak_flops_per_second) * float(self.utilization)

    def seconds_per_image(self, flops: float) -> float:
        """GPU seconds to execute ``flops`` at the achieved rate."""
        if isinstance(flops, bool) or not isinstance(flops, numbers.Real) or flops < 0 or not math.isfinite(flops):
            raise ValueError(f"flops must be a finite non-negative number, got {flops!r}")
        return float(flops) / self.achieved_flops_per_second

    def usd_per_image(self, flops: float) -> float:
        """USD to execute ``flops`` (one image) on this GPU."""
        return self.seconds_per_image(flops) / 3600.0 * float(self.usd_per_hour)


#: Default price model: one NVIDIA H100 SXM 80GB rented on demand at USD 2.99 per GPU-hour
#: (a common on-demand list price for H100 SXM, e.g. Lambda's 8x H100 SXM instances at
#: USD 2.99/GPU/h; surveyed on-demand H100 SXM prices range USD 2.49-3.99/h), dense BF16
#: tensor-core peak 989.4 TFLOP/s (NVIDIA H100 datasheet: 1,979 TFLOP/s *with* 2:4
#: sparsity, half without), at an assumed 40 % utilisation of that peak for batch-1
#: diffusion inference. Change any of the three numbers by building your own GPUPriceModel.
DEFAULT_PRICE_MODEL = GPUPriceModel(
    name="NVIDIA H100 SXM, on demand USD 2.99/h, BF16 dense peak 989.4 TFLOP/s at 40% utilisation",
    usd_per_hour=2.99,
    peak_flops_per_second=989.4e12,
    utilization=0.40,
)

