"""The routing rule: utilities, ties to the cheaper generator, exact λ breakpoints, budgets.

For predicted quality ``q̂`` (n x K) and normalised costs ``c̃`` (K,), the routing at a cost
penalty ``λ >= 0`` is ``a(i) = argmax_k q̂_k(x_i) - λ c̃_k`` with ties going to the cheaper
generator (:func:`assign_generators`). As λ grows each prompt only ever moves to strictly cheaper
generators, at *breakpoints* computed exactly from the pairwise crossings along the prompt's
upper envelope (:func:`lambda_grid`). The mean cost of the routing is a non-increasing step
function of λ whose steps are those breakpoints, so the smallest λ meeting a budget is one of
them (:func:`penalty_for_budget`).

This module is the one place the rule lives: :class:`~costroute.CostAwareRouter`,
:class:`~costroute.RoutingPlan` and :mod:`costroute.evaluation` all call it.

Examples
--------
>>> from costroute.routing import assign_generators, penalty_for_budget
>>> Q = [[1.0, 3.0], [2.0, 2.0], [1.0, 2.0]]      # 3 prompts x 2 generators
>>> c = [0.2, 1.0]                                # normalised costs
>>> assign_generators(Q, c, 0.0).tolist()          # the tie on prompt 1 goes to the cheaper
[1, 0, 1]
>>> lam = penalty_for_budget(Q, c, budget=0.5)     # the least λ with mean cost <= 0.5
>>> float(lam), assign_generators(Q, c, lam).tolist()
(1.25, [1, 0, 0])
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._checks import check_nonnegative

__all__ = [
    "BudgetWarning",
    "assign_generators",
    "check_budget",
    "check_penalty",
    "lambda_grid",
    "meets_budget",
    "penalty_for_budget",
    "route_with_penalty",
]

#: Utilities within ``_TIE_RTOL * max(1, |best utility|)`` of the best count as a tie, which
#: goes to the cheaper generator.
_TIE_RTOL = 1e-12

#: Breakpoints closer than this (relative) are one breakpoint: different pairs of generators
#: often cross at the same λ in exact arithmetic (e.g. ratings that are multiples of 1/3) but
#: a few ulps apart in floating point.
_GROUP_RTOL = 1e-9


class BudgetWarning(UserWarning):
    """A budget below the cheapest generator's cost could not be met."""


def check_penalty(value: Any, name: str = "cost_penalty") -> float:
    """``value`` as a float if it is a finite real >= 0, else a ``TypeError``/``ValueError``."""
    return check_nonnegative(value, name)


def check_budget(value: Any) -> float | None:
    """``None``, or the budget as a finite float >= 0."""
    if value is None:
        return None
    return check_nonnegative(value, "budget")


