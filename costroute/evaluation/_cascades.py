"""Cascades in cross-validation: fitting one on a fold, its operating points, its pooled curve.

A cascade (anything with ``fit(X, y, scores=...)`` and ``deferral_points(X, y, scores)``) is
fitted on a fold's training prompts and evaluated on its test prompts from
``deferral_points``. Its *pooled* out-of-fold curve in a repeat evaluates every fold's fitted
cascade on its own test prompts at one sweep grid common to all folds, and averages the
per-prompt costs and qualities over all prompts, so that each prompt is handled by the fold
model that did not see it (:func:`_pool_cascade`).
"""

from __future__ import annotations

import inspect
import numbers
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from ..routing import _as_matrix, lambda_grid
from ._curves import DeferralCurve

#: Geometric λ values of a λ-sweeping cascade's pooled grid (besides 0 and the folds' grid ends).
N_POOLED_LAMBDAS = 48

#: Keywords of ``deferral_points`` that take a sweep grid, in the order they are looked for.
_GRID_KEYWORDS = ("lambdas", "thresholds")


def _is_cascade(est: Any) -> bool:
    """A cascade is evaluated from its ``deferral_points`` (CascadeRouter, ThresholdCascade)."""
    return hasattr(est, "fit") and callable(getattr(est, "deferral_points", None))


def _grid_keyword(estimator: Any) -> str:
    """The keyword through which ``deferral_points`` takes a sweep grid ("" when it takes none)."""
    params = inspect.signature(estimator.deferral_points).parameters
    return next((key for key in _GRID_KEYWORDS if key in params), "")


def _cascade_grid(estimator: Any, lambdas: Any) -> dict[str, Any]:
    """Keyword for a cascade's ``deferral_points``: an explicit λ array, when it sweeps λ."""
    if lambdas is None or (isinstance(lambdas, numbers.Integral) and not isinstance(lambdas, bool)):
        return {}
    if _grid_keyword(estimator) != "lambdas":
        return {}
    return {"lambdas": np.asarray(lambdas, dtype=float)}


