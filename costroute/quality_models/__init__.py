"""Quality models: regressors of the (n_prompts, n_generators) quality matrix.

:class:`~costroute.CostAwareRouter` builds one by name (``quality_model="knn"``, ...) or
clones any scikit-learn regressor. A model tagged ``input_tags.string`` reads the prompts
themselves; every other model reads the router's ``features``.
"""

from ._builtin import (
    DEFAULT_N_NEIGHBORS,
    QUALITY_MODEL_CHOICES,
    build_quality_model,
    describe_model,
    reads_text,
)
from ._lowrank import LowRankRegressor
from ._transformer import TransformerRegressor

__all__ = [
    "DEFAULT_N_NEIGHBORS",
    "LowRankRegressor",
    "QUALITY_MODEL_CHOICES",
    "TransformerRegressor",
    "build_quality_model",
    "describe_model",
    "reads_text",
]
