"""Cost of one image from a whole pipeline: text encoders, denoiser steps, VAE decoder.

:func:`pipeline_cost` costs a shipped architecture, :func:`diffusion_cost_from_configs`
any set of component configs and :func:`cost_from_pretrained` a local diffusers folder.
All components of a pipeline are counted together, with one progress bar when more than
one of them is not cached yet.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ._configs import (
    _TRANSFORMER_KINDS,
    COMPONENTS,
    DEFAULT_STEPS,
    NATIVE_RESOLUTION,
    TEXT_TOKENS,
    _check_arch,
    _kind_of,
    _text_dim,
    _vae_scale,
    load_config,
)
from ._counting import ComponentCost, _component_costs, _plan


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


def _check_steps(value: Any, what: str = "steps") -> int:
    """Denoising steps: an integer of at least 1 (a pipeline with no step makes no image)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(
            f"{what} must be a positive integer (at least one denoising step), got {value!r}; "
            "diffusers pipelines and costroute's generators reject fewer than 1 step"
        )
    return int(value)


def _check_size(value: Any, what: str, multiple: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0 or value % multiple:
        raise ValueError(f"{what} must be a positive integer multiple of {multiple}, got {value!r}")
    return int(value)


def _check_progress(progress: Any) -> bool:
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got {type(progress).__name__}: {progress!r}")
    return progress


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
    progress: bool = True,
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
        Denoising steps, at least 1.
    guidance : bool, default=True
        Classifier-free guidance: the denoiser runs on a batch of 2 at every step.
    text_tokens : int, default=77
        Tokens encoded per prompt (CLIP pipelines pad to 77; PixArt-alpha to 120).
    arch : str, default="custom"
        Name recorded in the result.
    progress : bool, default=True
        Show a tqdm progress bar (stderr) while components are counted, when more than
        one of them is in neither the in-memory nor the disk cache.

    Returns
    -------
    PipelineCost

    Raises
    ------
    ValueError
        ``steps`` below 1 or not an integer, a size that is not a multiple of the VAE's
        scale factor, or a component class that cannot be costed.

    Notes
    -----
    The unconditional (negative-prompt) text embedding of classifier-free guidance is not
    counted: with the default empty negative prompt it is the same for every prompt and is
    computed once and cached (SDXL even uses zeros), so per image it costs nothing.
    """
    steps = _check_steps(steps)
    progress = _check_progress(progress)
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

    planned = [_plan(cfg, name=name, calls=1, text_tokens=text_tokens) for name, cfg in named]
    text_dim = sum(_text_dim(cfg) for _, cfg in named) if named else None
    pooled_dim = None
    if named:
        last = named[-1][1]
        pooled_dim = int(last.get("projection_dim") or _text_dim(last))

    kind = _kind_of(unet_config)
    latent_h, latent_w = (height // multiple, width // multiple)
    calls = steps * (2 if guidance else 1)
    if kind in _TRANSFORMER_KINDS:
        planned.append(
            _plan(
                unet_config, name="transformer", calls=calls, height=latent_h, width=latent_w, text_tokens=text_tokens
            )
        )
    elif kind == "UNet2DConditionModel":
        cross_dim = unet_config.get("encoder_hid_dim") or text_dim or unet_config.get("cross_attention_dim")
        planned.append(
            _plan(
                unet_config,
                name="unet",
                calls=calls,
                height=latent_h,
                width=latent_w,
                text_tokens=text_tokens,
                text_dim=int(cross_dim),
                pooled_dim=pooled_dim,
            )
        )
    else:
        raise ValueError(f"the denoiser must be a UNet2DConditionModel or a PixArt transformer, got {kind!r}")
    if vae_config is not None:
        if _kind_of(vae_config) != "AutoencoderKL":
            raise ValueError(f"vae_config must be an AutoencoderKL config, got {_kind_of(vae_config)!r}")
        planned.append(_plan(vae_config, name="vae_decode", calls=1, height=latent_h, width=latent_w))
    components = _component_costs(planned, progress=progress, desc=f"counting FLOPs of {arch}")
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


def _if_cost(height: int, width: int, steps: Any, guidance: Any, progress: bool) -> PipelineCost:
    """DeepFloyd IF stages I (64 px) and II (x4 super-resolution), one shared T5 encoding."""
    if steps is None:
        steps = DEFAULT_STEPS["deepfloyd_if"]
    if isinstance(steps, numbers.Integral) and not isinstance(steps, bool):
        steps = (int(steps), DEFAULT_STEPS["deepfloyd_if"][1])
    if not (isinstance(steps, (tuple, list)) and len(steps) == 2):
        raise ValueError(
            f"steps for deepfloyd_if must be an int (stage I) or a pair (stage I, stage II), got {steps!r}"
        )
    steps = (
        _check_steps(steps[0], "steps for deepfloyd_if stage I"),
        _check_steps(steps[1], "steps for deepfloyd_if stage II"),
    )
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
    planned = [
        _plan(t5, name="text_encoder", text_tokens=tokens),
        _plan(
            s1,
            name="unet_stage1",
            calls=steps[0] * (2 if guidance[0] else 1),
            height=height // 4,
            width=width // 4,
            text_tokens=tokens,
            text_dim=_text_dim(t5),
        ),
        _plan(
            s2,
            name="unet_stage2",
            calls=steps[1] * (2 if guidance[1] else 1),
            height=height,
            width=width,
            text_tokens=tokens,
            text_dim=_text_dim(t5),
        ),
    ]
    components = _component_costs(planned, progress=progress, desc="counting FLOPs of deepfloyd_if")
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
    progress: bool = True,
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
        Denoising steps, at least 1; default diffusers' pipeline default (50; 20 for
        PixArt-alpha; ``(100, 50)`` for DeepFloyd IF). For ``"deepfloyd_if"`` give a pair
        ``(stage_I_steps, stage_II_steps)``; an int sets stage I only (stage II keeps 50).
    guidance : bool or (bool, bool), default=True
        Classifier-free guidance (denoiser batch of 2). A pair sets IF's two stages
        separately (diffusers' defaults, guidance scales 7.0 and 4.0, both guide).
    progress : bool, default=True
        Show a tqdm progress bar (stderr) while components are counted, when more than
        one of them is in neither the in-memory nor the disk cache (a cold count of a
        large architecture takes seconds).

    Returns
    -------
    PipelineCost

    Raises
    ------
    ValueError
        Unknown architecture (the message lists the valid ones) or invalid settings
        (``steps`` below 1 or not an integer, a size that is not a valid multiple).

    Examples
    --------
    >>> from costroute.costs import pipeline_cost
    >>> turbo = pipeline_cost("sdxl", height=512, width=512, steps=1, guidance=False)  # doctest: +SKIP
    >>> print(turbo)                                                                    # doctest: +SKIP
    """
    _check_arch(arch)
    progress = _check_progress(progress)
    native = NATIVE_RESOLUTION[arch]
    height = native if height is None else height
    width = native if width is None else width
    if arch == "deepfloyd_if":
        height = _check_size(height, "height", 32)
        width = _check_size(width, "width", 32)
        return _if_cost(height, width, steps, guidance, progress)
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
            progress=progress,
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
        progress=progress,
    )


def cost_from_pretrained(
    path: str | os.PathLike,
    *,
    height: int | None = None,
    width: int | None = None,
    steps: int,
    guidance: bool = True,
    text_tokens: int | None = None,
    progress: bool = True,
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
        Denoising steps, at least 1.
    guidance : bool, default=True
        Classifier-free guidance.
    text_tokens : int, optional
        Tokens per prompt; default 120 for a PixArt transformer, else the first text
        encoder's ``max_position_embeddings`` (77 for CLIP) or 77.
    progress : bool, default=True
        Show a tqdm progress bar (stderr) while components are counted, when more than
        one of them is in neither the in-memory nor the disk cache.

    Returns
    -------
    PipelineCost

    Raises
    ------
    FileNotFoundError
        No ``model_index.json`` or a listed component has no ``config.json``.
    ValueError
        ``steps`` below 1 or not an integer, or a component class that cannot be costed
        (the message lists the supported ones).
    """
    steps = _check_steps(steps)
    progress = _check_progress(progress)
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
        progress=progress,
    )