# --------------------------------------------------------------------------------------
# validation of quality matrices, costs and penalties
# --------------------------------------------------------------------------------------
def _as_matrix(x: Any, name: str) -> np.ndarray:
    """A finite float matrix (n, K) from an array-like or DataFrame."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a 2-D array-like of numbers, got {type(x).__name__}")
    if isinstance(x, pd.DataFrame):
        values = x.to_numpy()
    else:
        values = np.asarray(x)
    if values.dtype == object or not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
        try:
            values = values.astype(float)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must hold numbers, got an array of dtype {values.dtype}") from None
    values = values.astype(float, copy=False)
    if values.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_prompts, n_generators), got shape {values.shape}")
    if values.shape[0] == 0 or values.shape[1] == 0:
        raise ValueError(f"{name} must have at least one prompt and one generator, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        bad = np.argwhere(~np.isfinite(values))[:5].tolist()
        raise ValueError(
            f"{name} must be finite; found NaN/inf at (row, column) {bad}"
            f"{' ...' if (~np.isfinite(values)).sum() > 5 else ''}"
        )
    return values


def _as_costs(c: Any, n_generators: int | None = None, name: str = "normalized_costs") -> np.ndarray:
    """Normalised costs (K,), finite, in [0, 1] with a positive maximum."""
    if hasattr(c, "normalized_costs") and callable(c.normalized_costs):  # a GeneratorRegistry
        c = c.normalized_costs()
    if isinstance(c, (str, bytes)) or c is None:
        raise TypeError(f"{name} must be a 1-D array-like of numbers, got {type(c).__name__}")
    try:
        values = np.asarray(c, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must hold numbers, got {c!r}") from None
    if values.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n_generators,), got shape {values.shape}")
    if n_generators is not None and values.shape[0] != n_generators:
        raise ValueError(
            f"{name} has {values.shape[0]} entries but the quality matrices have {n_generators} generator columns"
        )
    if values.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} must be finite, got {values.tolist()}")
    if np.any(values < 0):
        raise ValueError(f"{name} must be >= 0, got {values.tolist()}")
    if values.max() <= 0:
        raise ValueError(f"{name} must have a positive maximum, got {values.tolist()}")
    if values.max() > 1 + 1e-9:
        raise ValueError(
            f"{name} must lie in [0, 1] (costs divided by the largest cost, as "
            f"GeneratorRegistry.normalized_costs() returns), got max {values.max():.6g}"
        )
    return values


def _as_penalties(lam: Any, name: str = "cost_penalty") -> tuple[np.ndarray, bool]:
    """Penalties as a 1-D float array and whether the input was a scalar."""
    if isinstance(lam, bool) or isinstance(lam, (str, bytes)) or lam is None:
        raise TypeError(f"{name} must be a non-negative number or 1-D array of them, got {lam!r}")
    try:
        arr = np.asarray(lam, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a non-negative number or 1-D array of them, got {lam!r}") from None
    scalar = arr.ndim == 0
    arr = np.atleast_1d(arr)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a scalar or 1-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr.tolist()[:10]}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0, got {arr[arr < 0].tolist()[:10]}")
    return arr, scalar


def _cost_order(c: np.ndarray) -> np.ndarray:
    """Column order cheapest first (stable: equal costs keep their column order)."""
    return np.argsort(c, kind="stable")


def _non_finite_message(Q: np.ndarray, name: str, generator_names: Sequence[str] | None = None) -> str:
    bad = np.argwhere(~np.isfinite(Q))
    label = (lambda k: repr(str(generator_names[k]))) if generator_names is not None else str
    cells = ", ".join(f"(prompt {i}, generator {label(k)}: {Q[i, k]})" for i, k in bad[:5].tolist())
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    return f"{name} must be finite; found NaN/inf at {cells}{more}"


def assign_generators(
    predicted_quality: Any, normalized_costs: Any, cost_penalty: float, *, generator_names: Sequence[str] | None = None
) -> np.ndarray:
    """Apply the routing rule a(i) = argmax_k q̂_k(x_i) − λ·c̃_k, ties to the cheaper generator.

    Parameters
    ----------
    predicted_quality : array-like of shape (n, K)
        Predicted (or true, for the oracle) quality of each generator for each prompt. It must
        be finite: a NaN or an infinity has no place in an argmax (``inf - inf`` is NaN), so it
        raises instead of silently routing to the cheapest generator.
    normalized_costs : array-like of shape (K,)
        c̃_k = c_k / max_j c_j.
    cost_penalty : float
        λ >= 0; ``math.inf`` is the limit of a growing λ: the cheapest generator, ties among
        equally cheap ones going to the best predicted.
    generator_names : sequence of str, optional
        Column names, used only to name the generators in error messages.

    Returns
    -------
    ndarray of int, shape (n,)
        Chosen generator position for each prompt. Utilities within ``1e-12 * max(1, |best|)``
        of the best are ties; among tied generators the cheapest wins (registry order among
        equal costs).

    Raises
    ------
    ValueError
        If ``predicted_quality`` holds NaN or an infinity (the message names the prompts and
        generators), or the shapes disagree.
    """
    Q = np.asarray(predicted_quality, dtype=float)
    c = np.asarray(normalized_costs, dtype=float)
    if Q.ndim != 2 or c.ndim != 1 or Q.shape[1] != c.shape[0]:
        raise ValueError(
            f"predicted_quality must have shape (n, {c.shape[0] if c.ndim == 1 else '?'}) to match "
            f"normalized_costs of shape {c.shape}, got {Q.shape}"
        )
    if not np.isfinite(Q).all():
        raise ValueError(_non_finite_message(Q, "predicted_quality", generator_names))
    lam = float(cost_penalty)
    if np.isinf(lam) and lam > 0:  # the limit λ -> inf: the cheapest generator, ties by predicted quality
        cheap = np.flatnonzero(c == c.min())
        return cheap[assign_generators(Q[:, cheap], c[cheap], 0.0)]
    order = np.argsort(c, kind="stable")
    q, cs = Q[:, order], c[order]
    u = q - lam * cs[None, :]
    rows = np.arange(len(q))
    b = u.argmax(axis=1)
    best = u[rows, b][:, None]
    # each generator's shortfall from the best, as the quality difference plus the cost
    # difference times λ: rounded this way, a cheaper generator's shortfall never grows with
    # λ, so no float rounding makes a larger penalty pick a more expensive generator
    shortfall = (q[rows, b][:, None] - q) - lam * (cs[b][:, None] - cs[None, :])
    tied = shortfall <= _TIE_RTOL * np.maximum(1.0, np.abs(best))
    return order[tied.argmax(axis=1)]


# --------------------------------------------------------------------------------------
# exact breakpoints
# --------------------------------------------------------------------------------------
def route_with_penalty(
    pred_quality: Any, normalized_costs: Any, cost_penalty: float | Sequence[float] | np.ndarray
) -> np.ndarray:
    """Assign each prompt to ``argmax_k q̂_k - λ c̃_k``; ties go to the cheaper generator.

    The rule is :func:`assign_generators`, the one the router applies (utilities within a
    relative 1e-12 of the best count as ties), vectorised over penalties.

    Parameters
    ----------
    pred_quality : array-like of shape (n_prompts, n_generators)
        Predicted (or true, for the oracle) quality of each generator for each prompt.
    normalized_costs : array-like of shape (n_generators,) or GeneratorRegistry
        Costs divided by the largest cost, in the column order of ``pred_quality``.
    cost_penalty : float or array-like of shape (n_lambdas,)
        The penalty λ >= 0. An array routes once per value (vectorised).

    Returns
    -------
    ndarray of int
        Column index per prompt: shape ``(n_prompts,)`` for a scalar λ, ``(n_lambdas,
        n_prompts)`` for an array. Among tied generators the cheapest wins; among equally
        cheap ones, the lower column index.

    Examples
    --------
    >>> route_with_penalty([[1.0, 2.0], [1.0, 1.0]], [0.5, 1.0], 0.0)
    array([1, 0])
    >>> route_with_penalty([[1.0, 2.0]], [0.5, 1.0], [0.0, 2.0, 3.0])
    array([[1],
           [0],
           [0]])
    """
    q = _as_matrix(pred_quality, "pred_quality")
    c = _as_costs(normalized_costs, q.shape[1])
    lam, scalar = _as_penalties(cost_penalty)
    out = np.stack([assign_generators(q, c, value) for value in lam]) if lam.size else np.empty((0, len(q)), np.intp)
    return out[0] if scalar else out


def _envelope_events(q: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Exact switch points of each prompt's routing as λ grows from 0 to infinity.

    Returns the routing at λ = 0 and the events ``(lam, row, from, to)``: at ``lam`` prompt
    ``row`` moves from column ``from`` to the cheaper column ``to`` (the routing *at* ``lam``
    already uses ``to``, following the ties-to-cheaper rule). Each prompt's choice only ever
    moves to strictly cheaper generators, so there are at most ``K - 1`` events per prompt.
    """
    n, _ = q.shape
    order = _cost_order(c)
    cur = route_with_penalty(q, c, 0.0)
    start = cur.copy()
    lam = np.zeros(n)
    rows_all = np.arange(n)
    active = np.ones(n, dtype=bool)
    ev_lam, ev_row, ev_from, ev_to = [], [], [], []
    for _ in range(q.shape[1]):
        rows = rows_all[active]
        if rows.size == 0:
            break
        cc = c[cur[rows]]
        dc = cc[:, None] - c[None, :]  # > 0 for strictly cheaper generators
        dq = q[rows, cur[rows]][:, None] - q[rows]
        cheaper = dc > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = np.where(cheaper, dq / np.where(cheaper, dc, 1.0), np.inf)
        cross = np.maximum(cross, lam[rows, None])  # guard against rounding below current λ
        nxt = cross.min(axis=1)
        finite = np.isfinite(nxt)
        rows, cross, nxt = rows[finite], cross[finite], nxt[finite]
        active[rows_all[active][~finite]] = False
        if rows.size == 0:
            break
        # among generators crossing at the same λ, the cheapest has the best score just above it
        tied = (cross == nxt[:, None])[:, order]
        to = order[np.argmax(tied, axis=1)]
        ev_lam.append(nxt)
        ev_row.append(rows)
        ev_from.append(cur[rows].copy())
        ev_to.append(to)
        cur[rows] = to
        lam[rows] = nxt
    if ev_lam:
        events = tuple(np.concatenate(x) for x in (ev_lam, ev_row, ev_from, ev_to))
    else:
        events = (np.zeros(0), np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0, np.intp))
    return start, events


