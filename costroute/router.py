"""CostAwareRouter: route each prompt to the generator with the best quality for its cost."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from sklearn.multioutput import MultiOutputRegressor
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted, validate_data

from .features import COMPLEXITY_FEATURES, PromptComplexity, SentenceEmbedder, check_prompts
from .generators import GeneratorRegistry
from .plan import RoutingPlan
from .routing import BudgetWarning, assign_generators, check_budget, check_penalty, penalty_for_budget

__all__ = ["BudgetWarning", "CostAwareRouter", "DEFAULT_N_NEIGHBORS", "FEATURE_CHOICES", "QUALITY_MODEL_CHOICES"]

FEATURE_CHOICES = ("minilm", "complexity", "minilm+complexity")
QUALITY_MODEL_CHOICES = ("knn", "mlp", "gbm", "ridge")
#: Neighbours of the default ``quality_model="knn"`` (fewer when the training set is smaller).
DEFAULT_N_NEIGHBORS = 40


def _build_features(spec):
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec == "minilm":
            return SentenceEmbedder()
        complexity = make_pipeline(PromptComplexity(), StandardScaler())
        if spec == "complexity":
            return complexity
        if spec == "minilm+complexity":
            # Both blocks get a comparable norm: the unit-norm embedding, and the standardised
            # statistics scaled by 1/sqrt(d) so that they do not swamp it in distances.
            return FeatureUnion(
                [("minilm", SentenceEmbedder()), ("complexity", complexity)],
                transformer_weights={"minilm": 1.0, "complexity": 1.0 / math.sqrt(len(COMPLEXITY_FEATURES))},
            )
        raise ValueError(
            f"unknown features {spec!r}; valid choices are {list(FEATURE_CHOICES)}, a scikit-learn "
            "transformer of a list of strings, or None for numeric X"
        )
    if hasattr(spec, "fit") and hasattr(spec, "transform"):
        return clone(spec)
    raise TypeError(
        f"features must be one of {list(FEATURE_CHOICES)}, a scikit-learn transformer or None, "
        f"got {type(spec).__name__}: {spec!r}"
    )


def _build_quality_model(spec, n_samples: int, random_state):
    if isinstance(spec, str):
        if spec == "knn":
            return KNeighborsRegressor(n_neighbors=min(DEFAULT_N_NEIGHBORS, n_samples))
        if spec == "ridge":
            return RidgeCV(alphas=np.logspace(-3, 3, 13))
        if spec == "mlp":
            mlp = MLPRegressor(
                hidden_layer_sizes=(64,), alpha=1.0, learning_rate_init=1e-3, max_iter=300,
                early_stopping=n_samples >= 50, n_iter_no_change=20, random_state=random_state,
            )
            return TransformedTargetRegressor(regressor=mlp, transformer=StandardScaler())
        if spec == "gbm":
            return MultiOutputRegressor(
                HistGradientBoostingRegressor(
                    max_iter=150, learning_rate=0.05, max_leaf_nodes=15,
                    min_samples_leaf=max(1, min(20, n_samples // 10)), l2_regularization=1.0,
                    random_state=random_state,
                )
            )
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


class CostAwareRouter(BaseEstimator):
    """Route each prompt to the generator with the best predicted quality for its cost.

    A quality model learns q̂_k(x), the expected quality of generator k's image for prompt
    x, from prompts whose quality was measured for every generator. Routing picks
    ``argmax_k q̂_k(x) − cost_penalty · c̃_k`` with c̃_k = c_k / max_j c_j (ties go to the
    cheaper generator). A ``budget`` on the mean normalised cost of a batch is met by
    raising the penalty until the batch fits (CATImage, 2025).

    Parameters
    ----------
    generators : GeneratorRegistry, list of GeneratorSpec or dict
        The generators, with their cost per image. A dict maps name -> cost.
    features : {"minilm", "complexity", "minilm+complexity"}, transformer or None, default="minilm"
        How prompts become numbers: all-MiniLM-L6-v2 sentence embeddings (cached per
        text), standardised :class:`~costroute.features.PromptComplexity` statistics, both,
        any scikit-learn transformer of a list of strings (cloned in ``fit``), or ``None``
        when ``X`` is already a numeric array.
    quality_model : {"knn", "mlp", "gbm", "ridge"} or regressor, default="knn"
        Regressor of the (n, K) quality matrix: k-nearest neighbours (k=40 or the training
        size if smaller), an MLP, histogram gradient boosting (one per generator), RidgeCV,
        or any scikit-learn regressor (cloned; single-output ones are wrapped in
        :class:`~sklearn.multioutput.MultiOutputRegressor`).
    cost_penalty : float, default=0.0
        λ >= 0, in quality units per unit of normalised cost. 0 picks the best predicted
        quality whatever the cost.
    budget : float or None, default=None
        Target mean normalised cost of a routed batch. When set, :meth:`route` raises λ
        above ``cost_penalty`` as little as needed for the batch to meet it.
    random_state : int, RandomState or None, default=None
        Seed of the "mlp" and "gbm" quality models.

    Attributes
    ----------
    generators_ : GeneratorRegistry
        The validated registry.
    generator_names_ : ndarray of str, shape (K,)
        Column order of :meth:`predict_quality`.
    costs_ : ndarray of shape (K,)
        Cost per image, in ``generators_.cost_unit``.
    normalized_costs_ : ndarray of shape (K,)
        ``costs_ / costs_.max()``.
    features_ : transformer or None
        The fitted feature transformer.
    quality_model_ : regressor
        The fitted quality model.
    n_features_in_ : int
        Only when ``features=None``: number of numeric input columns.

    Examples
    --------
    >>> from costroute import CostAwareRouter
    >>> prompts = ["a white wall", "three red kites left of two tall trees at dusk"]
    >>> quality = [[3.0, 3.1], [1.0, 4.0]]  # columns: turbo, base
    >>> router = CostAwareRouter({"turbo": 1.0, "base": 10.0}, features="complexity",
    ...                          quality_model="ridge", cost_penalty=0.5).fit(prompts, quality)
    >>> router.predict(prompts).tolist()
    ['turbo', 'base']
    >>> router.route(prompts, cost_penalty=5.0).generator_names.tolist()
    ['turbo', 'turbo']
    """

    def __init__(
        self,
        generators,
        features="minilm",
        quality_model="knn",
        cost_penalty: float = 0.0,
        budget: float | None = None,
        random_state=None,
    ):
        self.generators = generators
        self.features = features
        self.quality_model = quality_model
        self.cost_penalty = cost_penalty
        self.budget = budget
        self.random_state = random_state

    # ------------------------------------------------------------------ validation
    def _check_X(self, X, *, reset: bool):
        if self.features is None:
            return validate_data(self, X, reset=reset)
        return check_prompts(X)

    def _check_y(self, y, n_samples: int) -> np.ndarray:
        names = list(self.generator_names_)
        k = len(names)
        if y is None:
            raise ValueError(
                f"requires y to be passed, but the target y is None: y holds the measured quality of "
                f"each of the {k} generators {names}"
            )
        if isinstance(y, pd.DataFrame):
            cols = [str(c) for c in y.columns]
            dupes = sorted({c for c in cols if cols.count(c) > 1})
            missing = [n for n in names if n not in cols]
            unknown = [c for c in cols if c not in names]
            if dupes or missing or unknown:
                raise ValueError(
                    "the columns of y must be exactly the generator names "
                    f"{names}; missing: {missing}, unknown: {unknown}, duplicated: {dupes}"
                )
            y = y.set_axis(cols, axis=1)[names]
        try:
            Y = np.asarray(y, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"y must hold numbers (quality scores): {exc}") from exc
        if Y.ndim == 1 and k == 1:
            Y = Y[:, None]
        if Y.ndim != 2 or Y.shape != (n_samples, k):
            raise ValueError(
                f"y must have shape (n_samples, n_generators) = ({n_samples}, {k}) with columns in "
                f"the order {names}, got shape {Y.shape}"
            )
        bad = ~np.isfinite(Y)
        if bad.any():
            rows, cols = np.nonzero(bad)
            where = ", ".join(f"(row {r}, {names[c]})" for r, c in list(zip(rows, cols))[:5])
            raise ValueError(f"y contains NaN or inf at {bad.sum()} cell(s), e.g. {where}")
        return Y

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y):
        """Fit the feature transformer and the quality model.

        Parameters
        ----------
        X : list of str, or array of shape (n, d) when ``features=None``
            Training prompts.
        y : array of shape (n, K) or DataFrame
            Measured quality of each generator for each prompt. An array's columns follow
            the registry order; a DataFrame's columns must be exactly the generator names
            (any order).

        Returns
        -------
        self : CostAwareRouter
        """
        # a private copy: specs the user changes later cannot desynchronise fitted costs
        self.generators_ = copy.deepcopy(GeneratorRegistry.coerce(self.generators))
        self.generator_names_ = np.asarray(self.generators_.names, dtype=object)
        self.costs_ = self.generators_.costs
        self.normalized_costs_ = self.generators_.normalized_costs()
        check_penalty(self.cost_penalty)
        check_budget(self.budget)
        X = self._check_X(X, reset=True)
        Y = self._check_y(y, len(X))
        self.features_ = _build_features(self.features)
        Xt = X if self.features_ is None else self.features_.fit_transform(X)
        self.quality_model_ = _build_quality_model(self.quality_model, len(X), self.random_state)
        self.quality_model_.fit(Xt, Y)
        return self

    # ------------------------------------------------------------------ prediction
    def _predict_checked(self, X) -> np.ndarray:
        Xt = X if self.features_ is None else self.features_.transform(X)
        return np.asarray(self.quality_model_.predict(Xt), dtype=float).reshape(len(X), len(self.generator_names_))

    def predict_quality(self, X) -> np.ndarray:
        """Predicted quality of every generator, shape (n, K), columns in ``generator_names_`` order."""
        check_is_fitted(self, "quality_model_")
        return self._predict_checked(self._check_X(X, reset=False))

    def route(self, X, cost_penalty: float | None = None, budget: float | None = None) -> RoutingPlan:
        """Route a batch of prompts.

        Parameters
        ----------
        X : list of str, or numeric array when ``features=None``
            The prompts. Order and length are preserved; an empty string is a prompt.
        cost_penalty : float or None
            λ for this call; ``None`` uses the estimator's ``cost_penalty``.
        budget : float or None
            Target mean normalised cost for this batch; ``None`` uses the estimator's
            ``budget``. λ becomes the smallest value >= the cost penalty that meets it.

        Returns
        -------
        RoutingPlan
        """
        check_is_fitted(self, "quality_model_")
        lam = check_penalty(self.cost_penalty if cost_penalty is None else cost_penalty)
        budget = check_budget(self.budget if budget is None else budget)
        prompts = self._check_X(X, reset=False)
        Q = self._predict_checked(prompts)
        if budget is not None:
            lam = penalty_for_budget(Q, self.normalized_costs_, budget, floor=lam, stacklevel=3)
        return RoutingPlan(
            prompts, assign_generators(Q, self.normalized_costs_, lam, generator_names=self.generator_names_), self.generators_, Q, lam, budget
        )

    def predict(self, X) -> np.ndarray:
        """The chosen generator's name for each prompt (uses ``cost_penalty`` and ``budget``)."""
        return self.route(X).generator_names

    def routing_outcome(self, X, y) -> tuple[float, float]:
        """Mean true quality and mean normalised cost of this router's own routing of ``X``.

        ``y`` is the measured quality of ``X`` (same rules as in :meth:`fit`); the routing
        uses the estimator's ``cost_penalty`` and ``budget``.
        """
        check_is_fitted(self, "quality_model_")
        X = self._check_X(X, reset=False)
        Y = self._check_y(y, len(X))
        plan = self.route(X)
        return float(Y[np.arange(len(plan)), plan.assignments].mean()), plan.mean_normalized_cost

    def score(self, X, y) -> float:
        """Mean realised quality of this router's own routing minus ``cost_penalty`` x its mean normalised cost.

        The subtracted penalty is the ``cost_penalty`` parameter, also when a ``budget``
        made the routing use a larger λ. This objective moves with ``cost_penalty`` itself,
        so it is *not* suitable for choosing ``cost_penalty`` by grid search (every
        candidate is judged by its own yardstick and the smallest penalty wins); use
        :func:`costroute.metrics.make_routing_scorer` with a fixed trade-off.
        """
        quality, cost = self.routing_outcome(X, y)
        return quality - float(self.cost_penalty) * cost

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.input_tags.string = self.features is not None
        tags.input_tags.two_d_array = self.features is None
        tags.non_deterministic = self.quality_model in ("mlp", "gbm") and self.random_state is None
        return tags
