"""Evaluation of cost-aware routers: deferral curves, AUC, APGR, cost at quality, baselines.

Every quantity follows the "Evaluation definitions" of the design notes. For a test set with
true quality ``Q`` (n x K) and normalised costs ``c̃`` (K,), with ``c̃_min = min_k c̃_k``:

* **Routing rule** -- ``a(i) = argmax_k q̂_k(x_i) - λ c̃_k`` for a cost penalty ``λ >= 0``;
  exact ties go to the cheaper generator (equal costs: the lower column index). This is
  :class:`~costroute.CostAwareRouter`'s rule; the router additionally counts utilities within
  a relative 1e-12 as tied, so the two can differ only on such float-level near-ties.
* **Operating point** of a routing ``a`` -- ``(mean_i c̃[a(i)], mean_i Q[i, a(i)])``.
* **Deferral curve** -- the operating points along a λ grid that includes 0 and a λ large
  enough that every prompt goes to the cheapest generator. By default the curve is *exact*:
  computed from every λ at which some prompt changes generator, it lists every distinct
  routing the predictor produces as λ grows, once (:func:`lambda_grid`).
* **Single-model hull** ("random mixture") -- the upper concave envelope of the K
  single-generator points ``(c̃_k, mean_i Q[i, k])`` (:func:`hull_curve`).
* **Oracle** -- routing with the true ``Q`` in place of ``q̂`` (:func:`oracle_curve`). It is an
  upper bound that rating noise inflates (see :func:`split_rater_cross_validate`).
* **AUC** -- the area under the running maximum of quality over normalised cost on
  ``[c̃_min, 1]`` (:func:`auc`). Consecutive operating points (sorted by cost) are joined by
  straight lines -- randomising between two routings reaches every point of the segment,
  exactly as for the hull -- and the curve is extended flat to the right of its last point.
  To the *left* of its first point a curve reaches no quality at all, so that stretch adds
  zero area (curves built here always start at ``c̃_min``, the all-cheapest routing, so this
  only matters for hand-made curves). The area is divided by ``1 - c̃_min``: an AUC is a mean
  quality over the budget range, in the units of ``Q``.
* **APGR** -- ``(AUC_router - AUC_hull) / (AUC_oracle - AUC_hull)`` (:func:`apgr`).
* **Cost at quality q** -- the least normalised cost at which the running-max curve (with the
  same straight-line joins) reaches ``q``; ``inf`` when it never does
  (:func:`cost_at_quality`). The headline saving is ``cost_hull(q_best) / cost_router(q_best)``
  with ``q_best`` the best single generator's mean quality (:func:`cost_saving`).
* Figures are always out of sample: :func:`cross_validate_routing` runs repeated K-fold
  cross-validation by prompt with the same folds for every method and reports mean ± std
  over the folds (:func:`routing_report`).

Examples
--------
>>> import numpy as np
>>> from costroute.evaluation import deferral_curve, hull_curve, oracle_curve, apgr
>>> Q = np.array([[1.0, 3.0], [2.0, 2.0], [1.0, 2.0]])   # 3 prompts x 2 generators
>>> c = np.array([0.2, 1.0])                             # normalised costs
>>> oracle = oracle_curve(Q, c)
>>> oracle.to_frame().round(4)
   lambda    cost  quality
0   0.000  0.7333   2.3333
1   1.875  0.4667   2.0000
2   2.500  0.2000   1.3333
>>> hull = hull_curve(Q, c)
>>> round(apgr(oracle.auc(), hull.auc(), oracle.auc()), 6)
1.0
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from .routing import (
    _as_costs,
    _as_matrix,
    _as_penalties,
    _grouped_events,
    lambda_grid,
    route_with_penalty,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = [
    "DeferralCurve",
    "RoutingCVResult",
    "apgr",
    "auc",
    "cost_at_quality",
    "cost_saving",
    "cross_validate_routing",
    "deferral_curve",
    "hull_curve",
    "lambda_grid",
    "operating_point",
    "oracle_curve",
    "plot_deferral",
    "quality_at_cost",
    "report_to_markdown",
    "route_with_penalty",
    "routing_report",
    "single_model_points",
    "split_rater_cross_validate",
]

#: Relative tolerance used when asking whether a curve "reaches" a quality level, so that a
#: quality computed by summing per-prompt deltas is not missed by a rounding error.
_REACH_RTOL = 1e-9

#: Metrics of :func:`cross_validate_routing`, in report order.
METRICS = (
    "quality",
    "gain",
    "cost",
    "auc",
    "apgr",
    "saving",
    "cost_50",
    "cost_80",
    "reached_best",
)

_METRIC_DOC = {
    "quality": "mean true quality at λ = 0 (hull: the best single generator's)",
    "gain": "quality minus the best single generator's quality on the same fold",
    "cost": "mean normalised cost at λ = 0",
    "auc": "area under the running-max deferral curve on [c̃_min, 1], / (1 − c̃_min)",
    "apgr": "(AUC − AUC_hull) / (AUC_oracle − AUC_hull)",
    "saving": "cost_hull(q_best) / cost(q_best); 0 when the curve never reaches q_best",
    "cost_50": "least normalised cost reaching 50 % of the way from cheapest to best single",
    "cost_80": "least normalised cost reaching 80 % of the way from cheapest to best single",
    "reached_best": "1 when the curve reaches q_best on the fold, else 0",
    "apgr_indep": "APGR against the independent-rater oracle (split-rater evaluation)",
}


# --------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------
def _check_same_shape(pred: np.ndarray, true: np.ndarray) -> None:
    if pred.shape != true.shape:
        raise ValueError(
            f"predicted quality has shape {pred.shape} but true quality has shape {true.shape}; "
            "both must be (n_prompts, n_generators) with the same generator order"
        )


def _cheapest(c: np.ndarray) -> float:
    return float(c.min())


# --------------------------------------------------------------------------------------
# routing
# --------------------------------------------------------------------------------------
def operating_point(assignments: Any, true_quality: Any, normalized_costs: Any) -> tuple[float, float]:
    """Operating point ``(mean normalised cost, mean true quality)`` of a routing.

    Parameters
    ----------
    assignments : array-like of int, shape (n_prompts,)
        Column index of the generator chosen for each prompt.
    true_quality : array-like of shape (n_prompts, n_generators)
    normalized_costs : array-like of shape (n_generators,) or GeneratorRegistry

    Returns
    -------
    (float, float)
    """
    Q = _as_matrix(true_quality, "true_quality")
    c = _as_costs(normalized_costs, Q.shape[1])
    a = np.asarray(assignments)
    if a.shape != (Q.shape[0],) or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(
            f"assignments must be {Q.shape[0]} integer column indices, got shape {a.shape} "
            f"dtype {a.dtype}"
        )
    if a.size and (a.min() < 0 or a.max() >= Q.shape[1]):
        raise ValueError(f"assignments must lie in [0, {Q.shape[1] - 1}]")
    return float(c[a].mean()), float(Q[np.arange(Q.shape[0]), a].mean())


# --------------------------------------------------------------------------------------
# curves
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeferralCurve:
    """Operating points of a routing method, with the c̃_min needed for its AUC.

    Attributes
    ----------
    lambdas : ndarray of shape (n_points,)
        A cost penalty whose routing gives each point (NaN for curves not produced by a λ
        sweep, e.g. the hull). On exact curves it is the first point's 0 and otherwise a value
        inside the point's λ interval (midway between breakpoints), where the routing does
        not depend on floating-point ties -- safe to set as a router's ``cost_penalty``.
    costs : ndarray of shape (n_points,)
        Mean normalised cost of each point.
    qualities : ndarray of shape (n_points,)
        Mean true quality of each point.
    c_min : float
        Normalised cost of the cheapest generator: the left end of the AUC interval.
    label : str or None
        Name used in plots and reports.
    """

    lambdas: np.ndarray
    costs: np.ndarray
    qualities: np.ndarray
    c_min: float
    label: str | None = None

    def __post_init__(self) -> None:
        costs = np.asarray(self.costs, dtype=float)
        quals = np.asarray(self.qualities, dtype=float)
        lams = np.asarray(self.lambdas, dtype=float)
        if costs.ndim != 1 or costs.shape != quals.shape or lams.shape != costs.shape:
            raise ValueError(
                "lambdas, costs and qualities must be 1-D of equal length, got shapes "
                f"{lams.shape}, {costs.shape}, {quals.shape}"
            )
        if costs.size == 0:
            raise ValueError("a DeferralCurve needs at least one point")
        object.__setattr__(self, "costs", costs)
        object.__setattr__(self, "qualities", quals)
        object.__setattr__(self, "lambdas", lams)
        object.__setattr__(self, "c_min", float(self.c_min))

    def __len__(self) -> int:
        return self.costs.size

    def auc(self) -> float:
        """Area under the running-max curve on ``[c_min, 1]`` divided by ``1 - c_min``; see :func:`auc`."""
        return auc(self.costs, self.qualities, self.c_min)

    def cost_at_quality(self, q: float) -> float:
        """Least normalised cost reaching quality ``q`` (``inf`` if never); see :func:`cost_at_quality`."""
        return cost_at_quality(self, q)

    def quality_at_cost(self, cost: float) -> float:
        """Best quality reachable at normalised cost ``<= cost``; see :func:`quality_at_cost`."""
        return quality_at_cost(self, cost)

    def envelope(self) -> tuple[np.ndarray, np.ndarray]:
        """Vertices of the running-max curve (the function the AUC integrates), by cost."""
        return _running_max_envelope(self.costs, self.qualities)

    def to_frame(self) -> pd.DataFrame:
        """The points as a DataFrame with columns ``lambda``, ``cost``, ``quality``."""
        return pd.DataFrame({"lambda": self.lambdas, "cost": self.costs, "quality": self.qualities})

    def __repr__(self) -> str:
        return (
            f"DeferralCurve(label={self.label!r}, n_points={len(self)}, "
            f"cost=[{self.costs.min():.3g}, {self.costs.max():.3g}], "
            f"quality=[{self.qualities.min():.4g}, {self.qualities.max():.4g}], auc={self.auc():.4g})"
        )


def _exact_curve(pred: np.ndarray, Q: np.ndarray, c: np.ndarray, label: str | None) -> DeferralCurve:
    """One point per distinct routing, from the switch events (O(n K^2 + n K log n))."""
    start, events, group_end, reps = _grouped_events(pred, c)
    n = Q.shape[0]
    rows = np.arange(n)
    cost0 = c[start].mean()
    qual0 = Q[rows, start].mean()
    if group_end.size == 0:
        return DeferralCurve(reps, [cost0], [qual0], _cheapest(c), label)
    _, row, src, dst = events
    dcost = np.cumsum(c[dst] - c[src]) / n
    dqual = np.cumsum(Q[row, dst] - Q[row, src]) / n
    costs = np.r_[cost0, cost0 + dcost[group_end]]
    quals = np.r_[qual0, qual0 + dqual[group_end]]
    final = start.copy()
    final[row] = dst  # events are sorted by λ: each prompt's last switch wins
    costs[-1], quals[-1] = c[final].mean(), Q[rows, final].mean()  # exact, no summed rounding
    return DeferralCurve(reps, costs, quals, _cheapest(c), label)


def deferral_curve(
    predictor: Any,
    true_quality: Any,
    normalized_costs: Any = None,
    *,
    lambdas: int | Sequence[float] | np.ndarray | None = None,
    prompts: Sequence[str] | None = None,
    label: str | None = None,
) -> DeferralCurve:
    """Deferral (quality-cost) curve of a router, evaluated with the true quality.

    Parameters
    ----------
    predictor : array-like of shape (n_prompts, n_generators) or fitted router
        Either the predicted quality matrix, or a fitted
        :class:`~costroute.CostAwareRouter` (anything with ``predict_quality`` and
        ``normalized_costs_``), in which case ``prompts`` is required and the routing uses
        ``router.predict_quality(prompts)`` with the router's rule.
    true_quality : array-like or DataFrame of shape (n_prompts, n_generators)
        Measured quality. With a router and a DataFrame, columns are matched to
        ``router.generator_names_`` by name.
    normalized_costs : array-like of shape (n_generators,) or GeneratorRegistry, optional
        Required with a matrix; defaults to ``router.normalized_costs_`` with a router.
    lambdas : None, int or array-like of float, default=None
        ``None``: the exact curve, one point per distinct routing (every breakpoint, see
        :func:`lambda_grid`). An int ``m``: ``lambda_grid(..., n=m)``. An array: exactly those
        penalties (no 0 or λ_max is added; a curve that does not reach the all-cheapest point
        gets zero area left of its cheapest point, see :func:`auc`).
    prompts : sequence of str, optional
        The prompts, when ``predictor`` is a router.
    label : str, optional
        Name of the curve for plots and reports.

    Returns
    -------
    DeferralCurve
        Points in increasing λ (hence non-increasing mean cost). The exact curve's last point
        sends every prompt to the cheapest generator.

    Examples
    --------
    >>> import numpy as np
    >>> Q = np.array([[1.0, 3.0], [2.0, 2.0]])
    >>> curve = deferral_curve(Q, Q, [0.5, 1.0])
    >>> curve.to_frame()
       lambda  cost  quality
    0     0.0  0.75      2.5
    1     4.0  0.50      1.5
    """
    pred, Q, c = _resolve_predictor(predictor, true_quality, normalized_costs, prompts)
    if lambdas is None:
        return _exact_curve(pred, Q, c, label)
    if isinstance(lambdas, numbers.Integral) and not isinstance(lambdas, bool):
        grid = lambda_grid(pred, c, n=int(lambdas))
    else:
        grid, _ = _as_penalties(lambdas, "lambdas")
    assign = route_with_penalty(pred, c, grid)  # (m, n)
    rows = np.arange(Q.shape[0])
    costs = c[assign].mean(axis=1)
    quals = Q[rows[None, :], assign].mean(axis=1)
    return DeferralCurve(grid, costs, quals, _cheapest(c), label)


def _is_router(obj: Any) -> bool:
    return hasattr(obj, "predict_quality") and callable(obj.predict_quality)


def _resolve_predictor(
    predictor: Any, true_quality: Any, normalized_costs: Any, prompts: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if _is_router(predictor):
        if prompts is None:
            raise ValueError("prompts are required when deferral_curve is given a router")
        pred = _as_matrix(predictor.predict_quality(list(prompts)), "router.predict_quality(prompts)")
        names = getattr(predictor, "generator_names_", None)
        Q = _as_matrix(_align_columns(true_quality, names), "true_quality")
        if normalized_costs is None:
            if not hasattr(predictor, "normalized_costs_"):
                raise ValueError(
                    "the router has no normalized_costs_ (is it fitted?); pass normalized_costs"
                )
            normalized_costs = predictor.normalized_costs_
    else:
        if prompts is not None:
            raise ValueError("prompts are only used with a router, not with a quality matrix")
        pred = _as_matrix(predictor, "pred_quality")
        Q = _as_matrix(true_quality, "true_quality")
        if normalized_costs is None:
            raise ValueError("normalized_costs is required when the predictor is a matrix")
    _check_same_shape(pred, Q)
    c = _as_costs(normalized_costs, Q.shape[1])
    return pred, Q, c


def _align_columns(quality: Any, names: Sequence[str] | None) -> Any:
    """Reorder a DataFrame's columns to ``names``; other inputs pass through."""
    if names is None or not isinstance(quality, pd.DataFrame):
        return quality
    names = list(names)
    missing = [n for n in names if n not in quality.columns]
    extra = [col for col in quality.columns if col not in names]
    if missing or extra:
        raise ValueError(
            f"quality columns must be the generator names {names}; missing {missing}, "
            f"unexpected {extra}"
        )
    return quality[names]


