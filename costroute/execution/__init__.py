"""Running routing plans: batching, seeds, retries, fallbacks, progress and results.

:meth:`RoutingPlan.generate <costroute.RoutingPlan.generate>` calls :func:`generate_plan`,
which runs each generator's prompts through a :class:`BatchRunner` and moves failed
prompts to their next generator by utility. The runner is the reusable part: it sends
given prompt indices to one generator with given seeds and reports an
:class:`ImageOutcome` (an image, or the error) per index. :func:`profile` times real
generators on this machine (seconds per image, a registry to route on).

An image is an object with a ``save`` method, such as a PIL image (:func:`is_image`);
anything else a generator returns for a prompt fails that prompt.

Importing this package does not import torch, diffusers or tqdm.
"""

from ._batches import BatchRunner, ImageOutcome, is_out_of_memory
from ._cascade import CascadeResult, generate_cascade
from ._images import is_image
from ._plan import ON_ERROR, generate_plan
from ._profile import DEFAULT_PROFILE_PROMPTS, CostProfile, profile
from ._result import Fallback, GenerationError, GenerationResult
from ._seeds import candidate_seed, image_seed

__all__ = [
    "DEFAULT_PROFILE_PROMPTS",
    "ON_ERROR",
    "BatchRunner",
    "CascadeResult",
    "CostProfile",
    "Fallback",
    "GenerationError",
    "GenerationResult",
    "ImageOutcome",
    "candidate_seed",
    "generate_cascade",
    "generate_plan",
    "image_seed",
    "is_image",
    "is_out_of_memory",
    "profile",
]
