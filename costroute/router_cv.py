"""CostAwareRouterCV: choose the features and the quality model by cross-validated deferral AUC."""

from __future__ import annotations

import numbers
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import KFold, ParameterGrid
from sklearn.utils.validation import _num_samples, check_is_fitted

from .evaluation import apgr, deferral_curve, hull_curve, oracle_curve
from .plan import RoutingPlan
from .quality_models import QUALITY_MODEL_CHOICES
from .router import CostAwareRouter

__all__ = [
    "DEFAULT_GRID_FEATURES",
    "DEFAULT_GRID_QUALITY_MODELS",
    "SCORING_CHOICES",
    "SELECTION_CHOICES",
    "CostAwareRouterCV",
    "default_param_grid",
]

#: Features of the default grid, simplest first (the order the ``"one_se"`` rule prefers).
DEFAULT_GRID_FEATURES = ("complexity", "minilm", "minilm+complexity")
#: Quality models of the default grid, simplest first; a name that is not in
#: :data:`~costroute.quality_models.QUALITY_MODEL_CHOICES` is left out. "gbm" (10x slower
#: on embeddings, below the others on the benchmarks) and "transformer" (fine-tunes a text
#: encoder per fit) are not in it; add them with ``param_grid``.
DEFAULT_GRID_QUALITY_MODELS = ("ridge", "knn", "mlp", "lowrank")
SCORING_CHOICES = ("auc", "apgr")
SELECTION_CHOICES = ("best", "one_se")
# Parameters that a candidate may not vary: they change the generators, or they do not change
# the deferral curve (it is read at every λ), or they only change what is printed.
_FIXED = {
    "generators": "every candidate must route over the same generators",
    "cost_penalty": "the deferral curve covers every λ, so it does not depend on cost_penalty; set it on `router`",
    "budget": "the deferral curve covers every budget, so it does not depend on budget; set it on `router`",
    "progress": "it only changes what is printed",
}


def default_param_grid() -> dict[str, list]:
    """The default grid: :data:`DEFAULT_GRID_FEATURES` x the available default quality models."""
    models = [q for q in DEFAULT_GRID_QUALITY_MODELS if q in QUALITY_MODEL_CHOICES]
    return {"features": list(DEFAULT_GRID_FEATURES), "quality_model": models}


def _subset(data: Any, idx: np.ndarray) -> Any:
    if isinstance(data, (pd.DataFrame, pd.Series)):
        return data.iloc[idx]
    if isinstance(data, np.ndarray):
        return data[idx]
    return [data[i] for i in idx]


def _true_matrix(model: Any, y: Any, n: int) -> np.ndarray:
    """``y`` as an (n, K) float matrix in the fitted model's generator order."""
    check = getattr(model, "_check_y", None)
    if callable(check):
        return check(y, n)
    names = getattr(model, "generator_names_", None)
    if isinstance(y, pd.DataFrame) and names is not None:
        y = y[[str(x) for x in names]]
    return np.asarray(y, dtype=float).reshape(n, -1)


def _fit_and_score(template, params: dict, X, y, train, test, scoring: str) -> tuple[float, float, float]:
    """Fit one candidate on ``train`` once; score its exact deferral curve on ``test``."""
    model = clone(template).set_params(**params)
    t0 = time.perf_counter()
    model.fit(_subset(X, train), _subset(y, train))
    fit_time = time.perf_counter() - t0
    t0 = time.perf_counter()
    X_test = _subset(X, test)
    pred = model.predict_quality(X_test)
    Q = _true_matrix(model, _subset(y, test), len(test))
    c = np.asarray(model.normalized_costs_, dtype=float)
    value = deferral_curve(pred, Q, c).auc()  # every λ, read from this one fit
    if scoring == "apgr":
        value = apgr(value, hull_curve(Q, c).auc(), oracle_curve(Q, c).auc())
    return float(value), fit_time, time.perf_counter() - t0


