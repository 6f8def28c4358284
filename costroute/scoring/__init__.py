"""Image scorers: (prompts, images) -> one float per image, higher is better, with a cost per image.

The second stage of "route, then verify": generate with the routed generator, score the
image, escalate when it pays. Scorers describe a model and hold no weights; model scorers
load on first :meth:`~Scorer.score` into the shared
:data:`costroute.generators.pipeline_cache`. Their cost per image is counted in FLOPs from
the model's config (:func:`scorer_cost`) and can be read in dollars through the same
:class:`~costroute.costs.GPUPriceModel` as the generators' (:meth:`Scorer.cost_in`).

Importing this package does not import torch or transformers.
"""

from ._base import COST_UNITS, Scorer
from ._callable import CallableScorer
from ._clip import CLIP_OUTPUTS, CLIPScorer
from ._costs import (
    KNOWN_SCORER_MODELS,
    SCORER_ARCHITECTURES,
    VQA_TEXT_TOKENS,
    ScorerCost,
    load_scorer_config,
    scorer_cost,
)
from ._tiny import build_tiny_clip, build_tiny_vlm
from ._vqa import VQASCORE_QUESTION, VQAScorer

__all__ = [
    "CLIP_OUTPUTS",
    "COST_UNITS",
    "KNOWN_SCORER_MODELS",
    "SCORER_ARCHITECTURES",
    "VQASCORE_QUESTION",
    "VQA_TEXT_TOKENS",
    "CLIPScorer",
    "CallableScorer",
    "Scorer",
    "ScorerCost",
    "VQAScorer",
    "build_tiny_clip",
    "build_tiny_vlm",
    "load_scorer_config",
    "scorer_cost",
]
