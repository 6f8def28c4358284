"""Generator specifications, registries, image-making backends, presets and the weight cache.

Importing this package does not import torch or diffusers; pipelines load on first use.
Running a plan, and its result types (``GenerationResult``, ``GenerationError``,
``Fallback``, ``image_seed``), live in :mod:`costroute.execution`, the layer above.
"""

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
    "GeneratorRegistry",
    "GeneratorSpec",
    "KnownModel",
    "PipelineCache",
    "build_tiny_pipeline",
    "clear_pipeline_cache",
    "pipeline_cache",
    "presets",
]
