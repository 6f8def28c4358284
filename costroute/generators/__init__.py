"""Generator specifications, registries and image-making backends.

Importing this package does not import torch or diffusers; pipelines load on first use.
"""

from . import presets
from ._cache import PipelineCache, clear_pipeline_cache, pipeline_cache
from ._callable import BackendGenerator, CallableGenerator
from ._diffusers import (
    KNOWN_MODELS,
    SCHEDULERS,
    DeepFloydIFGenerator,
    DiffusersGenerator,
    KnownModel,
    build_tiny_pipeline,
)
from ._generate import Fallback, GenerationError, GenerationResult, image_seed
from ._spec import COST_UNITS, GeneratorRegistry, GeneratorSpec

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
