"""Generator specifications, registries, image-making backends, presets and the weight cache.

Importing this package does not import torch or diffusers; pipelines load on first use.
Running a plan lives in :mod:`costroute.execution`; its result types (``GenerationResult``,
``GenerationError``, ``Fallback``) and ``image_seed`` stay importable from here too,
resolved from :mod:`costroute.execution` on first access (so that this package never
imports the layer above it).
"""

from typing import Any

from . import presets
from ._cache import PipelineCache, clear_pipeline_cache, pipeline_cache
from ._callable import BackendGenerator, CallableGenerator
from ._deepfloyd import DeepFloydIFGenerator
from ._diffusers import KNOWN_MODELS, SCHEDULERS, DiffusersGenerator, KnownModel
from ._spec import COST_UNITS, GeneratorRegistry, GeneratorSpec
from ._tiny import build_tiny_pipeline

__all__ = [
    "COST_UNITS",
    "KNOWN_MODELS",
    "SCHEDULERS",
    "BackendGenerator",
    "CallableGenerator",
    "DeepFloydIFGenerator",
    "DiffusersGenerator",
    "Fallback",
    "GenerationError",
    "GenerationResult",
    "GeneratorRegistry",
    "GeneratorSpec",
    "KnownModel",
    "PipelineCache",
    "build_tiny_pipeline",
    "clear_pipeline_cache",
    "image_seed",
    "pipeline_cache",
    "presets",
]

# names that moved to costroute.execution, resolved lazily: execution imports this package
_FROM_EXECUTION = frozenset({"Fallback", "GenerationError", "GenerationResult", "image_seed"})


def __getattr__(name: str) -> Any:
    if name in _FROM_EXECUTION:
        from .. import execution

        return getattr(execution, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _FROM_EXECUTION)