def _checked_points(name: str, points: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    out = tuple(np.asarray(v, dtype=float).ravel() for v in points)
    if len(out) != 3 or not (out[0].size == out[1].size == out[2].size > 0):
        raise ValueError(
            f"{name}.deferral_points must return three equal-length, non-empty arrays, got sizes "
            f"{[p.size for p in out]}"
        )
    return out  # type: ignore[return-value]


def _fit_cascade(
    name: str,
    estimator: Any,
    p_train: list[str],
    y_train: Any,
    s_train: Any,
    p_test: list[str],
    y_test: Any,
    s_test: Any,
    lambdas: Any,
):
    """Clone and fit one cascade on a training fold with its scores; its points on the test fold.

    Returns the fitted clone, ``(sweep values, mean costs, mean qualities)`` and (fit seconds,
    deferral_points seconds).
    """
    model = clone(estimator)
    t0 = time.perf_counter()
    model.fit(p_train, y_train, scores=s_train)
    t1 = time.perf_counter()
    points = model.deferral_points(p_test, y_test, s_test, **_cascade_grid(model, lambdas))
    t2 = time.perf_counter()
    return model, _checked_points(name, points), (t1 - t0, t2 - t1)


def _subset_scores(scores: Any, idx: np.ndarray, subset) -> Any:
    """``scores`` (one matrix, or a list or dict of them: several scorers) restricted to rows ``idx``."""
    if isinstance(scores, dict):
        return {name: subset(m, idx) for name, m in scores.items()}
    if isinstance(scores, (list, tuple)):
        return [subset(m, idx) for m in scores]
    return subset(scores, idx)


def _check_scores(scores: Any, quality: Any, n: int, K: int) -> None:
    """``scores`` follows ``quality``'s rules: shape (n, K), finite, named columns if a DataFrame.

    Several scorers: a list or dict of such matrices, each checked.
    """
    if isinstance(scores, (dict, list, tuple)):
        if len(scores) == 0:
            raise ValueError("scores must hold at least one matrix")
        for m in scores.values() if isinstance(scores, dict) else scores:
            _check_scores(m, quality, n, K)
        return
    S = _as_matrix(scores, "scores")
    if S.shape != (n, K):
        raise ValueError(
            f"scores must have the shape of quality, (n_prompts, n_generators) = ({n}, {K}), got {S.shape}"
        )
    if isinstance(scores, pd.DataFrame) and isinstance(quality, pd.DataFrame):
        extra = sorted(set(map(str, scores.columns)) ^ set(map(str, quality.columns)))
        if extra:
            raise ValueError(
                f"scores columns must be the generator names of quality {[str(c) for c in quality.columns]}; "
                f"they differ in {extra}"
            )


@dataclass(frozen=True)
class PooledCascadeTotals:
    """Per-fold sums behind one cascade's pooled out-of-fold curve in one repeat.

    Attributes
    ----------
    parameter : str
        The keyword of ``deferral_points`` the grid was passed through (``"lambdas"``,
        ``"thresholds"``), or ``""`` when the folds' own sweeps were used as they are (they
        were identical).
    sweep : ndarray of shape (n_points,)
        The grid common to all folds, in the direction of the folds' own sweeps (λ increasing,
        thresholds decreasing).
    folds : ndarray of int, shape (n_folds,)
    n_prompts : ndarray of int, shape (n_folds,)
        Test prompts of each fold.
    cost_sums, quality_sums : ndarray of shape (n_folds, n_points)
        Sum over a fold's test prompts of each prompt's total normalised cost (every image and
        every scoring) and of the true quality of the image returned, at each grid value.
    """

    parameter: str
    sweep: np.ndarray
    folds: np.ndarray
    n_prompts: np.ndarray
    cost_sums: np.ndarray
    quality_sums: np.ndarray

    def curve(self, c_min: float, label: str | None = None) -> DeferralCurve:
        """The pooled curve: at each grid value, mean cost and mean quality over all prompts."""
        total = float(self.n_prompts.sum())
        return DeferralCurve(
            self.sweep, self.cost_sums.sum(axis=0) / total, self.quality_sums.sum(axis=0) / total, c_min, label
        )


def _pooled_lambda_grid(Q: np.ndarray, c: np.ndarray, fold_sweeps: Sequence[np.ndarray] = ()) -> np.ndarray:
    """The λ grid every fold of a repeat is evaluated at for a pooled curve.

    0, then :data:`N_POOLED_LAMBDAS` values spaced geometrically from a thousandth to ten times
    the λ at which the *true* quality ``Q`` of all prompts routes every prompt to the cheapest
    generator (the range :meth:`CascadeRouter.default_lambdas` spans for a predictor on Q's
    scale), widened to the smallest positive and the largest λ of the folds' own sweeps, which
    are added too. It depends on the data, not on a method, so every cascade of a repeat
    shares it.
    """
    top = float(lambda_grid(Q, c, n=2)[-1])
    if top <= 0:
        top = float(np.std(Q)) or 1.0
    ends = []
    for sweep in fold_sweeps:
        positive = sweep[np.isfinite(sweep) & (sweep > 0)]
        if positive.size:
            ends += [float(positive.min()), float(positive.max())]
    lo, hi = min([top * 1e-3] + ends), max([top * 10.0] + ends)
    return np.unique(np.r_[0.0, np.geomspace(lo, hi, N_POOLED_LAMBDAS), ends])


def _pool_cascade(
    name: str,
    folds: Sequence[tuple[int, Any, Any, Any, Any, tuple[np.ndarray, np.ndarray, np.ndarray]]],
    Q: np.ndarray,
    c: np.ndarray,
) -> PooledCascadeTotals | None:
    """Sums of cost and quality of one cascade over each test fold of a repeat, at a common grid.

    ``folds`` holds ``(fold, fitted cascade, test prompts, test quality, test scores, its own
    points)`` for every fold of the repeat. The grid:

    * the folds' own sweep when every fold swept the same values (e.g. an explicit ``lambdas``
      array): their points are reused as they are;
    * for a cascade whose ``deferral_points`` takes ``lambdas``: :func:`_pooled_lambda_grid`;
    * for one that takes another grid (``thresholds``): the union of the folds' own sweeps;
    * for one that takes no grid and whose folds swept different values: none -- the cascade
      has no pooled curve (``None``).

    The sums are each fold's mean times its number of test prompts, so the pooled means weight
    every prompt equally.
    """
    sweeps = [points[0] for *_, points in folds]
    n_prompts = np.array([len(p_test) for _, _, p_test, *_ in folds], dtype=np.intp)
    same = all(s.shape == sweeps[0].shape and np.array_equal(s, sweeps[0]) for s in sweeps)
    key = _grid_keyword(folds[0][1])
    if same:
        costs = np.array([points[1] for *_, points in folds])
        quals = np.array([points[2] for *_, points in folds])
        grid = sweeps[0]
    elif not key:
        return None
    else:
        if key == "lambdas":
            grid = _pooled_lambda_grid(Q, c, sweeps)
        else:
            grid = np.unique(np.concatenate(sweeps))
        if sweeps[0].size > 1 and sweeps[0][0] > sweeps[0][-1]:
            grid = grid[::-1]
        costs, quals = np.empty((len(folds), grid.size)), np.empty((len(folds), grid.size))
        for row, (_, model, p_test, y_test, s_test, _) in enumerate(folds):
            points = _checked_points(name, model.deferral_points(p_test, y_test, s_test, **{key: grid}))
            if points[1].size != grid.size:
                raise ValueError(f"{name}.deferral_points returned {points[1].size} points for {grid.size} {key}")
            costs[row], quals[row] = points[1], points[2]
    return PooledCascadeTotals(
        parameter=key if not same else "",
        sweep=np.asarray(grid, dtype=float),
        folds=np.array([fold for fold, *_ in folds], dtype=np.intp),
        n_prompts=n_prompts,
        cost_sums=costs * n_prompts[:, None],
        quality_sums=quals * n_prompts[:, None],
    )
