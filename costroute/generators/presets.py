"""Real text-to-image configurations across the cost range, ready to route over.

Every preset is a hub id with settings (steps, guidance, resolution, scheduler); its FLOPs
per image are counted from the published configs shipped with costroute
(:mod:`costroute.costs`), lazily, without weights. Nothing is downloaded until an image is
generated.

Examples
--------
>>> from costroute.generators import presets
>>> presets.names()[:3]
['sdxl-turbo-1', 'sdxl-turbo-4', 'lcm-sdxl-4']
>>> spec = presets.get("sdxl-base-50")
>>> spec.steps, spec.model
(50, 'stabilityai/stable-diffusion-xl-base-1.0')
>>> pool = presets.paper_pool()                  # doctest: +SKIP
>>> pool.costs.argsort().tolist() == list(range(len(pool)))   # doctest: +SKIP
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from ._callable import BackendGenerator
from ._deepfloyd import DeepFloydIFGenerator
from ._diffusers import DiffusersGenerator
from ._spec import GeneratorRegistry

__all__ = ["PRESETS", "get", "names", "paper_pool", "table"]

_SDXL = "stabilityai/stable-diffusion-xl-base-1.0"
_TURBO = "stabilityai/sdxl-turbo"
_SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"
_SD21 = "stabilityai/stable-diffusion-2-1"
_PIXART = "PixArt-alpha/PixArt-XL-2-1024-MS"

#: name -> (backend class, keyword arguments, description); cheapest first.
PRESETS: Mapping[str, tuple[type, dict, str]] = {
    "sdxl-turbo-1": (
        DiffusersGenerator,
        {"model": _TURBO, "steps": 1, "guidance_scale": 0.0, "height": 512, "width": 512},
        "SDXL-Turbo, 1 step, 512 px, no guidance (its recommended use)",
    ),
    "sdxl-turbo-4": (
        DiffusersGenerator,
        {"model": _TURBO, "steps": 4, "guidance_scale": 0.0, "height": 512, "width": 512},
        "SDXL-Turbo, 4 steps, 512 px, no guidance",
    ),
    "lcm-sdxl-4": (
        DiffusersGenerator,
        {
            "model": _SDXL,
            "components": {"unet": "latent-consistency/lcm-sdxl"},
            "scheduler": "lcm",
            "steps": 4,
            "guidance_scale": 8.0,
            "height": 1024,
            "width": 1024,
        },
        "SDXL base with the LCM-distilled UNet and LCMScheduler, 4 steps, 1024 px; guidance is an input "
        "of the distilled UNet, so no guidance batch",
    ),
    "sd15-25": (
        DiffusersGenerator,
        {"model": _SD15, "steps": 25, "guidance_scale": 7.5, "height": 512, "width": 512},
        "Stable Diffusion 1.5, 25 steps, 512 px, guidance 7.5",
    ),
    "sd15-50": (
        DiffusersGenerator,
        {"model": _SD15, "steps": 50, "guidance_scale": 7.5, "height": 512, "width": 512},
        "Stable Diffusion 1.5, 50 steps (diffusers default), 512 px, guidance 7.5",
    ),
    "sd21-50": (
        DiffusersGenerator,
        {"model": _SD21, "steps": 50, "guidance_scale": 7.5, "height": 768, "width": 768},
        "Stable Diffusion 2.1 (768-v), 50 steps, 768 px, guidance 7.5",
    ),
    "pixart-alpha-20": (
        DiffusersGenerator,
        {"model": _PIXART, "steps": 20, "guidance_scale": 4.5, "height": 1024, "width": 1024},
        "PixArt-alpha XL-2 1024-MS, 20 steps (diffusers default), 1024 px, guidance 4.5",
    ),
    "sdxl-base-20": (
        DiffusersGenerator,
        {"model": _SDXL, "steps": 20, "guidance_scale": 5.0, "height": 1024, "width": 1024},
        "SDXL base 1.0, 20 steps, 1024 px, guidance 5.0, no refiner",
    ),
    "sdxl-base-50": (
        DiffusersGenerator,
        {"model": _SDXL, "steps": 50, "guidance_scale": 5.0, "height": 1024, "width": 1024},
        "SDXL base 1.0, 50 steps (diffusers default), 1024 px, guidance 5.0, no refiner",
    ),
    "deepfloyd-if": (
        DeepFloydIFGenerator,
        {
            "stage_1": "DeepFloyd/IF-I-XL-v1.0",
            "stage_2": "DeepFloyd/IF-II-L-v1.0",
            "steps": (100, 50),
            "guidance_scale": (7.0, 4.0),
        },
        "DeepFloyd IF-I-XL (64 px, 100 steps, guidance 7) + IF-II-L (256 px, 50 steps, guidance 4); "
        "no stage III upscaler",
    ),
    "sdxl-base-100": (
        DiffusersGenerator,
        {"model": _SDXL, "steps": 100, "guidance_scale": 5.0, "height": 1024, "width": 1024},
        "SDXL base 1.0, 100 steps, 1024 px, guidance 5.0, no refiner",
    ),
}


def names() -> list[str]:
    """Preset names, cheapest first."""
    return list(PRESETS)


def get(name: str, /, **changes: Any) -> BackendGenerator:
    """A fresh generator for preset ``name`` (named ``name``), with optional ``changes``.

    Parameters
    ----------
    name : str
        One of :func:`names`.
    **changes
        Passed to the generator's ``clone`` (``name=``, ``steps=``, ``dtype=``,
        ``device=``, ``cost=`` ...).

    Returns
    -------
    DiffusersGenerator or DeepFloydIFGenerator

    Raises
    ------
    ValueError
        If ``name`` is not a preset; the message lists them.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid presets are {names()}")
    cls, kwargs, description = PRESETS[name]
    spec = cls(name, **kwargs)
    return spec.clone(**changes) if changes else spec


def paper_pool(subset: list[str] | None = None, **changes: Any) -> GeneratorRegistry:
    """The presets as a :class:`GeneratorRegistry`, cheapest first.

    Parameters
    ----------
    subset : list of str or None, default=None
        A subset of presets, in the order wanted; ``None`` takes all of them.
    **changes
        Applied to every preset (for example ``dtype="float16"`` or ``device="cuda:1"``).

    Returns
    -------
    GeneratorRegistry
    """
    return GeneratorRegistry(get(name, **changes) for name in (names() if subset is None else subset))


def table() -> pd.DataFrame:
    """One row per preset: model, steps, resolution, guidance, FLOPs per image and description.

    Counting the FLOPs builds each architecture on the meta device once (a few seconds
    in all, then cached in-process).
    """
    rows = []
    for name in names():
        spec = get(name)
        s = spec.settings
        model = s.get("model") or f"{s['stage_1']} + {s['stage_2']}"
        breakdown = spec.cost_breakdown()
        rows.append(
            {
                "name": name,
                "model": model,
                "steps": s["steps"],
                "resolution": f"{breakdown.width}x{breakdown.height}",
                "guidance_scale": s["guidance_scale"],
                "guidance_batch": breakdown.guidance,
                "scheduler": s.get("scheduler") or "default",
                "tflops": spec.cost / 1e12,
                "description": PRESETS[name][2],
            }
        )
    return pd.DataFrame(rows).set_index("name")