def oracle_curve(
    true_quality: Any,
    normalized_costs: Any,
    *,
    lambdas: int | Sequence[float] | np.ndarray | None = None,
    label: str | None = "oracle",
) -> DeferralCurve:
    """Deferral curve of the oracle: routing with the true quality in place of a prediction.

    At every λ the oracle maximises ``mean Q[i, a(i)] - λ mean c̃[a(i)]`` over all routings, so
    its (exact) curve traces the upper concave envelope of every achievable operating point.
    With noisy ratings it is an optimistic bound (it routes on the noise too).

    Parameters
    ----------
    true_quality : array-like of shape (n_prompts, n_generators)
    normalized_costs : array-like of shape (n_generators,) or GeneratorRegistry
    lambdas : None, int or array-like, default=None
        As in :func:`deferral_curve` (``None``: exact curve).
    label : str, default="oracle"

    Returns
    -------
    DeferralCurve
    """
    Q = _as_matrix(true_quality, "true_quality")
    return deferral_curve(Q, Q, normalized_costs, lambdas=lambdas, label=label)


def single_model_points(
    true_quality: Any, normalized_costs: Any, names: Sequence[str] | None = None
) -> pd.DataFrame:
    """The K single-generator operating points ``(c̃_k, mean_i Q[i, k])``.

    Parameters
    ----------
    true_quality : array-like or DataFrame of shape (n_prompts, n_generators)
    normalized_costs : array-like of shape (n_generators,) or GeneratorRegistry
    names : sequence of str, optional
        Generator names; default the DataFrame's columns, the registry's names, or ``"0"``,
        ``"1"``, ...

    Returns
    -------
    DataFrame
        Indexed by generator name, columns ``cost`` and ``quality``, in column order.

    Examples
    --------
    >>> pts = single_model_points([[1.0, 3.0], [2.0, 2.0]], [0.5, 1.0], names=["fast", "slow"])
    >>> pts.to_dict(orient="index")
    {'fast': {'cost': 0.5, 'quality': 1.5}, 'slow': {'cost': 1.0, 'quality': 2.5}}
    """
    if names is None:
        if isinstance(true_quality, pd.DataFrame):
            names = [str(col) for col in true_quality.columns]
        elif hasattr(normalized_costs, "names"):
            names = list(normalized_costs.names)
    Q = _as_matrix(true_quality, "true_quality")
    c = _as_costs(normalized_costs, Q.shape[1])
    if names is None:
        names = [str(k) for k in range(Q.shape[1])]
    names = list(names)
    if len(names) != Q.shape[1]:
        raise ValueError(f"got {len(names)} names for {Q.shape[1]} generator columns")
    frame = pd.DataFrame({"cost": c, "quality": Q.mean(axis=0)}, index=pd.Index(names, name="generator"))
    return frame


