"""CostAwareRouter: route each prompt to the generator with the best quality for its cost."""

from __future__ import annotations

import copy
import math
import numbers
import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

from .features import COMPLEXITY_FEATURES, PromptComplexity, SentenceEmbedder, check_prompts
from .generators import GeneratorRegistry
from .plan import RoutingPlan
from .quality_models import (
    DEFAULT_N_NEIGHBORS,
    QUALITY_MODEL_CHOICES,
    LowRankRegressor,
    build_quality_model,
    describe_model,
    reads_text,
)
from .routing import BudgetWarning, assign_generators, check_budget, check_penalty, penalty_for_budget

__all__ = [
    "BudgetWarning",
    "CostAwareRouter",
    "DEFAULT_N_NEIGHBORS",
    "FEATURE_CHOICES",
    "MIN_TRAINING_PROMPTS",
    "QUALITY_MODEL_CHOICES",
]

FEATURE_CHOICES = ("minilm", "complexity", "minilm+complexity")


#: Fewest rated prompts a built-in quality model is fitted on (see :meth:`CostAwareRouter.fit`).
MIN_TRAINING_PROMPTS = 2
# Largest |quality| accepted in y and in predictions: the routing divides quality differences
# by cost differences, which must stay within float range for a budget's λ to exist.
_MAX_ABS_QUALITY = 1e100


