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
* Counts are cached in memory and on disk (:func:`flop_cache_path`), keyed by the config,
  the input shape, the torch version and :data:`FLOP_COUNTER_VERSION`.
* :class:`GPUPriceModel` turns FLOPs into US dollars with a stated hourly price and a
  stated utilisation of the GPU's dense peak.
* Seconds per image measured on this machine are :func:`costroute.execution.profile`'s
  (it runs the generators, so it lives with the code that runs them).

The package is organised by concept: ``_counting`` (counting modules and components),
``_configs`` (the shipped configs), ``_cache`` (the disk cache), ``_pipeline`` (pipelines),
and ``_prices`` (the price model). Import from ``costroute.costs``.

Importing this module does not import torch, diffusers or transformers.

Examples
--------
>>> from costroute.costs import pipeline_cost
>>> cost = pipeline_cost("sd15", steps=50)            # doctest: +SKIP
>>> round(cost.total / 1e12)                           # doctest: +SKIP
83
"""

from ._cache import FLOP_COUNTER_VERSION, FlopCacheWarning, flop_cache_path
from ._configs import (
    ARCHITECTURES,
    COMPONENTS,
    DEFAULT_STEPS,
    NATIVE_RESOLUTION,
    TEXT_TOKENS,
    load_config,
)
from ._counting import ComponentCost, component_cost, count_flops, count_parameters
from ._pipeline import PipelineCost, cost_from_pretrained, diffusion_cost_from_configs, pipeline_cost
from ._prices import DEFAULT_PRICE_MODEL, GPUPriceModel

__all__ = [
    "ARCHITECTURES",
    "COMPONENTS",
    "DEFAULT_PRICE_MODEL",
    "DEFAULT_STEPS",
    "FLOP_COUNTER_VERSION",
    "NATIVE_RESOLUTION",
    "TEXT_TOKENS",
    "ComponentCost",
    "FlopCacheWarning",
    "GPUPriceModel",
    "PipelineCost",
    "component_cost",
    "cost_from_pretrained",
    "count_flops",
    "count_parameters",
    "diffusion_cost_from_configs",
    "flop_cache_path",
    "load_config",
    "pipeline_cost",
]
