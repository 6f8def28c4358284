"""costroute: cost-aware routing of text-to-image prompts (CATImage, 2025).

Each prompt goes to the generator with the best expected quality for its cost. Importing
costroute does not import torch, diffusers or sentence-transformers and reads no data.
"""

from .cascade import CascadeRouter
from .generators import GeneratorRegistry, GeneratorSpec
from .plan import RoutingPlan
from .router import BudgetWarning, CostAwareRouter
from .router_cv import CostAwareRouterCV

__version__ = "0.1.0"

__all__ = [
    "BudgetWarning",
    "CascadeRouter",
    "CostAwareRouter",
    "CostAwareRouterCV",
    "GeneratorRegistry",
    "GeneratorSpec",
    "RoutingPlan",
    "__version__",
]
