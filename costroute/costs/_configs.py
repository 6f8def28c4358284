"""The shipped architectures: their published component configs, defaults and model kinds.

The configs are the real ``config.json`` files of the released models, shipped as package
data under ``costroute/configs/<arch>/<component>.json`` (provenance in ``_source.json``
next to them).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

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

# Model classes that can be costed, by family.
_CLIP_KINDS = ("CLIPTextModel", "CLIPTextModelWithProjection")
_T5_KINDS = ("T5EncoderModel",)
_TRANSFORMER_KINDS = ("PixArtTransformer2DModel", "Transformer2DModel")
_KINDS = ("UNet2DConditionModel", "AutoencoderKL") + _TRANSFORMER_KINDS + _CLIP_KINDS + _T5_KINDS

# Keys of a saved config that describe where it came from, not the architecture.
_METADATA_KEYS = ("_name_or_path", "_commit_hash", "_use_default_values")


def _check_arch(arch: Any) -> str:
    if arch not in COMPONENTS:
        raise ValueError(f"unknown architecture {arch!r}; valid architectures are {list(ARCHITECTURES)}")
    return arch


@functools.cache
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
    clean = {k: v for k, v in config.items() if k not in _METADATA_KEYS}
    return json.dumps(clean, sort_keys=True, default=str)


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


def _vae_scale(vae_config: Mapping[str, Any]) -> int:
    """Spatial down-sampling factor of an AutoencoderKL: 2 ** (number of blocks - 1)."""
    blocks = vae_config.get("block_out_channels") or (0,) * 4
    return 2 ** (len(blocks) - 1)


def _text_dim(config: Mapping[str, Any]) -> int:
    """Width of a text encoder's hidden states (CLIP ``hidden_size``, T5 ``d_model``)."""
    return int(config.get("hidden_size") or config.get("d_model"))
