"""Deferral curves: the operating points of a routing as the cost penalty λ grows.

Also the two reference curves every router is compared with: the oracle (routing on the true
quality) and the random-mixture hull (upper concave envelope of the single-generator points).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..routing import _as_costs, _as_matrix, _as_penalties, _grouped_events, lambda_grid, route_with_penalty
from ._metrics import _running_max_envelope, auc, cost_at_quality, quality_at_cost


def _check_same_shape(pred: np.ndarray, true: np.ndarray) -> None:
    if pred.shape != true.shape:
        raise ValueError(
            f"predicted quality has shape {pred.shape} but true quality has shape {true.shape}; "
            "both must be (n_prompts, n_generators) with the same generator order"
        )


def _cheapest(c: np.ndarray) -> float:
    return float(c.min())


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
            f"assignments must be {Q.shape[0]} integer column indices, got shape {a.shape} dtype {a.dtype}"
        )
    if a.size and (a.min() < 0 or a.max() >= Q.shape[1]):
        raise ValueError(f"assignments must lie in [0, {Q.shape[1] - 1}]")
    return float(c[a].mean()), float(Q[np.arange(Q.shape[0]), a].mean())


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
                raise ValueError("the router has no normalized_costs_ (is it fitted?); pass normalized_costs")
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
        raise ValueError(f"quality columns must be the generator names {names}; missing {missing}, unexpected {extra}")
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


def single_model_points(true_quality: Any, normalized_costs: Any, names: Sequence[str] | None = None) -> pd.DataFrame:
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
