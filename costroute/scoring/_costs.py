"""FLOPs per image of image scorers, counted from their published configs on the meta device.

A scorer's cost is counted the way the generators' is (:func:`costroute.costs.count_flops`,
multiply-add = 2 FLOPs, attention included): the model is built on ``torch.device("meta")``
from its ``config.json``, so no weights and no memory are needed, and one batch-1 forward
of each part that runs per image is counted.

* CLIP-style models (:class:`~costroute.scoring.CLIPScorer`): the image tower and its
  projection at the config's image size, plus the text tower and its projection at the
  longest text CLIP reads (``max_position_embeddings``, 77). Texts are padded to the longest
  in a batch, not to 77, so the text part is an upper bound.
* LLaVA-style vision-language models (:class:`~costroute.scoring.VQAScorer`): the vision
  tower and projector (``get_image_features``), the language model over the image tokens
  plus ``text_tokens`` text tokens, and the output head at the one position whose
  next-token distribution is read.

Shipped configs (``costroute/configs/scorers/<arch>/config.json``, provenance and the
published parameter counts in ``_source.json`` beside each) cost the known hub ids
(:data:`KNOWN_SCORER_MODELS`) without any download. Importing this module does not import
torch or transformers.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import numbers
import os
from collections.abc import Mapping
from importlib import resources
from typing import Any

__all__ = [
    "KNOWN_SCORER_MODELS",
    "SCORER_ARCHITECTURES",
    "VQA_TEXT_TOKENS",
    "ScorerCost",
    "load_scorer_config",
    "scorer_cost",
]

#: Scorer architectures whose published configs ship with costroute (``load_scorer_config``).
SCORER_ARCHITECTURES: tuple[str, ...] = ("clip_vit_l14", "clip_vit_h14", "llava_1_5_7b")

#: Hub ids costed from a shipped config without any download.
KNOWN_SCORER_MODELS: Mapping[str, str] = {
    "openai/clip-vit-large-patch14": "clip_vit_l14",
    "laion/CLIP-ViT-H-14-laion2B-s32B-b79K": "clip_vit_h14",
    "yuvalkirstain/PickScore_v1": "clip_vit_h14",
    "llava-hf/llava-1.5-7b-hf": "llava_1_5_7b",
}

#: Text tokens a VQAScore question is counted at: the chat template and the question
#: (about 25 tokens with LLaVA-1.5's tokenizer) plus a prompt of up to about 40 tokens.
VQA_TEXT_TOKENS = 64

_CLIP_TYPES = ("clip",)
_LLAVA_TYPES = ("llava",)


@dataclasses.dataclass(frozen=True)
class ScorerCost:
    """FLOPs of scoring one image, with a per-part breakdown.

    Attributes
    ----------
    model_type : str
        The config's ``model_type`` (``"clip"``, ``"llava"``).
    parts : dict of str to int
        FLOPs per image of each part, in the order they run.
    params : int
        Parameters of the whole model.
    input_shape : dict of str to int
        The sizes counted at (image side in pixels, text tokens, image tokens).
    """

    model_type: str
    parts: dict[str, int]
    params: int
    input_shape: dict[str, int]

    __hash__ = None  # type: ignore[assignment]  # holds dicts

    @property
    def total(self) -> int:
        """Total FLOPs per image."""
        return int(sum(self.parts.values()))

    def __str__(self) -> str:
        shape = ", ".join(f"{k}={v}" for k, v in self.input_shape.items())
        lines = [
            f"{self.model_type} ({shape}): {self.total / 1e9:,.2f} GFLOPs per image, {self.params / 1e6:,.1f}M params"
        ]
        lines += [f"  {name:<12} {flops / 1e9:>12,.2f} GFLOPs" for name, flops in self.parts.items()]
        return "\n".join(lines)


def _check_arch(arch: Any) -> str:
    if arch not in SCORER_ARCHITECTURES:
        raise ValueError(f"unknown scorer architecture {arch!r}; valid ones are {list(SCORER_ARCHITECTURES)}")
    return arch


@functools.cache
def _read_shipped(arch: str) -> str:
    return resources.files("costroute").joinpath("configs", "scorers", arch, "config.json").read_text(encoding="utf-8")


def load_scorer_config(arch: str) -> dict:
    """The published ``config.json`` of a shipped scorer architecture.

    Parameters
    ----------
    arch : {"clip_vit_l14", "clip_vit_h14", "llava_1_5_7b"}
        See :data:`SCORER_ARCHITECTURES`; :data:`KNOWN_SCORER_MODELS` maps hub ids to them.

    Returns
    -------
    dict
        A fresh copy of the configuration.

    Examples
    --------
    >>> from costroute.scoring import load_scorer_config
    >>> load_scorer_config("clip_vit_l14")["projection_dim"]
    768
    """
    return json.loads(_read_shipped(_check_arch(arch)))


def _model_type(config: Mapping[str, Any]) -> str:
    model_type = config.get("model_type")
    if model_type in _CLIP_TYPES or model_type in _LLAVA_TYPES:
        return model_type
    raise ValueError(
        f"cannot count the FLOPs of a {model_type!r} model; counted model types are "
        f"{list(_CLIP_TYPES + _LLAVA_TYPES)} (pass an explicit cost= to the scorer for others)"
    )


def scorer_cost(config: Mapping[str, Any], *, text_tokens: int | None = None) -> ScorerCost:
    """Count the FLOPs of scoring one image with the model a ``config.json`` describes.

    Parameters
    ----------
    config : mapping
        A transformers config dict of a CLIP model (``model_type="clip"``) or a LLaVA model
        (``model_type="llava"``).
    text_tokens : int, optional
        Text tokens per image. Default: CLIP's ``max_position_embeddings`` (77) for CLIP,
        :data:`VQA_TEXT_TOKENS` (64) for LLaVA.

    Returns
    -------
    ScorerCost

    Raises
    ------
    ValueError
        Another model type, or a bad ``text_tokens``.

    Examples
    --------
    >>> from costroute.scoring import load_scorer_config, scorer_cost
    >>> cost = scorer_cost(load_scorer_config("clip_vit_l14"))     # doctest: +SKIP
    >>> round(cost.total / 1e9, 1)                                 # doctest: +SKIP
    175.3
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict (a parsed config.json), got {type(config).__name__}")
    kind = _model_type(config)
    if text_tokens is not None and (
        isinstance(text_tokens, bool) or not isinstance(text_tokens, numbers.Integral) or text_tokens < 1
    ):
        raise ValueError(f"text_tokens must be a positive integer, got {text_tokens!r}")
    key = json.dumps(
        {k: v for k, v in config.items() if k not in ("_name_or_path", "_commit_hash")}, sort_keys=True, default=str
    )
    if kind == "clip":
        return _clip_cost(key, None if text_tokens is None else int(text_tokens))
    return _llava_cost(key, VQA_TEXT_TOKENS if text_tokens is None else int(text_tokens))