def _upper_hull(costs: np.ndarray, quals: np.ndarray) -> np.ndarray:
    """Indices of the upper concave envelope's vertices, by increasing cost."""
    order = np.lexsort((-quals, costs))  # by cost, best quality first among equal costs
    keep = [order[0]]
    for j in order[1:]:
        if costs[j] == costs[keep[-1]]:
            continue  # same cost, lower (or equal) quality: never on the upper hull
        keep.append(j)
    hull: list[int] = []
    for j in keep:
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # drop b when it lies on or below the segment a -> j
            u = (costs[b] - costs[a]) * (quals[j] - quals[a])
            v = (quals[b] - quals[a]) * (costs[j] - costs[a])
            if u - v >= -1e-12 * (abs(u) + abs(v)):  # on or below, up to rounding
                hull.pop()
            else:
                break
        hull.append(j)
    return np.asarray(hull, dtype=np.intp)


def hull_curve(true_quality: Any, normalized_costs: Any, *, label: str | None = "random mixture") -> DeferralCurve:
    """The "random mixture" baseline: upper concave envelope of the single-generator points.

    Sending each prompt to generator j with probability p and to generator k otherwise reaches
    every point of the segment between their single-model points, so the envelope is the best
    quality a prompt-blind mixture reaches at each cost.

    Parameters
    ----------
    true_quality : array-like of shape (n_prompts, n_generators)
    normalized_costs : array-like of shape (n_generators,) or GeneratorRegistry
    label : str, default="random mixture"

    Returns
    -------
    DeferralCurve
        The envelope's vertices by increasing cost (``lambdas`` are NaN), from the cheapest
        generator to the most expensive one (the envelope's right end may slope down when the
        most expensive generator is not the best; AUC and cost-at-quality use the running max).

    Examples
    --------
    >>> h = hull_curve([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]], [0.2, 0.9, 1.0])
    >>> h.costs, h.qualities
    (array([0.2, 1. ]), array([1., 3.]))
    """
    Q = _as_matrix(true_quality, "true_quality")
    c = _as_costs(normalized_costs, Q.shape[1])
    means = Q.mean(axis=0)
    idx = _upper_hull(c, means)
    return DeferralCurve(np.full(idx.size, np.nan), c[idx], means[idx], _cheapest(c), label)