def _grouped_events(q: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
    """Switch events sorted by λ, grouped into distinct breakpoints.

    Returns ``(start, events, group_end, lambdas)``: the routing at λ = 0, the events sorted by
    λ, the index of the last event of each breakpoint group, and one representative penalty
    per distinct routing -- 0 for the start, then for each group the midpoint to the next
    group (the last group: just above it). At a representative λ the routing is unambiguous,
    far from any float tie, and equals the routing after that group's switches.
    """
    start, events = _envelope_events(q, c)
    lam = events[0]
    if lam.size == 0:
        return start, events, np.zeros(0, np.intp), np.zeros(1)
    order = np.argsort(lam, kind="stable")
    events = tuple(e[order] for e in events)
    lam = events[0]
    gap = np.diff(lam) > _GROUP_RTOL * lam[1:] + 1e-15
    group_end = np.flatnonzero(np.r_[gap, True])
    group_start = np.r_[0, group_end[:-1] + 1]
    first, last = lam[group_start], lam[group_end]
    top = last[-1] * (1 + 1e-8) + 1e-12
    reps = np.r_[0.0, (last[:-1] + first[1:]) / 2, top]
    return start, events, group_end, reps


def lambda_grid(pred_quality: Any, normalized_costs: Any, n: int | None = 50) -> np.ndarray:
    """A λ grid for a deferral curve: 0, ..., and a λ that sends every prompt to the cheapest.

    The routing changes only at *breakpoints*: values of λ where, for some prompt, the best
    generator's score ``q̂_k - λ c̃_k`` crosses a cheaper one's. They are computed exactly, per
    prompt, from the pairwise crossing points ``(q̂_j - q̂_k) / (c̃_j - c̃_k)`` along the prompt's
    upper envelope (breakpoints within a relative 1e-9 of each other count as one).

    Parameters
    ----------
    pred_quality : array-like of shape (n_prompts, n_generators)
    normalized_costs : array-like of shape (n_generators,) or GeneratorRegistry
    n : int or None, default=50
        Number of grid points (at least 2). ``None`` gives the *exact* grid: 0, the midpoint of
        every pair of consecutive breakpoints and a value just above the largest; it visits
        every distinct routing exactly once, and at each of its values the routing is far from
        any floating-point tie. An int ``n`` takes ``n`` points of the exact grid evenly spaced
        by position (always its first and last), so that about as many breakpoints separate
        consecutive points; fewer when the exact grid is shorter.

    Returns
    -------
    ndarray of shape (n_points,)
        Sorted, distinct, starting at 0. The last value ``λ_max`` is slightly larger than the
        largest breakpoint, so at ``λ_max`` every prompt goes to the cheapest generator (the
        best of them when several share the lowest cost). When no prompt ever switches the grid
        is ``[0.0]``.

    Examples
    --------
    >>> lambda_grid([[1.0, 2.0], [1.0, 1.5]], [0.5, 1.0], n=None)
    array([0.        , 1.5       , 2.00000002])
    """
    q = _as_matrix(pred_quality, "pred_quality")
    c = _as_costs(normalized_costs, q.shape[1])
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 2:
            raise ValueError(f"n must be an integer >= 2 or None (exact grid), got {n!r}")
    reps = _grouped_events(q, c)[3]
    if n is None or reps.size <= n:
        return reps
    idx = np.unique(np.round(np.linspace(0, reps.size - 1, int(n))).astype(np.intp))
    return reps[idx]


# --------------------------------------------------------------------------------------
# budgets
# --------------------------------------------------------------------------------------
def meets_budget(mean_cost: float, budget: float) -> bool:
    """Whether a mean normalised cost is within ``budget`` (up to float rounding)."""
    return mean_cost <= budget + 1e-12 * max(1.0, budget)


def penalty_for_budget(
    predicted_quality: Any, normalized_costs: Any, budget: float, floor: float = 0.0, *, stacklevel: int = 2
) -> float:
    """Smallest λ >= ``floor`` whose routing has mean normalised cost <= ``budget``.

    The mean cost of the routing is a non-increasing step function of λ that changes only at
    the breakpoints of :func:`lambda_grid`. They are computed exactly, and the mean cost after
    each one is accumulated from the prompts that switch there, so the answer is the first
    breakpoint (above ``floor``) after which the batch meets the budget -- no search, no
    tolerance. At that λ the prompts switching there are tied and go to the cheaper generator,
    so the returned λ is on the feasible side (checked by routing at it; should float rounding
    disagree, the midpoint to the next breakpoint is used).

    A budget below the cheapest generator's normalised cost cannot be met: every prompt then
    goes to the cheapest generator and a :class:`BudgetWarning` is issued (``stacklevel`` is
    passed to :func:`warnings.warn`).

    Parameters
    ----------
    predicted_quality : array-like of shape (n, K)
    normalized_costs : array-like of shape (K,)
    budget : float
        Target mean normalised cost, >= 0.
    floor : float, default=0.0
        The least penalty to return (the router's own ``cost_penalty``).

    Returns
    -------
    float
    """
    c = np.asarray(normalized_costs, dtype=float)
    Q = np.asarray(predicted_quality, dtype=float)
    budget = check_penalty(budget, "budget")
    floor = check_penalty(floor, "floor")
    if Q.ndim != 2 or c.ndim != 1 or Q.shape[1] != c.shape[0]:
        raise ValueError(f"predicted_quality must have shape (n, {c.shape[0]}), got {Q.shape}")
    n = len(Q)
    if n == 0:
        return floor

    def mean_cost(lam: float) -> float:
        return float(c[assign_generators(Q, c, lam)].mean())

    if meets_budget(mean_cost(floor), budget):
        return floor
    start, events, group_end, reps = _grouped_events(Q, c)
    if not meets_budget(c.min(), budget):
        warnings.warn(
            f"budget {budget:.6g} is below the cheapest generator's normalised cost {c.min():.6g}; "
            "every prompt is routed to the cheapest generator",
            BudgetWarning,
            stacklevel=stacklevel + 1,
        )
        return max(floor, float(reps[-1]))
    lam, _, src, dst = events
    total = c[start].sum() + np.cumsum(c[dst] - c[src])
    feasible = np.flatnonzero((lam[group_end] > floor) & (total[group_end] <= n * budget * (1 + 1e-12) + 1e-12 * n))
    for g in feasible[:2]:  # the first feasible breakpoint; its successor only if rounding disagrees
        for candidate in (float(lam[group_end[g]]), float(reps[g + 1])):
            if meets_budget(mean_cost(candidate), budget):
                return candidate
    return max(floor, float(reps[-1]))  # every prompt at its cheapest generator