class CostAwareRouterCV(BaseEstimator):
    """A :class:`CostAwareRouter` whose features and quality model are chosen by cross-validation.

    Every candidate of ``param_grid`` is fitted once per inner fold; its predictions on the
    held-out fold give the *exact* deferral curve (every λ at which a prompt changes
    generator), and the candidate's score is the curve's AUC (or APGR) averaged over the
    folds. Candidates are compared on the whole quality-cost trade-off, not on the MSE of the
    quality model, which does not see which errors change a routing. The chosen candidate is
    then refitted on all the data (``best_estimator_``), and ``predict``, ``predict_quality``,
    ``route`` and ``score`` use it.

    ``cost_penalty`` and ``budget`` are not searched: the curve already covers every λ. The
    refitted router keeps the template's ``cost_penalty`` and ``budget``, so with a
    ``budget`` the λ of every routed batch is the smallest that makes that batch meet it
    (exact per batch, where a λ picked on training folds would meet the budget only on
    average).

    Parameters
    ----------
    router : CostAwareRouter, or generators (GeneratorRegistry, list of GeneratorSpec or dict)
        The template whose parameters the grid overrides (cloned, never changed). Generators
        build ``CostAwareRouter(router, random_state=random_state, progress=progress)``.
    param_grid : dict or list of dict, or None, default=None
        CostAwareRouter parameter name -> list of values, as in
        :class:`~sklearn.model_selection.GridSearchCV` (a list of dicts is the union of their
        grids). ``None`` is :func:`default_param_grid`: features {complexity, minilm,
        minilm+complexity} x quality models {ridge, knn, mlp, lowrank (when available)}.
        ``generators``, ``cost_penalty``, ``budget`` and ``progress`` may not be searched.
    scoring : {"auc", "apgr"}, default="auc"
        Fold score: the AUC of the exact deferral curve on the held-out prompts, or its APGR
        (against that fold's random-mixture hull and oracle).
    cv : int or splitter, default=3
        Inner folds: ``KFold(cv, shuffle=True, random_state=random_state)``, or any object
        with ``split(X)`` and ``get_n_splits()``.
    selection : {"best", "one_se"}, default="best"
        ``"best"``: the highest mean score (ties: the first candidate in grid order).
        ``"one_se"``: the first candidate in grid order whose mean score is within one
        standard error (fold std / sqrt(n_splits)) of the best -- grids list the simplest
        candidates first, so this prefers a simpler model when the folds cannot tell the
        candidates apart.
    random_state : int, RandomState or None, default=None
        Shuffles the inner folds; also the seed of a router built from generators.
    n_jobs : int or None, default=None
        Fits run in parallel in this many threads (joblib; ``None`` = 1, -1 = all cores).
        Threads share the per-text embedding cache, so no prompt is embedded twice.
    progress : bool, default=True
        A tqdm bar on stderr over the ``n_candidates x n_splits`` fits.

    Attributes
    ----------
    best_estimator_ : CostAwareRouter
        The chosen candidate, refitted on all the data.
    best_params_ : dict
        Its grid parameters.
    best_index_ : int
        Its position in ``cv_results_``.
    best_score_ : float
        Its mean inner score.
    cv_results_ : dict of ndarray
        As in GridSearchCV: ``params``, ``param_<name>``, ``split{i}_test_<scoring>``,
        ``mean_test_<scoring>``, ``std_test_<scoring>``, ``rank_test_<scoring>`` (1 = best,
        ties share the lowest rank), ``mean_fit_time``, ``std_fit_time``,
        ``mean_score_time``, ``std_score_time``.
    n_splits_ : int
        Number of inner folds.
    refit_time_ : float
        Seconds to refit the chosen candidate.
    generators_, generator_names_, costs_, normalized_costs_, features_, quality_model_
        Those of ``best_estimator_``.

    Examples
    --------
    >>> from costroute import CostAwareRouterCV
    >>> prompts = ["a white wall", "a cat", "a red door", "sky",
    ...            "three red kites left of two tall trees at dusk",
    ...            "a violinist on a bridge in the rain, reflections, neon signs",
    ...            "two cats and a dog playing chess in a library, oil painting",
    ...            "a glass teapot with blooming tea on a wooden table, macro photo"]
    >>> quality = [[3, 3], [3, 3], [3, 3], [3, 3], [1, 4], [1, 4], [1, 4], [1, 4]]
    >>> search = CostAwareRouterCV({"turbo": 1.0, "base": 10.0},
    ...                            {"features": ["complexity"], "quality_model": ["knn", "ridge"]},
    ...                            cv=2, random_state=0, progress=False).fit(prompts, quality)
    >>> sorted(search.best_params_)
    ['features', 'quality_model']
    >>> search.best_params_["quality_model"]
    'ridge'
    >>> search.route(["a white wall", "three red kites left of two tall trees at dusk"],
    ...              cost_penalty=1.0).generator_names.tolist()
    ['turbo', 'base']
    """

    def __init__(
        self,
        router,
        param_grid=None,
        *,
        scoring: str = "auc",
        cv=3,
        selection: str = "best",
        random_state=None,
        n_jobs: int | None = None,
        progress: bool = True,
    ):
        self.router = router
        self.param_grid = param_grid
        self.scoring = scoring
        self.cv = cv
        self.selection = selection
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.progress = progress

    # ------------------------------------------------------------------ validation
    def _template(self):
        if hasattr(self.router, "fit") and hasattr(self.router, "get_params"):
            return clone(self.router)
        return CostAwareRouter(self.router, random_state=self.random_state, progress=self.progress)

    def _candidates(self, template) -> list[dict]:
        grid = default_param_grid() if self.param_grid is None else self.param_grid
        if isinstance(grid, Mapping):
            grids = [grid]
        elif isinstance(grid, Sequence) and not isinstance(grid, str) and all(isinstance(g, Mapping) for g in grid):
            grids = list(grid)
        else:
            raise TypeError(
                f"param_grid must be a dict of parameter name -> list of values, a list of such dicts, "
                f"or None for the default grid, got {type(grid).__name__}: {grid!r}"
            )
        valid = template.get_params(deep=False)
        deep = template.get_params(deep=True)
        for g in grids or [{}]:
            if not g:
                raise ValueError(
                    f"param_grid must not be empty, got {self.param_grid!r}; give at least one parameter "
                    f"with values, e.g. {{'quality_model': ['knn', 'ridge']}}, or None for the default grid"
                )
            for name, values in g.items():
                if name in _FIXED:
                    raise ValueError(f"param_grid may not search {name!r}: {_FIXED[name]}")
                if name not in deep and "__" in name and name.split("__", 1)[0] in valid:
                    raise ValueError(
                        f"param_grid has the nested parameter {name!r}, which the template router does not "
                        f"have: {name.split('__', 1)[0]}={valid[name.split('__', 1)[0]]!r} has no parameter "
                        f"{name.split('__', 1)[1]!r}. To search an estimator's parameters, give that estimator "
                        "on the template (e.g. router=CostAwareRouter(gens, quality_model=Ridge()))"
                    )
                if name not in deep:
                    raise ValueError(
                        f"param_grid has the unknown parameter {name!r}; {type(template).__name__} "
                        f"parameters are {sorted(valid)}"
                    )
                if isinstance(values, np.ndarray) and values.ndim == 1:
                    values = values.tolist()
                if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
                    raise ValueError(f"param_grid[{name!r}] must be a non-empty list of values, got {values!r}")
        return list(ParameterGrid(grids))

    def _check_choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = getattr(self, name)
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
        return value

    def _splitter(self, n: int):
        cv = self.cv
        if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
            if cv < 2:
                raise ValueError(f"cv must be an int >= 2 or a splitter with split(X), got cv={cv}")
            if cv > n:
                raise ValueError(f"cv={cv} inner folds need at least {cv} prompts, got {n} sample(s); lower cv")
            return KFold(int(cv), shuffle=True, random_state=self.random_state)
        if hasattr(cv, "split") and hasattr(cv, "get_n_splits"):
            return cv
        raise ValueError(
            f"cv must be an int >= 2 or a splitter with split(X) and get_n_splits() (e.g. KFold(5)), "
            f"got {type(cv).__name__}: {cv!r}"
        )

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y):
        """Score every candidate by inner cross-validation, then refit the chosen one on all data.

        Parameters
        ----------
        X : list of str, or array of shape (n, d) when ``features=None``
            Training prompts.
        y : array of shape (n, K) or DataFrame
            Measured quality of each generator for each prompt (as in
            :meth:`CostAwareRouter.fit`).

        Returns
        -------
        self : CostAwareRouterCV

        Raises
        ------
        ValueError
            On an empty grid, a grid parameter the router does not have (or may not vary), an
            unknown ``scoring`` or ``selection``, a bad ``cv``, and on whatever the router's
            own ``fit`` rejects.
        """
        scoring = self._check_choice("scoring", SCORING_CHOICES)
        selection = self._check_choice("selection", SELECTION_CHOICES)
        if not isinstance(self.progress, (bool, np.bool_)):
            raise TypeError(f"progress must be True or False, got {type(self.progress).__name__}: {self.progress!r}")
        if self.n_jobs is not None and (
            isinstance(self.n_jobs, bool) or not isinstance(self.n_jobs, numbers.Integral) or self.n_jobs == 0
        ):
            raise ValueError(f"n_jobs must be None or a non-zero int (-1 = all cores), got {self.n_jobs!r}")
        template = self._template()
        candidates = self._candidates(template)
        if isinstance(X, (str, bytes)):
            raise TypeError("X must be a list of prompts, not a single string")
        if sp.issparse(X):
            raise TypeError(
                "Sparse data was passed for X, but dense data is required: X must be a list of prompts, "
                "or a dense numeric array when the router has features=None"
            )
        n = _num_samples(X)
        if y is None:
            raise ValueError(
                f"requires y to be passed, but the target y is None: y holds the measured quality of "
                f"each generator for each of the {n} prompts of X"
            )
        if _num_samples(y) != n:
            raise ValueError(
                f"y must hold the measured quality of each of the {n} prompts of X, got {_num_samples(y)} rows"
            )
        splits = list(self._splitter(n).split(np.zeros((n, 1))))
        n_splits = len(splits)
        jobs = [(ci, si) for ci in range(len(candidates)) for si in range(n_splits)]
        scores = np.full((len(candidates), n_splits), np.nan)
        fit_t = np.zeros_like(scores)
        score_t = np.zeros_like(scores)

        from tqdm.auto import tqdm

        with tqdm(
            total=len(jobs), desc="CostAwareRouterCV", unit="fit", disable=not self.progress, file=sys.stderr
        ) as bar:

            def run(job):
                ci, si = job
                train, test = splits[si]
                return _fit_and_score(template, candidates[ci], X, y, train, test, scoring)

            if self.n_jobs in (None, 1):
                results = map(run, jobs)
            else:
                from joblib import Parallel, delayed

                results = Parallel(n_jobs=self.n_jobs, prefer="threads", return_as="generator")(
                    delayed(run)(job) for job in jobs
                )
            for (ci, si), (value, ft, st) in zip(jobs, results):
                scores[ci, si], fit_t[ci, si], score_t[ci, si] = value, ft, st
                bar.update(1)

        mean = scores.mean(axis=1)
        std = scores.std(axis=1)
        if not np.isfinite(mean).any():
            raise ValueError(
                f"no candidate has a finite mean {scoring} (APGR is NaN on a fold where the oracle does "
                "not beat the random mixture); use scoring='auc'"
            )
        ranked = np.where(np.isfinite(mean), mean, -np.inf)
        best = int(np.argmax(ranked))  # ties: the first in grid order
        if selection == "one_se":
            threshold = mean[best] - std[best] / np.sqrt(n_splits)
            best = int(np.flatnonzero(ranked >= threshold)[0])
        rank = np.empty(len(candidates), dtype=np.int32)
        for i, v in enumerate(ranked):
            rank[i] = 1 + int(np.sum(ranked > v))

        results_: dict[str, Any] = {"params": np.array(candidates, dtype=object)}
        for name in sorted({k for c in candidates for k in c}):
            results_[f"param_{name}"] = np.ma.MaskedArray(
                np.array([c.get(name) for c in candidates], dtype=object),
                mask=[name not in c for c in candidates],
            )
        for si in range(n_splits):
            results_[f"split{si}_test_{scoring}"] = scores[:, si]
        results_[f"mean_test_{scoring}"] = mean
        results_[f"std_test_{scoring}"] = std
        results_[f"rank_test_{scoring}"] = rank
        results_["mean_fit_time"], results_["std_fit_time"] = fit_t.mean(axis=1), fit_t.std(axis=1)
        results_["mean_score_time"], results_["std_score_time"] = score_t.mean(axis=1), score_t.std(axis=1)

        self.cv_results_ = results_
        self.n_splits_ = n_splits
        self.best_index_ = best
        self.best_params_ = dict(candidates[best])
        self.best_score_ = float(mean[best])
        t0 = time.perf_counter()
        self.best_estimator_ = clone(template).set_params(**self.best_params_).fit(X, y)
        self.refit_time_ = time.perf_counter() - t0
        for attr in ("generators_", "generator_names_", "costs_", "normalized_costs_", "features_", "quality_model_"):
            if hasattr(self.best_estimator_, attr):
                setattr(self, attr, getattr(self.best_estimator_, attr))
        if hasattr(self.best_estimator_, "n_features_in_"):
            self.n_features_in_ = self.best_estimator_.n_features_in_
        return self

    # ------------------------------------------------------------------ delegation
    def predict_quality(self, X) -> np.ndarray:
        """Predicted quality of every generator, shape (n, K), from ``best_estimator_``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_quality(X)

    def predict(self, X) -> np.ndarray:
        """The chosen generator's name for each prompt, from ``best_estimator_``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    def route(self, X, cost_penalty: float | None = None, budget: float | None = None) -> RoutingPlan:
        """Route a batch with ``best_estimator_`` (see :meth:`CostAwareRouter.route`)."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.route(X, cost_penalty=cost_penalty, budget=budget)

    def routing_outcome(self, X, y) -> tuple[float, float]:
        """Mean true quality and mean normalised cost of ``best_estimator_``'s routing of ``X``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.routing_outcome(X, y)

    def score(self, X, y) -> float:
        """``best_estimator_.score(X, y)``: mean realised quality minus ``cost_penalty`` x mean cost."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.score(X, y)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            template = self._template()
            inner = [clone(template).set_params(**p).__sklearn_tags__() for p in self._candidates(template)]
        except (AttributeError, TypeError, ValueError):  # fit reports bad parameters
            inner = []
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        if inner:
            tags.input_tags.string = any(t.input_tags.string for t in inner)
            tags.input_tags.two_d_array = all(t.input_tags.two_d_array for t in inner)
            tags.non_deterministic = any(t.non_deterministic for t in inner)
        return tags