@functools.lru_cache(maxsize=32)
def _clip_cost(config_key: str, text_tokens: int | None) -> ScorerCost:
    import torch
    from transformers import CLIPConfig, CLIPModel

    from ..costs import count_flops, count_parameters

    config = CLIPConfig(**json.loads(config_key))
    side = int(config.vision_config.image_size)
    longest = int(config.text_config.max_position_embeddings)
    tokens = longest if text_tokens is None else text_tokens
    if tokens > longest:
        raise ValueError(f"text_tokens must be at most {longest} (the longest text this CLIP reads), got {tokens}")
    with torch.device("meta"):
        model = CLIPModel(config)
        pixels = torch.empty(1, config.vision_config.num_channels, side, side)
        ids = torch.zeros(1, tokens, dtype=torch.long)
    image = count_flops(lambda x: model.visual_projection(model.vision_model(pixel_values=x).pooler_output), pixels)
    text = count_flops(lambda x: model.text_projection(model.text_model(input_ids=x).pooler_output), ids)
    return ScorerCost(
        model_type="clip",
        parts={"image": int(image), "text": int(text)},
        params=count_parameters(model),
        input_shape={"image_size": side, "text_tokens": tokens},
    )


def _image_tokens(config: Any) -> int:
    """Image tokens LLaVA inserts for one image: one per patch, plus CLS with the "full" strategy."""
    vision = config.vision_config
    patches = (int(vision.image_size) // int(vision.patch_size)) ** 2
    return patches + (1 if config.vision_feature_select_strategy == "full" else 0)


@functools.lru_cache(maxsize=32)
def _llava_cost(config_key: str, text_tokens: int) -> ScorerCost:
    import torch
    from transformers import AutoModelForImageTextToText, LlavaConfig

    from ..costs import count_flops, count_parameters

    config = LlavaConfig(**json.loads(config_key))
    side = int(config.vision_config.image_size)
    image_tokens = _image_tokens(config)
    hidden = int(config.text_config.hidden_size)
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config)
        pixels = torch.empty(1, config.vision_config.num_channels, side, side)
        embeds = torch.empty(1, image_tokens + text_tokens, hidden)
        last = torch.empty(1, 1, hidden)
    vision = count_flops(
        model.get_image_features,
        pixel_values=pixels,
        vision_feature_layer=config.vision_feature_layer,
        vision_feature_select_strategy=config.vision_feature_select_strategy,
    )
    language = count_flops(model.get_decoder(), inputs_embeds=embeds)
    head = count_flops(model.get_output_embeddings(), last)
    return ScorerCost(
        model_type="llava",
        parts={"vision": int(vision), "language": int(language), "head": int(head)},
        params=count_parameters(model),
        input_shape={"image_size": side, "image_tokens": image_tokens, "text_tokens": text_tokens},
    )


def _hub_cache_config(model: str) -> str | None:
    """``config.json`` of ``model`` in the local Hugging Face cache, if it is there."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return None
    try:
        path = try_to_load_from_cache(model, "config.json")
    except Exception:
        return None
    return path if isinstance(path, str) and os.path.isfile(path) else None


def config_for(model: str) -> dict | None:
    """The config of a local folder, a known hub id or a hub id in the local cache (None if none)."""
    if os.path.isdir(model):
        path = os.path.join(model, "config.json")
    elif model in KNOWN_SCORER_MODELS:
        return load_scorer_config(KNOWN_SCORER_MODELS[model])
    else:
        path = _hub_cache_config(model)
    if path is None or not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)
