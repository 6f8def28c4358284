"""Scalar summaries of a deferral curve: AUC, cost at quality, quality at cost, APGR, saving.

Each function takes a curve's operating points (a :class:`~costroute.evaluation.DeferralCurve`,
a DataFrame with ``cost`` and ``quality`` columns, or a ``(costs, qualities)`` tuple) and
works on the *running-max* curve: the points sorted by cost, joined by straight lines (a
random mixture of two routings reaches every point of the segment), replaced by the running
maximum of quality over cost (spending more is never forced).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd

#: Relative tolerance used when asking whether a curve "reaches" a quality level, so that a
#: quality computed by summing per-prompt deltas is not missed by a rounding error.
_REACH_RTOL = 1e-9


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
    if isinstance(curve, pd.DataFrame):
        if {"cost", "quality"} <= set(curve.columns):
            return curve["cost"].to_numpy(float), curve["quality"].to_numpy(float)
    elif isinstance(curve, tuple):
        if len(curve) == 2:
            return np.asarray(curve[0], dtype=float), np.asarray(curve[1], dtype=float)
    elif hasattr(curve, "costs") and hasattr(curve, "qualities"):  # a DeferralCurve
        return np.asarray(curve.costs, dtype=float), np.asarray(curve.qualities, dtype=float)
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