# --------------------------------------------------------------------------------------
# scalar summaries
# --------------------------------------------------------------------------------------
def _running_max_envelope(costs: Any, qualities: Any) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (x, y) of the running max of the piecewise-linear curve through the points."""
    x = np.asarray(costs, dtype=float)
    y = np.asarray(qualities, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise ValueError(
            f"curve costs and qualities must be 1-D of equal, non-zero length, got {x.shape} and {y.shape}"
        )
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("curve costs and qualities must be finite")
    order = np.lexsort((y, x))  # by cost, then quality (so a vertical stack rises)
    x, y = x[order], y[order]
    m = np.maximum.accumulate(y)
    if x.size == 1:
        return x.copy(), y.copy()
    x0, x1, y0, y1, prev = x[:-1], x[1:], y[:-1], y[1:], m[:-1]
    rise = y1 > prev
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(rise, (prev - y0) / np.where(rise, y1 - y0, 1.0), 0.0)
    xc = x0 + t * (x1 - x0)
    # vertices: first point, then for every rising segment its crossing with the running max
    # (where the flat part ends) and its end point
    xs = np.empty(1 + 2 * int(rise.sum()))
    ys = np.empty_like(xs)
    xs[0], ys[0] = x[0], y[0]
    xs[1::2], ys[1::2] = xc[rise], prev[rise]
    xs[2::2], ys[2::2] = x1[rise], y1[rise]
    return xs, ys


def auc(costs: Any, qualities: Any, c_min: float) -> float:
    """Normalised area under the running-max deferral curve on ``[c_min, 1]``.

    The operating points are sorted by cost and joined by straight lines (a random mixture of
    two routings reaches every point of the segment); the curve is replaced by its running
    maximum over cost (spending more is never forced), extended flat right of its last point
    up to cost 1, and counts as zero left of its first point (no quality is reached there).
    The area is divided by ``1 - c_min``, so the AUC is a mean quality over the budget range,
    in the units of the quality matrix. When ``c_min == 1`` (all generators cost the same) the
    interval is a point and the AUC is the running-max quality at cost 1.

    Parameters
    ----------
    costs, qualities : array-like of shape (n_points,)
        The curve's operating points, in any order.
    c_min : float
        Normalised cost of the cheapest generator, in [0, 1].

    Returns
    -------
    float

    Examples
    --------
    >>> auc([0.0, 1.0], [0.0, 1.0], 0.0)        # the diagonal: area 1/2
    0.5
    >>> auc([0.5], [2.0], 0.0)                  # nothing left of 0.5, flat 2 right of it
    1.0
    """
    if isinstance(c_min, bool) or not isinstance(c_min, numbers.Real) or not (0 <= c_min <= 1):
        raise ValueError(f"c_min must be a number in [0, 1], got {c_min!r}")
    xs, ys = _running_max_envelope(costs, qualities)
    c_min = float(c_min)
    if c_min >= 1:
        return quality_at_cost((xs, ys), 1.0)
    # the curve beyond its last point: flat to cost 1
    if xs[-1] < 1:
        xs, ys = np.r_[xs, 1.0], np.r_[ys, ys[-1]]
    x0, x1, y0, y1 = xs[:-1], xs[1:], ys[:-1], ys[1:]
    a = np.clip(x0, c_min, 1.0)
    b = np.clip(x1, c_min, 1.0)
    width = x1 - x0
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(width > 0, (y1 - y0) / np.where(width > 0, width, 1.0), 0.0)
    ya = y0 + slope * (a - x0)
    yb = y0 + slope * (b - x0)
    area = float(np.sum((b - a) * (ya + yb) / 2))
    return area / (1.0 - c_min)


def _curve_xy(curve: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(curve, DeferralCurve):
        return curve.costs, curve.qualities
    if isinstance(curve, pd.DataFrame) and {"cost", "quality"} <= set(curve.columns):
        return curve["cost"].to_numpy(float), curve["quality"].to_numpy(float)
    if isinstance(curve, tuple) and len(curve) == 2:
        return np.asarray(curve[0], dtype=float), np.asarray(curve[1], dtype=float)
    raise TypeError(
        "curve must be a DeferralCurve, a DataFrame with 'cost' and 'quality' columns, or a "
        f"(costs, qualities) tuple, got {type(curve).__name__}"
    )


def cost_at_quality(curve: Any, q: float) -> float:
    """Least normalised cost at which a curve reaches quality ``q``.

    Uses the same running-max, straight-line-joined curve as :func:`auc`. A small relative
    tolerance (1e-9) absorbs rounding, so a routing that equals the best single generator on
    every prompt does reach that generator's quality.

    Parameters
    ----------
    curve : DeferralCurve, DataFrame with ``cost``/``quality`` columns, or (costs, qualities)
    q : float
        Target quality.

    Returns
    -------
    float
        The cost, or ``inf`` when the curve never reaches ``q``.

    Examples
    --------
    >>> round(cost_at_quality(([0.2, 1.0], [1.0, 3.0]), 2.0), 6)
    0.6
    >>> cost_at_quality(([0.2, 1.0], [1.0, 3.0]), 4.0)
    inf
    """
    if isinstance(q, bool) or not isinstance(q, numbers.Real) or not np.isfinite(q):
        raise ValueError(f"q must be a finite number, got {q!r}")
    xs, ys = _running_max_envelope(*_curve_xy(curve))
    tol = _REACH_RTOL * max(1.0, abs(float(q)))
    reached = ys >= q - tol
    if not reached.any():
        return float("inf")
    j = int(np.argmax(reached))
    if j == 0 or ys[j] <= q:
        return float(xs[j])
    # ys[j-1] < q - tol < ... <= ys[j]: interpolate on the rising segment
    t = (q - ys[j - 1]) / (ys[j] - ys[j - 1])
    return float(xs[j - 1] + t * (xs[j] - xs[j - 1]))


def quality_at_cost(curve: Any, cost: float) -> float:
    """Best quality a curve reaches at mean normalised cost ``<= cost`` (NaN left of the curve).

    Parameters
    ----------
    curve : DeferralCurve, DataFrame with ``cost``/``quality`` columns, or (costs, qualities)
    cost : float

    Returns
    -------
    float
        The running-max curve at ``cost``; ``nan`` when ``cost`` is below the curve's
        cheapest point.
    """
    if isinstance(cost, bool) or not isinstance(cost, numbers.Real) or not np.isfinite(cost):
        raise ValueError(f"cost must be a finite number, got {cost!r}")
    xs, ys = _running_max_envelope(*_curve_xy(curve))
    if cost < xs[0] - 1e-12:
        return float("nan")
    if cost <= xs[0]:
        return float(ys[0])
    if cost >= xs[-1]:
        return float(ys[-1])
    j = int(np.searchsorted(xs, cost, side="right"))  # xs[j-1] <= cost < xs[j]
    if xs[j] == xs[j - 1]:
        return float(ys[j])
    t = (cost - xs[j - 1]) / (xs[j] - xs[j - 1])
    return float(ys[j - 1] + t * (ys[j] - ys[j - 1]))


def apgr(auc_router: float, auc_hull: float, auc_oracle: float) -> float:
    """Average performance gap recovered: ``(AUC_router - AUC_hull) / (AUC_oracle - AUC_hull)``.

    0 means no better than randomly mixing generators, 1 means as good as the oracle; it is
    negative for a router below the hull. NaN when the oracle does not beat the hull.

    Examples
    --------
    >>> apgr(3.5, 3.0, 4.0)
    0.5
    """
    vals = []
    for name, v in (("auc_router", auc_router), ("auc_hull", auc_hull), ("auc_oracle", auc_oracle)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"{name} must be a number, got {type(v).__name__}: {v!r}")
        vals.append(float(v))
    r, h, o = vals
    gap = o - h
    if not np.isfinite(gap) or gap <= 1e-12 * max(1.0, abs(o)):
        return float("nan")
    return (r - h) / gap


def cost_saving(curve: Any, hull: Any, q: float | None = None) -> float:
    """Cost saving of a curve over the random mixture at quality ``q``.

    ``cost_at_quality(hull, q) / cost_at_quality(curve, q)``; ``q`` defaults to the hull's
    best quality (the best single generator's mean quality, ``q_best``). Returns 0 when the
    curve never reaches ``q`` and NaN when the hull does not.

    Parameters
    ----------
    curve : DeferralCurve or (costs, qualities)
    hull : DeferralCurve or (costs, qualities)
        Typically :func:`hull_curve`.
    q : float, optional
        Quality level; default ``max(hull qualities)``.

    Returns
    -------
    float
    """
    if q is None:
        q = float(np.max(_curve_xy(hull)[1]))
    ch = cost_at_quality(hull, q)
    cr = cost_at_quality(curve, q)
    if not np.isfinite(ch):
        return float("nan")
    if not np.isfinite(cr):
        return 0.0
    if cr <= 0:
        return float("inf") if ch > 0 else 1.0
    return ch / cr


# --------------------------------------------------------------------------------------
# cross-validation
# --------------------------------------------------------------------------------------
@dataclass
class RoutingCVResult:
    """Per-fold scores of a cross-validated routing comparison.

    Attributes
    ----------
    scores : DataFrame
        One row per (repeat, fold[, rater], method) with columns ``repeat``, ``fold``,
        ``method``, ``kind`` (``"single"``, ``"hull"``, ``"router"``, ``"oracle"``), the metrics
        listed in ``metrics`` and, for routers, ``fit_time``/``predict_time`` in seconds.
    metrics : tuple of str
        Metric columns of ``scores`` (see :data:`METRICS`).
    generator_names : list of str
        Generator (column) order of the quality matrices.
    normalized_costs : ndarray of shape (n_generators,)
    true_quality : ndarray of shape (n_prompts, n_generators)
        The evaluation target (columns in ``generator_names`` order).
    oof_predictions : dict
        ``{router name: [ndarray (n_prompts, n_generators) per repeat]}``: out-of-fold
        predicted quality, each prompt predicted by the model of the fold that held it out.
        Empty for the split-rater evaluation.
    models : dict
        ``{(repeat, fold): {router name: fitted router}}`` when ``return_models=True``.
    info : dict
        Settings (cv, n_repeats, random_state, ...) and timings.
    """

    scores: pd.DataFrame
    metrics: tuple[str, ...]
    generator_names: list[str]
    normalized_costs: np.ndarray
    true_quality: np.ndarray
    oof_predictions: dict[str, list[np.ndarray]] = field(default_factory=dict)
    models: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Mean ± std over folds per method; see :func:`routing_report`."""
        return routing_report(self)

    def pooled_scores(self) -> pd.DataFrame:
        """Metrics of curves pooled over all prompts, one row per (repeat, method).

        For each repeat, every prompt is routed with the out-of-fold prediction of the model
        that did not see it, and the curves of routers, single generators, hull and oracle are
        computed on the whole data set at once (larger test set, less noisy ``q_best`` than
        per fold). Baselines are the same in every repeat.
        """
        if not self.oof_predictions:
            raise ValueError(
                "pooled scores need out-of-fold predictions: run cross_validate_routing with an "
                "int cv (the split-rater evaluation has none)"
            )
        Q, c = self.true_quality, self.normalized_costs
        fractions = self.info.get("fractions", (0.5, 0.8))
        n_rep = max(len(v) for v in self.oof_predictions.values())
        base, hull, oracle, points = _baseline_curves(Q, c, self.generator_names, None)
        oq, oc = _lambda0_point(Q, Q, c)
        rows = []
        for rep in range(n_rep):
            routers = {}
            for name, preds in self.oof_predictions.items():
                if rep >= len(preds) or np.isnan(preds[rep]).any():
                    continue  # this router was not run on every fold of the repeat
                p = preds[rep]
                q0, c0 = _lambda0_point(p, Q, c)
                routers[name] = ("router", deferral_curve(p, Q, c, label=name), q0, c0)
            methods = {**base, **routers, "oracle": ("oracle", oracle, oq, oc)}
            for row in _fold_metrics(methods, hull, oracle, points, fractions):
                row.update(repeat=rep, fold=-1)
                rows.append(row)
        return _tidy_scores(rows, fractions)

    def curves(self, repeat: int = 0) -> dict[str, DeferralCurve]:
        """Pooled out-of-fold curves of repeat ``repeat``: routers, hull and oracle on all prompts.

        Each prompt is routed with the model that did not see it, so a curve over all prompts
        is out of sample; the hull and oracle use the full true quality matrix.
        """
        c = self.normalized_costs
        Q = self.true_quality
        out = {}
        for name, preds in self.oof_predictions.items():
            if not 0 <= repeat < len(preds):
                raise ValueError(f"repeat must be in [0, {len(preds) - 1}], got {repeat}")
            out[name] = deferral_curve(preds[repeat], Q, c, label=name)
        out["random mixture"] = hull_curve(Q, c)
        out["oracle"] = oracle_curve(Q, c)
        return out

    def plot(self, repeat: int = 0, *, routers: Sequence[str] | None = None, ax: Any = None, title: str | None = None) -> Axes:
        """Plot pooled out-of-fold curves (see :meth:`curves`) and the single-generator points."""
        curves = self.curves(repeat)
        if routers is not None:
            unknown = [r for r in routers if r not in self.oof_predictions]
            if unknown:
                raise ValueError(f"unknown routers {unknown}; valid: {list(self.oof_predictions)}")
            curves = {k: v for k, v in curves.items() if k in routers or k in ("random mixture", "oracle")}
        points = single_model_points(self.true_quality, self.normalized_costs, self.generator_names)
        return plot_deferral(curves, points, ax=ax, title=title)


def _coerce_routers(routers: Any) -> dict[str, Any]:
    if isinstance(routers, Mapping):
        if not routers:
            raise ValueError("routers must not be empty")
        out = {}
        for name, est in routers.items():
            if not isinstance(name, str):
                raise TypeError(f"router names must be str, got {name!r}")
            if not (hasattr(est, "fit") and hasattr(est, "predict_quality")):
                raise TypeError(f"router {name!r} must have fit and predict_quality, got {type(est).__name__}")
            out[name] = est
        return out
    if hasattr(routers, "fit") and hasattr(routers, "predict_quality"):
        return {"router": routers}
    raise TypeError(
        "routers must be an estimator with fit/predict_quality or a dict name -> estimator, "
        f"got {type(routers).__name__}"
    )


def _as_prompt_list(prompts: Any) -> list[str]:
    if isinstance(prompts, (str, bytes)):
        raise TypeError("prompts must be a sequence of str, not a single string")
    prompts = list(prompts)
    bad = [p for p in prompts if not isinstance(p, str)]
    if bad:
        raise TypeError(f"prompts must all be str, got {type(bad[0]).__name__}: {bad[0]!r}")
    return prompts


def _make_splits(cv: Any, n_repeats: int, random_state: Any, n: int) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """(repeat, fold, train, test) for every split, shared by all methods."""
    from sklearn.model_selection import RepeatedKFold

    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        if cv < 2:
            raise ValueError(f"cv must be >= 2 folds, got {cv}")
        if cv > n:
            raise ValueError(f"cv={cv} folds need at least {cv} prompts, got {n}")
        if isinstance(n_repeats, bool) or not isinstance(n_repeats, numbers.Integral) or n_repeats < 1:
            raise ValueError(f"n_repeats must be an integer >= 1, got {n_repeats!r}")
        splitter = RepeatedKFold(n_splits=int(cv), n_repeats=int(n_repeats), random_state=random_state)
        idx = np.arange(n)
        return [(s // cv, s % cv, tr, te) for s, (tr, te) in enumerate(splitter.split(idx))]
    if hasattr(cv, "split"):
        idx = np.arange(n)
        return [(0, s, tr, te) for s, (tr, te) in enumerate(cv.split(idx))]
    raise TypeError(f"cv must be an int (number of folds) or a splitter with split(), got {cv!r}")


def _fit_predict(name: str, estimator: Any, p_train: list[str], y_train: Any, p_test: list[str], K: int):
    """Clone and fit one router on a training fold, predict the test fold's quality.

    Returns the fitted clone, its (n_test, K) predictions and (fit seconds, predict seconds).
    """
    model = clone(estimator)
    t0 = time.perf_counter()
    model.fit(p_train, y_train)
    t1 = time.perf_counter()
    pred = _as_matrix(model.predict_quality(p_test), f"{name}.predict_quality")
    t2 = time.perf_counter()
    if pred.shape != (len(p_test), K):
        raise ValueError(f"{name}.predict_quality returned shape {pred.shape}, expected {(len(p_test), K)}")
    return model, pred, (t1 - t0, t2 - t1)


def _fold_metrics(
    curves: Mapping[str, tuple[str, DeferralCurve, float, float]],
    hull: DeferralCurve,
    oracle: DeferralCurve,
    points: pd.DataFrame,
    fractions: Sequence[float],
    extra_oracle: DeferralCurve | None = None,
) -> list[dict[str, Any]]:
    """Metrics of every method on one test fold.

    ``curves`` maps method -> (kind, curve, quality at λ=0, cost at λ=0).
    """
    q_best = float(points["quality"].max())
    c_min = float(points["cost"].min())
    q_cheap = float(points.loc[points["cost"] == c_min, "quality"].max())
    targets = {f"cost_{int(round(100 * f))}": q_cheap + f * (q_best - q_cheap) for f in fractions}
    auc_h, auc_o = hull.auc(), oracle.auc()
    auc_oi = extra_oracle.auc() if extra_oracle is not None else None
    rows = []
    for method, (kind, curve, q0, c0) in curves.items():
        a = curve.auc() if kind != "single" else float("nan")
        row = {
            "method": method,
            "kind": kind,
            "quality": q0,
            "gain": q0 - q_best,
            "cost": c0,
            "auc": a,
            "apgr": apgr(a, auc_h, auc_o) if kind != "single" else float("nan"),
            "saving": cost_saving(curve, hull, q_best),
            "reached_best": float(np.isfinite(curve.cost_at_quality(q_best))),
        }
        for key, q in targets.items():
            row[key] = curve.cost_at_quality(q)
        if auc_oi is not None:
            row["apgr_indep"] = apgr(a, auc_h, auc_oi) if kind != "single" else float("nan")
        rows.append(row)
    return rows


def _baseline_curves(
    Q: np.ndarray, c: np.ndarray, names: Sequence[str], lambdas: Any
) -> tuple[dict[str, tuple[str, DeferralCurve, float, float]], DeferralCurve, DeferralCurve, pd.DataFrame]:
    points = single_model_points(Q, c, names)
    curves: dict[str, tuple[str, DeferralCurve, float, float]] = {}
    for name, (cost, qual) in points.iterrows():
        curves[name] = ("single", DeferralCurve([np.nan], [cost], [qual], float(c.min()), name), qual, cost)
    hull = hull_curve(Q, c)
    best = int(np.argmax(hull.qualities))
    curves["random mixture"] = ("hull", hull, float(hull.qualities[best]), float(hull.costs[best]))
    oracle = oracle_curve(Q, c, lambdas=lambdas)
    return curves, hull, oracle, points


def _lambda0_point(pred: np.ndarray, Q: np.ndarray, c: np.ndarray) -> tuple[float, float]:
    a = route_with_penalty(pred, c, 0.0)
    cost, qual = operating_point(a, Q, c)
    return qual, cost


def _check_method_names(router_names: Iterable[str], generator_names: Iterable[str], reserved: Iterable[str]) -> None:
    taken = set(generator_names) | set(reserved)
    clash = sorted(set(router_names) & taken)
    if clash:
        raise ValueError(
            f"router names {clash} clash with generator or baseline names {sorted(taken)}; rename them"
        )


def _log(verbose: int, msg: str) -> None:
    if verbose:
        print(msg, flush=True)


def cross_validate_routing(
    routers: Any,
    prompts: Sequence[str],
    quality: Any,
    *,
    normalized_costs: Any = None,
    cv: int | Any = 5,
    n_repeats: int = 3,
    random_state: int | np.random.RandomState | None = None,
    lambdas: int | Sequence[float] | np.ndarray | None = None,
    fractions: Sequence[float] = (0.5, 0.8),
    return_models: bool = False,
    verbose: int = 0,
) -> RoutingCVResult:
    """Repeated K-fold cross-validation (by prompt) of routers against the baselines.

    Every router is cloned and fitted on the training prompts of each fold and evaluated on
    the held-out prompts; the single generators, the random-mixture hull and the oracle are
    evaluated on the same held-out prompts, so every method sees exactly the same folds.

    Parameters
    ----------
    routers : estimator or dict of str -> estimator
        Unfitted routers (e.g. :class:`~costroute.CostAwareRouter`); each needs ``fit(prompts,
        y)``, ``predict_quality(prompts)`` and, after fit, ``normalized_costs_`` (and ideally
        ``generator_names_``). They are cloned with :func:`sklearn.base.clone` per fold. A
        single estimator is reported as ``"router"``.
    prompts : sequence of str, length n_prompts
    quality : DataFrame or array-like of shape (n_prompts, n_generators)
        True quality. A DataFrame's columns are generator names (reordered to
        ``generator_names_``); an array must be in the routers' generator order.
    normalized_costs : array-like or GeneratorRegistry, optional
        Default: the fitted routers' ``normalized_costs_`` (which must agree).
    cv : int or splitter, default=5
        Number of folds (``RepeatedKFold(cv, n_repeats, random_state)``), or any object with
        ``split(X)`` (then ``n_repeats`` is ignored and everything is repeat 0).
    n_repeats : int, default=3
    random_state : int, RandomState or None
        Seed of the fold assignment.
    lambdas : None, int or array-like, default=None
        λ grid of each curve (see :func:`deferral_curve`; ``None`` = exact curves).
    fractions : sequence of float, default=(0.5, 0.8)
        Quality targets ``q_cheap + f (q_best - q_cheap)`` for the ``cost_XX`` metrics.
    return_models : bool, default=False
        Keep the fitted routers in ``result.models[(repeat, fold)][name]``.
    verbose : int, default=0
        Print one line per fold when > 0.

    Returns
    -------
    RoutingCVResult
        Per-fold metrics (``result.scores``), out-of-fold predictions and
        ``result.summary()`` (mean ± std over all ``cv * n_repeats`` folds).

    Examples
    --------
    >>> from costroute import CostAwareRouter
    >>> from costroute.datasets import load_genai_bench
    >>> from costroute.evaluation import cross_validate_routing, report_to_markdown
    >>> data = load_genai_bench(cost_unit="usd")  # doctest: +SKIP
    >>> routers = {q: CostAwareRouter(data.generators, quality_model=q)
    ...            for q in ("knn", "ridge")}  # doctest: +SKIP
    >>> res = cross_validate_routing(routers, data.prompts, data.quality,
    ...                              cv=5, n_repeats=3, random_state=0)  # doctest: +SKIP
    >>> print(report_to_markdown(res.summary(), ["quality", "auc", "apgr", "saving"]))  # doctest: +SKIP
    """

    models = _coerce_routers(routers)
    prompts = _as_prompt_list(prompts)
    names_in = [str(col) for col in quality.columns] if isinstance(quality, pd.DataFrame) else None
    Q_all = _as_matrix(quality, "quality")
    n, K = Q_all.shape
    if len(prompts) != n:
        raise ValueError(f"got {len(prompts)} prompts but quality has {n} rows")
    fractions = _check_fractions(fractions)
    splits = _make_splits(cv, n_repeats, random_state, n)
    c_fixed = _as_costs(normalized_costs, K) if normalized_costs is not None else None
    prompt_arr = np.asarray(prompts, dtype=object)

    names: list[str] | None = None
    c: np.ndarray | None = c_fixed
    Q_eval: np.ndarray | None = None
    n_rep = max(s[0] for s in splits) + 1
    oof = {name: [np.full((n, K), np.nan) for _ in range(n_rep)] for name in models}
    fitted: dict[tuple[int, int], dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    for repeat, fold, train, test in splits:
        t_fold = time.perf_counter()
        y_train = _subset_target(quality, train)
        p_train = prompt_arr[train].tolist()
        p_test = prompt_arr[test].tolist()
        router_curves: dict[str, tuple[str, DeferralCurve, float, float]] = {}
        timings = {}
        for name, est in models.items():
            model, pred, timings[name] = _fit_predict(name, est, p_train, y_train, p_test, K)
            if return_models:
                fitted.setdefault((repeat, fold), {})[name] = model
            if names is None:  # first fitted model fixes the column order and costs
                names = _model_names(model, names_in, K)
                Q_eval = _as_matrix(_align_columns(quality, names), "quality")
                if c is None:
                    c = _model_costs(model, K)
                _check_method_names(models, names, ("random mixture", "oracle"))
            else:
                _check_consistent(model, name, names, c, c_fixed is not None)
            oof[name][repeat][test] = pred
            Q_test = Q_eval[test]
            curve = deferral_curve(pred, Q_test, c, lambdas=lambdas, label=name)
            q0, c0 = _lambda0_point(pred, Q_test, c)
            router_curves[name] = ("router", curve, q0, c0)
        assert Q_eval is not None and c is not None and names is not None
        Q_test = Q_eval[test]
        base, hull, oracle, points = _baseline_curves(Q_test, c, names, lambdas)
        oq, oc = _lambda0_point(Q_test, Q_test, c)
        methods = {**base, **router_curves, "oracle": ("oracle", oracle, oq, oc)}
        for row in _fold_metrics(methods, hull, oracle, points, fractions):
            row.update(repeat=repeat, fold=fold)
            if row["method"] in timings:
                row["fit_time"], row["predict_time"] = timings[row["method"]]
            rows.append(row)
        _log(
            verbose,
            f"[cross_validate_routing] repeat {repeat} fold {fold}: "
            + ", ".join(f"{k} fit {v[0]:.1f}s" for k, v in timings.items())
            + f" | fold {time.perf_counter() - t_fold:.1f}s, total {time.perf_counter() - t_start:.1f}s",
        )
    assert names is not None and c is not None and Q_eval is not None
    scores = _tidy_scores(rows, fractions)
    return RoutingCVResult(
        scores=scores,
        metrics=_metric_names(fractions),
        generator_names=list(names),
        normalized_costs=c,
        true_quality=Q_eval,
        oof_predictions={k: v for k, v in oof.items()} if isinstance(cv, numbers.Integral) else {},
        models=fitted,
        info={
            "cv": cv if isinstance(cv, numbers.Integral) else repr(cv),
            "n_repeats": n_repeats,
            "random_state": random_state if isinstance(random_state, (int, type(None))) else repr(random_state),
            "n_prompts": n,
            "lambdas": "exact" if lambdas is None else (lambdas if isinstance(lambdas, int) else "grid"),
            "fractions": fractions,
            "wall_time": time.perf_counter() - t_start,
        },
    )


def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    out = tuple(float(f) for f in fractions)
    if any(not (0 < f <= 1) for f in out):
        raise ValueError(f"fractions must lie in (0, 1], got {list(fractions)}")
    return out


def _metric_names(fractions: Sequence[float], extra: Sequence[str] = ()) -> tuple[str, ...]:
    costs = tuple(f"cost_{int(round(100 * f))}" for f in fractions)
    base = ("quality", "gain", "cost", "auc", "apgr", "saving") + costs + ("reached_best",)
    return base + tuple(extra)


def _tidy_scores(rows: list[dict[str, Any]], fractions: Sequence[float], extra: Sequence[str] = ()) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    lead = [col for col in ("repeat", "fold", "rater", "method", "kind") if col in frame.columns]
    metrics = list(_metric_names(fractions, extra))
    rest = [col for col in frame.columns if col not in lead and col not in metrics]
    return frame[lead + metrics + rest]


def _subset_target(quality: Any, idx: np.ndarray) -> Any:
    if isinstance(quality, pd.DataFrame):
        return quality.iloc[idx].reset_index(drop=True)
    return np.asarray(quality)[idx]


def _model_names(model: Any, names_in: list[str] | None, K: int) -> list[str]:
    names = getattr(model, "generator_names_", None)
    if names is not None:
        names = [str(x) for x in names]
        if len(names) != K:
            raise ValueError(f"router has {len(names)} generators but quality has {K} columns")
        return names
    return names_in if names_in is not None else [str(k) for k in range(K)]


def _model_costs(model: Any, K: int) -> np.ndarray:
    if not hasattr(model, "normalized_costs_"):
        raise ValueError(
            "the fitted router has no normalized_costs_; pass normalized_costs= explicitly"
        )
    return _as_costs(model.normalized_costs_, K, "router.normalized_costs_")


def _check_consistent(model: Any, name: str, names: list[str], c: np.ndarray, fixed_costs: bool) -> None:
    other = getattr(model, "generator_names_", None)
    if other is not None and [str(x) for x in other] != names:
        raise ValueError(f"router {name!r} orders generators {list(other)}, others use {names}")
    if not fixed_costs and hasattr(model, "normalized_costs_"):
        oc = _as_costs(model.normalized_costs_, len(names), f"{name}.normalized_costs_")
        if not np.allclose(oc, c):
            raise ValueError(
                f"router {name!r} has normalized_costs_ {oc.tolist()} but another router has "
                f"{c.tolist()}; compare routers over the same generators and costs"
            )


# --------------------------------------------------------------------------------------
# split-rater evaluation
# --------------------------------------------------------------------------------------
def split_rater_cross_validate(
    routers: Any,
    prompts: Sequence[str],
    ratings: Any,
    *,
    generator_names: Sequence[str] | None = None,
    normalized_costs: Any = None,
    cv: int | Any = 5,
    n_repeats: int = 1,
    random_state: int | np.random.RandomState | None = None,
    lambdas: int | Sequence[float] | np.ndarray | None = None,
    fractions: Sequence[float] = (0.5, 0.8),
    verbose: int = 0,
) -> RoutingCVResult:
    """Cross-validation that trains and evaluates on different raters, to expose rating noise.

    With ``R`` ratings per image (GenAI-Bench has three), for every fold and every held-out
    rater ``r``: routers are fitted on the training prompts with the mean of the *other*
    ``R - 1`` ratings as the target, and every method is scored on the test prompts against
    rater ``r`` alone. Two oracles are reported:

    * ``"oracle"`` routes on rater ``r``'s own ratings -- the usual oracle, which also routes
      on that rater's noise;
    * ``"oracle (other raters)"`` routes on the mean of the other raters' ratings of the *test*
      images and is scored on rater ``r`` -- it knows each image's quality but not rater
      ``r``'s noise.

    The gap between the two oracles is the part of the usual oracle's advantage that comes
    from routing on noise; ``apgr_indep`` is the APGR against the second oracle. (The second
    oracle still sees only an ``R - 1``-rater mean, so it somewhat *understates* what a
    noise-free oracle would reach.) Rater identities are positions in the rating list.

    Parameters
    ----------
    routers : estimator or dict of str -> estimator
        As in :func:`cross_validate_routing`.
    prompts : sequence of str, length n_prompts
    ratings : array-like of shape (n_prompts, n_generators, n_raters)
        Individual ratings, generators in the routers' order (``n_raters >= 2``).
    generator_names : sequence of str, optional
        Column names of the training target DataFrame passed to ``fit`` (a router whose ``y``
        columns must be generator names needs them). Default: pass arrays.
    normalized_costs, cv, n_repeats, random_state, lambdas, fractions, verbose
        As in :func:`cross_validate_routing` (``n_repeats`` defaults to 1: each repeat already
        costs ``n_raters`` fits per fold).

    Returns
    -------
    RoutingCVResult
        ``scores`` has a ``rater`` column and an extra ``apgr_indep`` metric;
        ``true_quality`` is the all-rater mean. ``routing_report`` averages over folds and
        raters.
    """

    models = _coerce_routers(routers)
    prompts = _as_prompt_list(prompts)
    R3 = np.asarray(ratings, dtype=float)
    if R3.ndim != 3 or R3.shape[2] < 2:
        raise ValueError(
            f"ratings must have shape (n_prompts, n_generators, n_raters>=2), got {R3.shape}"
        )
    if not np.all(np.isfinite(R3)):
        raise ValueError("ratings must be finite (no NaN): every image needs every rating")
    n, K, n_raters = R3.shape
    if len(prompts) != n:
        raise ValueError(f"got {len(prompts)} prompts but ratings has {n} rows")
    if generator_names is not None:
        generator_names = [str(x) for x in generator_names]
        if len(generator_names) != K:
            raise ValueError(f"got {len(generator_names)} generator_names for {K} generators")
    fractions = _check_fractions(fractions)
    splits = _make_splits(cv, n_repeats, random_state, n)
    c_fixed = _as_costs(normalized_costs, K) if normalized_costs is not None else None
    c = c_fixed
    names: list[str] | None = None
    prompt_arr = np.asarray(prompts, dtype=object)
    rows: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    for repeat, fold, train, test in splits:
        p_train = prompt_arr[train].tolist()
        p_test = prompt_arr[test].tolist()
        for r in range(n_raters):
            t_fold = time.perf_counter()
            others = [j for j in range(n_raters) if j != r]
            target = R3[:, :, others].mean(axis=2)
            held = R3[:, :, r]
            y_train: Any = target[train]
            if generator_names is not None:
                y_train = pd.DataFrame(y_train, columns=generator_names)
            router_curves: dict[str, tuple[str, DeferralCurve, float, float]] = {}
            timings = {}
            for name, est in models.items():
                model, pred, timings[name] = _fit_predict(name, est, p_train, y_train, p_test, K)
                if names is None:
                    names = _model_names(model, generator_names, K)
                    if generator_names is not None and names != generator_names:
                        raise ValueError(
                            f"router generator order {names} differs from generator_names {generator_names}"
                        )
                    if c is None:
                        c = _model_costs(model, K)
                    _check_method_names(models, names, ("random mixture", "oracle", "oracle (other raters)"))
                else:
                    _check_consistent(model, name, names, c, c_fixed is not None)
                q0, c0 = _lambda0_point(pred, held[test], c)
                router_curves[name] = ("router", deferral_curve(pred, held[test], c, lambdas=lambdas, label=name), q0, c0)
            assert c is not None and names is not None
            H = held[test]
            base, hull, oracle, points = _baseline_curves(H, c, names, lambdas)
            oq, oc = _lambda0_point(H, H, c)
            T = target[test]
            indep = deferral_curve(T, H, c, lambdas=lambdas, label="oracle (other raters)")
            iq, ic = _lambda0_point(T, H, c)
            methods = {
                **base,
                **router_curves,
                "oracle (other raters)": ("oracle", indep, iq, ic),
                "oracle": ("oracle", oracle, oq, oc),
            }
            for row in _fold_metrics(methods, hull, oracle, points, fractions, extra_oracle=indep):
                row.update(repeat=repeat, fold=fold, rater=r)
                if row["method"] in timings:
                    row["fit_time"], row["predict_time"] = timings[row["method"]]
                rows.append(row)
            _log(
                verbose,
                f"[split_rater_cross_validate] repeat {repeat} fold {fold} rater {r}: "
                f"{time.perf_counter() - t_fold:.1f}s, total {time.perf_counter() - t_start:.1f}s",
            )
    assert names is not None and c is not None
    scores = _tidy_scores(rows, fractions, extra=("apgr_indep",))
    return RoutingCVResult(
        scores=scores,
        metrics=_metric_names(fractions, extra=("apgr_indep",)),
        generator_names=list(names),
        normalized_costs=c,
        true_quality=R3.mean(axis=2),
        oof_predictions={},
        info={
            "cv": cv if isinstance(cv, numbers.Integral) else repr(cv),
            "n_repeats": n_repeats,
            "n_raters": n_raters,
            "random_state": random_state if isinstance(random_state, (int, type(None))) else repr(random_state),
            "n_prompts": n,
            "split_rater": True,
            "fractions": fractions,
            "wall_time": time.perf_counter() - t_start,
        },
    )


# --------------------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------------------
_KIND_ORDER = {"single": 0, "hull": 1, "router": 2, "oracle": 3}


def _is_cost_target(metric: str) -> bool:
    return metric.startswith("cost_") and metric[5:].isdigit()


def routing_report(
    result: Any,
    prompts: Sequence[str] | None = None,
    quality: Any = None,
    *,
    pooled: bool = False,
    **cv_kwargs: Any,
) -> pd.DataFrame:
    """Mean ± std of every routing metric per method.

    Parameters
    ----------
    result : RoutingCVResult, or estimator / dict of estimators
        A finished cross-validation, or routers to cross-validate now with
        ``cross_validate_routing(result, prompts, quality, **cv_kwargs)``.
    prompts, quality : optional
        Required when ``result`` is a router or dict of routers.
    pooled : bool, default=False
        Summarise :meth:`RoutingCVResult.pooled_scores` (one curve per repeat over all
        prompts, from the out-of-fold predictions) instead of the per-fold scores.
    **cv_kwargs
        Passed to :func:`cross_validate_routing`.

    Returns
    -------
    DataFrame
        One row per method (single generators by cost, then the random mixture, the routers
        and the oracle(s)), columns ``kind``, ``n_folds`` and ``<metric>_mean``,
        ``<metric>_std`` for each metric (std over all test folds -- and raters, for the
        split-rater evaluation -- with ``ddof=1``; over repeats when ``pooled``). The
        cost-to-reach metrics (``cost_50``, ``cost_80``) are averaged over the folds where the
        target was reached, and ``<metric>_reached`` gives the share of such folds (``inf``
        mean when none).

    Notes
    -----
    Metrics: quality (mean true quality at λ=0), gain (quality − best single generator's
    quality on the fold), cost (mean normalised cost at λ=0), auc, apgr, saving
    (cost_hull(q_best)/cost(q_best), 0 on a fold where the curve never reaches q_best),
    cost_50 / cost_80 (least normalised cost reaching 50 % / 80 % of the way from the
    cheapest to the best single generator's quality), reached_best (share of folds whose
    curve reaches q_best). AUC and APGR are NaN for single generators.
    """
    if not isinstance(result, RoutingCVResult):
        if prompts is None or quality is None:
            raise ValueError("routing_report needs prompts and quality when given routers")
        result = cross_validate_routing(result, prompts, quality, **cv_kwargs)
    elif prompts is not None or quality is not None or cv_kwargs:
        raise ValueError("prompts, quality and cv options are only used when routing_report runs the CV")
    scores = result.pooled_scores() if pooled else result.scores
    metrics = list(result.metrics)
    grouped = scores.groupby("method", sort=False)
    finite = scores[metrics].where(np.isfinite(scores[metrics].to_numpy(dtype=float)))
    finite["method"] = scores["method"]
    fgrouped = finite.groupby("method", sort=False)
    with np.errstate(invalid="ignore"):
        mean = grouped[metrics].mean()
        std = grouped[metrics].std(ddof=1)
        fmean = fgrouped[metrics].mean()
        fstd = fgrouped[metrics].std(ddof=1)
        reached = fgrouped[metrics].count().div(grouped.size(), axis=0)
    out = pd.DataFrame(index=mean.index)
    out["kind"] = grouped["kind"].first()
    out["n_folds"] = grouped.size()
    for m in metrics:
        if _is_cost_target(m):
            out[f"{m}_mean"] = fmean[m].where(reached[m] > 0, np.inf)
            out[f"{m}_std"] = fstd[m]
            out[f"{m}_reached"] = reached[m]
        else:
            out[f"{m}_mean"] = mean[m]
            out[f"{m}_std"] = std[m]
    if "fit_time" in scores.columns:
        out["fit_time_mean"] = grouped["fit_time"].mean()
    # singles by cost, then hull, routers (in given order), oracles
    first_pos = {m: i for i, m in enumerate(scores["method"].drop_duplicates())}
    key = [
        (_KIND_ORDER.get(out.loc[m, "kind"], 9), out.loc[m, "cost_mean"] if out.loc[m, "kind"] == "single" else 0.0, first_pos[m])
        for m in out.index
    ]
    out = out.iloc[sorted(range(len(key)), key=key.__getitem__)]
    out.index.name = "method"
    return out


def _fmt(mean: float, std: float, digits: int, reached: float = 1.0, n: int = 0) -> str:
    if np.isinf(mean) and mean > 0:
        return "never"
    if np.isnan(mean):
        return "—"
    if np.isinf(mean):
        return "-inf"
    scale = max(abs(mean), 0.0 if np.isnan(std) else abs(std))
    small = 0 < scale < 10.0 ** (1 - digits)  # e.g. costs of 0.003 ± 0.001 at 3 digits
    spec = f".{max(1, digits - 2)}e" if small else f".{digits}f"
    text = f"{mean:{spec}}" if np.isnan(std) else f"{mean:{spec}} ± {std:{spec}}"
    if reached < 1 and n:
        text += f" ({int(round(reached * n))}/{n})"
    return text


def report_to_markdown(
    report: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    *,
    digits: int = 3,
    headers: Mapping[str, str] | None = None,
) -> str:
    """Render a :func:`routing_report` as a Markdown table with ``mean ± std`` cells.

    Cost targets reached on only some folds show their mean over those folds followed by
    ``(k/n)``; "never" when no fold reached them; NaN shows as "—". Cells whose mean
    and std are both below ``10**(1 - digits)`` are written in scientific notation.

    Parameters
    ----------
    report : DataFrame
        Output of :func:`routing_report`.
    metrics : sequence of str, optional
        Metrics to show (default: every ``<m>_mean`` column's metric).
    digits : int, default=3
    headers : mapping, optional
        Column titles per metric.

    Returns
    -------
    str
    """
    if metrics is None:
        metrics = [col[: -len("_mean")] for col in report.columns if col.endswith("_mean") and col != "fit_time_mean"]
    missing = [m for m in metrics if f"{m}_mean" not in report.columns]
    if missing:
        raise ValueError(f"unknown metrics {missing}; the report has {[c[:-5] for c in report.columns if c.endswith('_mean')]}")
    headers = dict(headers or {})
    cols = ["method"] + [headers.get(m, m) for m in metrics]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(["---"] + ["---:"] * len(metrics)) + "|"]
    for method, row in report.iterrows():
        cells = [str(method)]
        for m in metrics:
            cells.append(
                _fmt(
                    float(row[f"{m}_mean"]),
                    float(row.get(f"{m}_std", np.nan)),
                    digits,
                    float(row.get(f"{m}_reached", 1.0)),
                    int(row.get("n_folds", 0)),
                )
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# plotting
# --------------------------------------------------------------------------------------
def plot_deferral(
    curves: DeferralCurve | Sequence[DeferralCurve] | Mapping[str, DeferralCurve],
    points: pd.DataFrame | None = None,
    *,
    ax: Any = None,
    title: str | None = None,
    xlabel: str = "mean normalised cost",
    ylabel: str = "mean quality",
    annotate: bool = True,
) -> Axes:
    """Draw deferral curves and single-generator points (matplotlib, the ``plot`` extra).

    Curves labelled ``"oracle..."`` are drawn dotted black, the random mixture dashed grey and
    every other curve (routers) solid. Each curve is drawn through its operating points in
    cost order (the straight-line joins that :func:`auc` uses, before the running max).

    Parameters
    ----------
    curves : DeferralCurve, sequence of them, or dict label -> DeferralCurve
    points : DataFrame, optional
        :func:`single_model_points` output; drawn as labelled markers.
    ax : matplotlib Axes, optional
        Default: a new figure.
    title, xlabel, ylabel : str
    annotate : bool, default=True
        Write each generator's name next to its point.

    Returns
    -------
    matplotlib.axes.Axes
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "plot_deferral needs matplotlib: pip install 'costroute[plot]'"
        ) from exc
    if isinstance(curves, DeferralCurve):
        items = [(curves.label or "router", curves)]
    elif isinstance(curves, Mapping):
        items = list(curves.items())
    else:
        items = [(cv.label or f"curve {i}", cv) for i, cv in enumerate(curves)]
    for label, cv in items:
        if not isinstance(cv, DeferralCurve):
            raise TypeError(f"curve {label!r} must be a DeferralCurve, got {type(cv).__name__}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.8))
    for label, cv in items:
        order = np.lexsort((cv.qualities, cv.costs))
        x, y = cv.costs[order], cv.qualities[order]
        low = label.lower()
        if low.startswith("oracle"):
            style = {"color": "black", "linestyle": ":" if "other" not in low else "-.", "linewidth": 1.5}
        elif "mixture" in low or "hull" in low:
            style = {"color": "0.45", "linestyle": "--", "linewidth": 1.5}
        else:
            style = {"linewidth": 1.8}
        ax.plot(x, y, label=f"{label} (AUC {cv.auc():.3f})", **style)
    if points is not None:
        ax.scatter(points["cost"], points["quality"], color="tab:red", zorder=5, s=28, label="single generators")
        if annotate:
            for name, (cost, qual) in points[["cost", "quality"]].iterrows():
                ax.annotate(str(name), (cost, qual), textcoords="offset points", xytext=(4, -10), fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return ax
