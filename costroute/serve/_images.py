"""Images on the wire: PNG in base64 (:func:`encode_png`) and the size a generator makes (:func:`generator_size`)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
from typing import Any

from ..generators import KNOWN_MODELS, DiffusersGenerator

__all__ = ["encode_png", "format_size", "generator_size", "parse_size"]

_SIZE = re.compile(r"^\s*(\d{1,5})\s*[xX]\s*(\d{1,5})\s*$")


def encode_png(image: Any) -> str:
    """``image`` (anything with PIL's ``save(file, format=...)``) as base64 PNG text."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def parse_size(text: str) -> tuple[int, int] | None:
    """``"640x480"`` -> ``(640, 480)`` (width, height); ``"auto"`` -> ``None``; anything else: ``ValueError``."""
    if text.strip().lower() == "auto":
        return None
    match = _SIZE.match(text)
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise ValueError(f"size must be WIDTHxHEIGHT in pixels (e.g. 512x512) or 'auto', got {text!r}")
    return int(match.group(1)), int(match.group(2))


def format_size(size: tuple[int, int] | None) -> str | None:
    """``(640, 480)`` -> ``"640x480"``."""
    return None if size is None else f"{size[0]}x{size[1]}"


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _side(value: Any) -> int | None:
    if isinstance(value, (list, tuple)) and value:
        value = value[0]
    return int(value) if isinstance(value, int) and value > 0 else None


def _folder_side(folder: str) -> int | None:
    """The default image side of a ``save_pretrained`` pipeline folder, from its configs."""
    vae = _read_json(os.path.join(folder, "vae", "config.json"))
    scale = 2 ** (len(vae.get("block_out_channels", [0, 0, 0, 0])) - 1)
    for denoiser in ("unet", "transformer"):
        side = _side(_read_json(os.path.join(folder, denoiser, "config.json")).get("sample_size"))
        if side is not None:
            return side * scale
    return None


def generator_size(generator: Any) -> tuple[int, int] | None:
    """``(width, height)`` of the images ``generator`` makes, or ``None`` when it cannot be told without running it.

    A :class:`~costroute.generators.DiffusersGenerator` makes its ``width``/``height``, or by
    default its pipeline's (from a local folder's configs, or a known hub id's resolution).
    Any other generator declares its size with the settings ``width`` and ``height``, or
    ``size="WxH"``.
    """
    settings = getattr(generator, "settings", {}) or {}
    width, height = settings.get("width"), settings.get("height")
    if isinstance(generator, DiffusersGenerator) and (width is None or height is None):
        model = str(settings.get("model"))
        side = _folder_side(model) if os.path.isdir(model) else None
        if side is None and model in KNOWN_MODELS:
            side = KNOWN_MODELS[model].resolution
        if side is None:
            return None
        width, height = width or side, height or side
    if width is None and height is None and isinstance(settings.get("size"), str):
        try:
            return parse_size(settings["size"])
        except ValueError:
            return None
    if isinstance(width, int) and isinstance(height, int):
        return int(width), int(height)
    return None