def _build_features(spec, progress: bool = True):
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec == "minilm":
            return SentenceEmbedder(progress=progress)
        complexity = make_pipeline(PromptComplexity(), StandardScaler())
        if spec == "complexity":
            return complexity
        if spec == "minilm+complexity":
            # Both blocks get a comparable norm: the unit-norm embedding, and the standardised
            # statistics scaled by 1/sqrt(d) so that they do not swamp it in distances.
            return FeatureUnion(
                [("minilm", SentenceEmbedder(progress=progress)), ("complexity", complexity)],
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


def _builtin_embedders(features):
    """The SentenceEmbedders inside a transformer built from a string ``features``."""
    if isinstance(features, SentenceEmbedder):
        return [features]
    if isinstance(features, FeatureUnion):
        return [t for _, t in features.transformer_list if isinstance(t, SentenceEmbedder)]
    return []


def _looks_like_text(X) -> bool:
    """Whether ``X`` is a prompt string or a 1-d collection holding strings."""
    if isinstance(X, (str, bytes)):
        return True
    if getattr(X, "ndim", 1) != 1 or not isinstance(X, (list, tuple, np.ndarray, pd.Series)):
        return False
    return any(isinstance(v, (str, bytes)) for v in X)


def _warn_if_constant_knn(model, n_samples: int) -> None:
    """Warn when a uniform k-NN quality model averages every training prompt (a constant prediction)."""
    if not isinstance(model, KNeighborsRegressor) or model.weights != "uniform":
        return
    k = model.n_neighbors
    if isinstance(k, numbers.Integral) and k >= n_samples:
        warnings.warn(
            f"quality_model k-nearest neighbours with k={k} on n={n_samples} training prompts averages all of "
            "them: every prompt gets the same predicted quality and the same route. Use "
            'quality_model="ridge" (or "lowrank"), a KNeighborsRegressor with fewer neighbours than '
            f"training prompts, or rate more than {DEFAULT_N_NEIGHBORS} prompts",
            UserWarning,
            stacklevel=3,
        )


class CostAwareRouter(BaseEstimator):
    """Route each prompt to the generator with the best predicted quality for its cost.

    A quality model learns q̂_k(x), the expected quality of generator k's image for prompt
    x, from prompts whose quality was measured for every generator (or, with
    ``quality_model="lowrank"``, for some of them: NaN where not measured). Routing picks
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
    quality_model : {"knn", "mlp", "gbm", "ridge", "lowrank", "transformer"} or regressor, default="knn"
        Regressor of the (n, K) quality matrix: k-nearest neighbours (k=40 or the training
        size if smaller), an MLP, histogram gradient boosting (one per generator), RidgeCV,
        :class:`~costroute.quality_models.LowRankRegressor` (generator means + prompt
        difficulty + a rank-2 interaction, penalties by inner CV), the fine-tuned MiniLM
        :class:`~costroute.quality_models.TransformerRegressor` (reads the prompts; minutes
        per fit on a CPU), or any scikit-learn regressor (cloned; single-output ones are wrapped in
        :class:`~sklearn.multioutput.MultiOutputRegressor`). A regressor tagged
        ``input_tags.string`` reads the prompts themselves: it is given the validated
        prompts and ``features`` is not used (``features_`` is ``None``).
    cost_penalty : float, default=0.0
        λ >= 0, in quality units per unit of normalised cost. 0 picks the best predicted
        quality whatever the cost.
    budget : float or None, default=None
        Target mean normalised cost of a routed batch. When set, :meth:`route` raises λ
        above ``cost_penalty`` as little as needed for the batch to meet it.
    random_state : int, RandomState or None, default=None
        Seed of the "mlp" and "gbm" quality models.
    progress : bool, default=True
        Let the built-in MiniLM features show a tqdm progress bar on stderr when they
        embed at least 256 prompts not embedded before in this process (a first ``fit``
        on a few hundred prompts takes 10-20 s on a laptop CPU). ``False`` keeps stderr
        silent. Read at every ``fit``, ``predict`` and ``route``; a transformer passed as
        ``features`` keeps its own settings.

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
        progress: bool = True,
    ):
        self.generators = generators
        self.features = features
        self.quality_model = quality_model
        self.cost_penalty = cost_penalty
        self.budget = budget
        self.random_state = random_state
        self.progress = progress

    # ------------------------------------------------------------------ validation
    def _reads_text(self) -> bool:
        """Whether the quality model takes the prompts themselves (``features`` then unused)."""
        spec = self.quality_model
        if isinstance(spec, str):
            try:
                spec = build_quality_model(spec, MIN_TRAINING_PROMPTS, None)
            except ValueError:  # an unknown name: fit reports it
                return False
        return reads_text(spec)

    def _check_X(self, X, *, reset: bool):
        if self.features is None and not self._reads_text():
            if _looks_like_text(X):
                raise ValueError(
                    "features=None expects numeric X of shape (n_samples, n_features), got prompt "
                    f"text ({type(X).__name__}); to route prompts, set features='minilm' (or one of "
                    f"{list(FEATURE_CHOICES)}, or a transformer of a list of strings)"
                )
            return validate_data(self, X, reset=reset)
        return check_prompts(X)

    def _check_progress(self) -> bool:
        if not isinstance(self.progress, (bool, np.bool_)):
            raise TypeError(f"progress must be True or False, got {type(self.progress).__name__}: {self.progress!r}")
        return bool(self.progress)

    def _fits_missing(self) -> bool:
        """Whether the quality model fits a ``y`` with missing (NaN) cells: ``"lowrank"`` or a LowRankRegressor."""
        return (isinstance(self.quality_model, str) and self.quality_model == "lowrank") or isinstance(
            self.quality_model, LowRankRegressor
        )

    def _check_y(self, y, n_samples: int, allow_nan: bool = False, fitting: bool = False) -> np.ndarray:
        """``y`` as a finite (n_samples, K) float array in ``generator_names_`` order.

        ``allow_nan=True`` lets NaN cells through (infinities are still refused), for callers
        that read only some cells and check the ones they read, and for a quality model that
        fits missing cells. ``fitting=True`` words the refusal of NaN for :meth:`fit`.
        """
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
        bad = np.isinf(Y) if allow_nan else ~np.isfinite(Y)
        if bad.any():
            rows, cols = np.nonzero(bad)
            where = ", ".join(f"(row {r}, {names[c]})" for r, c in list(zip(rows, cols))[:5])
            what = "inf" if allow_nan else "NaN or inf"
            hint = ""
            if fitting and not allow_nan and np.isnan(Y).any():
                spec = self.quality_model
                shown = repr(spec) if isinstance(spec, str) else describe_model(spec)
                hint = (
                    f". quality_model={shown} needs every cell; to fit a quality "
                    "matrix with missing (NaN) cells, such as a service's store loaded with load_collection(..., "
                    'missing="nan") or one pooled by costroute.datasets.pool, use quality_model="lowrank" '
                    "(see docs/routing.md), or drop the incomplete rows"
                )
            raise ValueError(f"y contains {what} at {bad.sum()} cell(s), e.g. {where}{hint}")
        if fitting and allow_nan:
            empty = np.flatnonzero(np.isnan(Y).all(axis=0))
            if empty.size:
                raise ValueError(
                    f"y has no measured (non-NaN) cell for generator(s) {[names[c] for c in empty]}: the quality "
                    "model cannot learn anything about them. Measure some prompts with them, or leave them out "
                    "of the router's generators"
                )
        huge = np.abs(Y) > _MAX_ABS_QUALITY
        if huge.any():
            rows, cols = np.nonzero(huge)
            where = ", ".join(f"(row {r}, {names[c]}: {Y[r, c]:.3g})" for r, c in list(zip(rows, cols))[:5])
            raise ValueError(
                f"y holds {huge.sum()} value(s) beyond ±{_MAX_ABS_QUALITY:.0e}, e.g. {where}; quality "
                "differences divided by cost differences would overflow. Rescale the quality scores"
            )
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
            (any order). With ``quality_model="lowrank"`` (or a
            :class:`~costroute.quality_models.LowRankRegressor`), NaN marks a cell that was
            not measured -- the sparse matrix of a service that sends each prompt to one or
            a few generators (``load_collection(..., missing="nan")``); every generator needs
            at least one measured cell.

        Returns
        -------
        self : CostAwareRouter

        Raises
        ------
        ValueError
            On a bad X or y (the message names the position or cell), on text X with
            ``features=None``, and when a built-in quality model is given fewer than
            ``MIN_TRAINING_PROMPTS`` (2) rated prompts: one prompt shows nothing about how
            quality varies between prompts. A custom regressor decides for itself. A y with
            NaN cells is refused, with a pointer to ``quality_model="lowrank"``, by every
            quality model but the low-rank one, which refuses a generator with no measured
            cell (naming it).
        TypeError
            On a non-string prompt or a parameter of the wrong type.

        Warns
        -----
        UserWarning
            When a k-nearest-neighbours quality model with uniform weights has k >= the number
            of training prompts (``quality_model="knn"`` uses k = min(40, n)): every prediction
            is then the mean of all training prompts, one constant route for every prompt.
        """
        # a private copy: specs the user changes later cannot desynchronise fitted costs
        self.generators_ = copy.deepcopy(GeneratorRegistry.coerce(self.generators))
        self.generator_names_ = np.asarray(self.generators_.names, dtype=object)
        self.costs_ = self.generators_.costs
        self.normalized_costs_ = self.generators_.normalized_costs()
        check_penalty(self.cost_penalty)
        check_budget(self.budget)
        progress = self._check_progress()
        X = self._check_X(X, reset=True)
        Y = self._check_y(y, len(X), allow_nan=self._fits_missing(), fitting=True)
        if isinstance(self.quality_model, str) and len(X) < MIN_TRAINING_PROMPTS:
            raise ValueError(
                f"quality_model={self.quality_model!r} needs at least {MIN_TRAINING_PROMPTS} rated prompts, "
                f"got {len(X)} sample: one prompt shows nothing about how quality varies between prompts, "
                "and every prompt would be routed to the generator that was best on it. Rate more "
                "prompts, or use that generator for everything"
            )
        self.features_ = None if self._reads_text() else _build_features(self.features, progress)
        Xt = X if self.features_ is None else self.features_.fit_transform(X)
        self.quality_model_ = build_quality_model(self.quality_model, len(X), self.random_state, progress)
        _warn_if_constant_knn(self.quality_model_, len(X))
        if isinstance(self.quality_model_, LowRankRegressor):  # its messages then name the generators
            Y = pd.DataFrame(Y, columns=[str(name) for name in self.generator_names_])
        self.quality_model_.fit(Xt, Y)
        return self

    # ------------------------------------------------------------------ prediction
    def _transform(self, X):
        if self.features_ is None:
            return X
        if isinstance(self.features, str):  # built here: follows the current ``progress``
            for embedder in _builtin_embedders(self.features_):
                embedder.progress = self._check_progress()
        return self.features_.transform(X)

    def _predict_checked(self, X) -> np.ndarray:
        """The quality model's predictions for validated ``X``, checked: shape (n, K), all finite.

        Every prediction goes through here (``predict_quality``, ``predict``, ``route`` with
        or without a budget, ``score``), so a faulty quality model cannot route silently.
        """
        names = [str(name) for name in self.generator_names_]
        n, k = len(X), len(names)
        model = describe_model(self.quality_model_)
        raw = self.quality_model_.predict(self._transform(X))
        try:
            Q = np.asarray(raw, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"the quality model {model} returned predictions that are not numbers ({type(raw).__name__}): {exc}"
            ) from exc
        if Q.ndim == 1 and k == 1 and Q.shape[0] == n:
            Q = Q[:, None]
        if Q.shape != (n, k):
            raise ValueError(
                f"the quality model {model} returned predictions of shape {Q.shape} for {n} prompt(s); "
                f"expected (n_prompts, n_generators) = ({n}, {k}), one column per generator in the order "
                f"{names}. A custom regressor must predict every column of the quality matrix it was "
                "fitted on (one that is not tagged multi-output is wrapped in MultiOutputRegressor)"
            )
        bad = ~np.isfinite(Q) | (np.abs(Q) > _MAX_ABS_QUALITY)
        if bad.any():
            rows = np.flatnonzero(bad.any(axis=1))
            generators = [names[j] for j in np.flatnonzero(bad.any(axis=0))]
            examples = "; ".join(
                f"{self._describe_row(X, i)}: " + ", ".join(f"{names[j]}={Q[i, j]}" for j in np.flatnonzero(bad[i]))
                for i in rows[:3]
            )
            more = f"; and {len(rows) - 3} more" if len(rows) > 3 else ""
            raise ValueError(
                f"the quality model {model} predicted NaN or inf (or beyond ±{_MAX_ABS_QUALITY:.0e}) quality "
                f"for {len(rows)} of {n} prompt(s) and generator(s) {generators}: {examples}{more}. Routing "
                "needs finite predictions (an argmax over NaN or inf silently picks the cheapest "
                "generator); check the regressor and the features it is given"
            )
        return Q

    def _describe_row(self, X, i: int) -> str:
        if not isinstance(X[i], str):
            return f"row {i}"
        text = X[i] if len(X[i]) <= 60 else X[i][:57] + "..."
        return f"prompt {i} {text!r}"

    def predict_quality(self, X) -> np.ndarray:
        """Predicted quality of every generator, shape (n, K), columns in ``generator_names_`` order.

        Raises
        ------
        ValueError
            If the quality model returns a wrong shape or a NaN or infinite prediction (the
            message names the model, the generators and the first prompts concerned). To
            inspect the raw predictions, call ``quality_model_.predict`` on
            ``features_.transform(X)``.
        """
        check_is_fitted(self, "quality_model_")
        return self._predict_checked(self._check_X(X, reset=False))

    def route(self, X, cost_penalty: float | None = None, budget: float | None = None) -> RoutingPlan:
        """Route a batch of prompts.

        Parameters
        ----------
        X : list of str, or numeric array when ``features=None``
            The prompts. Order and length are preserved; an empty or whitespace-only prompt is refused
            (``ValueError`` naming its index).
        cost_penalty : float or None
            λ for this call; ``None`` uses the estimator's ``cost_penalty``.
        budget : float or None
            Target mean normalised cost for this batch; ``None`` uses the estimator's
            ``budget``. λ becomes the smallest value >= the cost penalty that meets it.

        Returns
        -------
        RoutingPlan

        Raises
        ------
        ValueError
            If the quality model's predictions have the wrong shape or are not finite, as in
            :meth:`predict_quality`.
        """
        check_is_fitted(self, "quality_model_")
        lam = check_penalty(self.cost_penalty if cost_penalty is None else cost_penalty)
        budget = check_budget(self.budget if budget is None else budget)
        prompts = self._check_X(X, reset=False)
        Q = self._predict_checked(prompts)
        if budget is not None:
            lam = penalty_for_budget(Q, self.normalized_costs_, budget, floor=lam, stacklevel=3)
        return RoutingPlan(
            prompts,
            assign_generators(Q, self.normalized_costs_, lam, generator_names=self.generator_names_),
            self.generators_,
            Q,
            lam,
            budget,
        )

    def predict(self, X) -> np.ndarray:
        """The chosen generator's name for each prompt (uses ``cost_penalty`` and ``budget``)."""
        return self.route(X).generator_names

    def routing_outcome(self, X, y) -> tuple[float, float]:
        """Mean true quality and mean normalised cost of this router's own routing of ``X``.

        ``y`` is the measured quality of ``X`` (same rules as in :meth:`fit`); the routing
        uses the estimator's ``cost_penalty`` and ``budget``. ``y`` may hold NaN in the
        cells the routing does not choose; a NaN in a chosen cell is a ``ValueError`` that
        names the prompt and the generator.
        """
        check_is_fitted(self, "quality_model_")
        X = self._check_X(X, reset=False)
        Y = self._check_y(y, len(X), allow_nan=True)
        plan = self.route(X)
        realised = Y[np.arange(len(plan)), plan.assignments]
        unmeasured = np.flatnonzero(np.isnan(realised))
        if unmeasured.size:
            names = [str(name) for name in self.generator_names_]
            shown = "; ".join(f"{self._describe_row(X, i)} -> {names[plan.assignments[i]]}" for i in unmeasured[:3])
            more = f"; and {unmeasured.size - 3} more" if unmeasured.size > 3 else ""
            raise ValueError(
                f"y is NaN at the generator this router chooses for {unmeasured.size} of {len(plan)} prompt(s): "
                f"{shown}{more}. The routing outcome needs the measured quality of every chosen image; "
                "evaluate on prompts measured with every generator"
            )
        return float(realised.mean()), plan.mean_normalized_cost

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
        text = self.features is not None or self._reads_text()
        tags.input_tags.string = text
        tags.input_tags.two_d_array = not text
        tags.non_deterministic = self.quality_model in ("mlp", "gbm") and self.random_state is None
        return tags
