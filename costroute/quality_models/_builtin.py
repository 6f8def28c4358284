"""The built-in quality models, by name: what ``CostAwareRouter(quality_model=...)`` builds."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from sklearn.multioutput import MultiOutputRegressor
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags

__all__ = ["DEFAULT_N_NEIGHBORS", "QUALITY_MODEL_CHOICES", "build_quality_model", "describe_model", "reads_text"]

QUALITY_MODEL_CHOICES = ("knn", "mlp", "gbm", "ridge", "lowrank", "transformer")
#: Neighbours of the default ``quality_model="knn"`` (fewer when the training set is smaller).
DEFAULT_N_NEIGHBORS = 40


def describe_model(model) -> str:
    """A short name of a fitted quality model for error messages."""
    name = type(model).__name__
    if isinstance(model, MultiOutputRegressor):
        name += f"({type(model.estimator).__name__})"
    return name


def reads_text(model) -> bool:
    """Whether a quality model takes the prompts themselves (``input_tags.string``).

    Such a model -- a fine-tuned text encoder, say -- receives the validated prompts and the
    router's ``features`` are not used.
    """
    try:
        return bool(get_tags(model).input_tags.string)
    except Exception:  # a regressor without sklearn tags reads numbers
        return False


def build_quality_model(spec, n_samples: int, random_state, progress: bool = True):
    """The unfitted quality model for ``spec``: a built-in name, or a clone of a regressor.

    Parameters
    ----------
    spec : str or regressor
        One of :data:`QUALITY_MODEL_CHOICES`, or any scikit-learn regressor (cloned; one
        that is not tagged multi-output is wrapped in
        :class:`~sklearn.multioutput.MultiOutputRegressor`).
    n_samples : int
        Number of training prompts (sizes the neighbourhood and the early stopping).
    random_state : int, RandomState or None
        Seed of the stochastic models.
    progress : bool, default=True
        Whether "transformer" shows its fine-tuning progress bar.
    """
    if isinstance(spec, str):
        if spec == "knn":
            return KNeighborsRegressor(n_neighbors=min(DEFAULT_N_NEIGHBORS, n_samples))
        if spec == "ridge":
            return RidgeCV(alphas=np.logspace(-3, 3, 13))
        if spec == "lowrank":
            from ._lowrank import LowRankRegressor

            return LowRankRegressor(cv=min(5, n_samples), random_state=0 if random_state is None else random_state)
        if spec == "mlp":
            mlp = MLPRegressor(
                hidden_layer_sizes=(64,),
                alpha=1.0,
                learning_rate_init=1e-3,
                max_iter=300,
                early_stopping=n_samples >= 50,
                n_iter_no_change=20,
                random_state=random_state,
            )
            return TransformedTargetRegressor(regressor=mlp, transformer=StandardScaler())
        if spec == "gbm":
            return MultiOutputRegressor(
                HistGradientBoostingRegressor(
                    max_iter=150,
                    learning_rate=0.05,
                    max_leaf_nodes=15,
                    min_samples_leaf=max(1, min(20, n_samples // 10)),
                    l2_regularization=1.0,
                    random_state=random_state,
                )
            )
        if spec == "transformer":  # fine-tuned all-MiniLM-L6-v2; torch loads in its fit, not here
            from ._transformer import TransformerRegressor

            return TransformerRegressor(random_state=random_state, progress=progress)
        raise ValueError(
            f"unknown quality_model {spec!r}; valid choices are {list(QUALITY_MODEL_CHOICES)} "
            "or a scikit-learn regressor"
        )
    if hasattr(spec, "fit") and hasattr(spec, "predict"):
        model = clone(spec)
        if not get_tags(model).target_tags.multi_output:
            model = MultiOutputRegressor(model)
        return model
    raise TypeError(
        f"quality_model must be one of {list(QUALITY_MODEL_CHOICES)} or a scikit-learn regressor, "
        f"got {type(spec).__name__}: {spec!r}"
    )
