"""Counting FLOPs and parameters: one forward under PyTorch's FLOP counter, on the meta device.

:func:`count_flops` and :func:`count_parameters` count any module. :func:`component_cost`
builds one pipeline component from its config on the meta device and counts it at the
shapes a diffusers pipeline feeds it. Counts are kept in memory for the process and on disk
(:mod:`costroute.costs._cache`) for later processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import numbers
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import _cache
from ._configs import _CLIP_KINDS, _TRANSFORMER_KINDS, _config_key, _kind_of


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


def _count_component_now(kind: str, config_key: str, shape: tuple) -> tuple[int, int]:
    """Build one component on the meta device and count a batch-1 forward at ``shape``."""
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


@dataclasses.dataclass(frozen=True)
class _Planned:
    """One component to count: what the count depends on, and how often it runs per image."""

    name: str
    request: _cache.Request
    calls: int


def _plan(
    config: Mapping[str, Any],
    *,
    name: str | None = None,
    calls: int = 1,
    height: int | None = None,
    width: int | None = None,
    text_tokens: int | None = None,
    text_dim: int | None = None,
    pooled_dim: int | None = None,
) -> _Planned:
    """Validate the arguments of :func:`component_cost` and say what to count."""
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
    return _Planned(name=name or kind, request=(kind, _config_key(config), shape), calls=int(calls))


# Counts made or read in this process, by request; a bounded dict (oldest dropped first).
_memory: dict[_cache.Request, tuple[int, int]] = {}
_MEMORY_SIZE = 1024
_memory_lock = threading.Lock()


def _remember(counts: Mapping[_cache.Request, tuple[int, int]]) -> None:
    with _memory_lock:
        _memory.update(counts)
        while len(_memory) > _MEMORY_SIZE:
            del _memory[next(iter(_memory))]


def _counts(
    requests: Sequence[_cache.Request],
    *,
    names: Sequence[str] | None = None,
    progress: bool = False,
    desc: str = "counting FLOPs",
) -> list[tuple[int, int]]:
    """(FLOPs of one batch-1 forward, parameters) of each request, in order.

    Looked up in memory, then in the disk cache; the rest are counted on the meta device
    (seconds for a large component) and saved in both. With ``progress`` a tqdm bar on
    stderr follows the counting, when more than one component needs it.
    """
    order = list(dict.fromkeys(requests))
    label = dict(zip(requests, names)) if names is not None else {}
    with _memory_lock:
        found = {r: _memory[r] for r in order if r in _memory}
    missing = [r for r in order if r not in found]
    if missing:
        saved = _cache.lookup(missing)
        found.update(saved)
        _remember(saved)
        missing = [r for r in missing if r not in saved]
    if missing:
        from tqdm.auto import tqdm

        counted: dict[_cache.Request, tuple[int, int]] = {}
        bar = tqdm(total=len(missing), desc=desc, unit="component", disable=not (progress and len(missing) > 1))
        try:
            for request in missing:
                bar.set_postfix_str(label.get(request, request[0]))
                counted[request] = _count_component_now(*request)
                bar.update()
        finally:
            bar.close()
            if counted:  # keep what was counted even if a later component failed
                _remember(counted)
                _cache.store(counted)
        found.update(counted)
    return [found[r] for r in requests]


def _component_costs(planned: Sequence[_Planned], *, progress: bool, desc: str) -> dict[str, ComponentCost]:
    """Count planned components together (one progress bar) and return them by name."""
    counts = _counts([p.request for p in planned], names=[p.name for p in planned], progress=progress, desc=desc)
    return {
        p.name: ComponentCost(
            name=p.name,
            model_class=p.request[0],
            flops_per_call=flops,
            calls=p.calls,
            params=params,
            input_shape=p.request[2],
        )
        for p, (flops, params) in zip(planned, counts)
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

    Counts are cached in the process by (config, input shape), so repeating a call is
    instant, and on disk (see :func:`flop_cache_path`), keyed also by the torch version
    and :data:`FLOP_COUNTER_VERSION`, so that later processes skip the count;
    ``COSTROUTE_FLOPS_CACHE=0`` turns the disk cache off.

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

    Raises
    ------
    ValueError
        An unsupported class (the message lists the supported ones), or a missing or
        invalid size.
    """
    planned = _plan(
        config,
        name=name,
        calls=calls,
        height=height,
        width=width,
        text_tokens=text_tokens,
        text_dim=text_dim,
        pooled_dim=pooled_dim,
    )
    return _component_costs([planned], progress=False, desc="counting FLOPs")[planned.name]
