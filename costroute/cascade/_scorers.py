"""One scorer or several: their names, their scores as one array, their costs.

A :class:`~costroute.CascadeRouter` takes ``scorer=`` as one scorer, a list, or a dict name ->
scorer, and ``fit``/``simulate`` take ``scores=`` as one (n, K) matrix, a list of them, or a dict
name -> matrix (in the scorers' order or by name). Scores travel as an (n, K, M) array; the
posterior and the policy index them as cells ``s K + k``.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..routing import check_penalty


def scorer_list(scorer: Any) -> tuple[list[str] | None, list[Any]]:
    """``(names or None, scorers)`` from ``None``, one scorer, a list or a dict."""
    if scorer is None:
        return None, []
    if isinstance(scorer, Mapping):
        if not scorer:
            raise ValueError("scorer must not be an empty dict")
        return [str(k) for k in scorer], list(scorer.values())
    if isinstance(scorer, (list, tuple)):
        if not scorer:
            raise ValueError("scorer must not be an empty list")
        names = [str(getattr(s, "name", f"scorer{i}")) for i, s in enumerate(scorer)]
        if len(set(names)) < len(names):
            names = [f"{n}#{i}" for i, n in enumerate(names)]
        return names, list(scorer)
    return [str(getattr(scorer, "name", "scorer"))], [scorer]


def score_matrices(scores: Any, names: list[str] | None) -> tuple[list[str] | None, list[Any]]:
    """``(names or None, matrices)`` from one matrix, a list or a dict of them.

    A dict is put in the order of ``names`` (the scorers') when they are known; its keys must
    then be the same names.
    """
    if isinstance(scores, Mapping):
        keys = [str(k) for k in scores]
        if not keys:
            raise ValueError("scores must not be an empty dict")
        if names is not None:
            if sorted(keys) != sorted(names):
                raise ValueError(f"scores has keys {keys} but the scorers are {names}; give one matrix per scorer")
            lookup = {str(k): v for k, v in scores.items()}
            return list(names), [lookup[n] for n in names]
        return keys, list(scores.values())
    if isinstance(scores, (list, tuple)):
        if not scores:
            raise ValueError("scores must not be an empty list")
        return None, list(scores)
    array = np.asarray(scores) if not hasattr(scores, "columns") else None
    if array is not None and array.ndim == 3:
        return None, [array[:, :, s] for s in range(array.shape[2])]
    return None, [scores]


def scoring_costs(scoring_cost: Any, scorers: list[Any], names: list[str], unit: str) -> np.ndarray:
    """Scoring cost per scorer, in the generators' unit ``unit``.

    ``scoring_cost``: ``None`` (each scorer's own cost; 0 without scorers), a number (one
    scorer), or a list / dict name -> cost of one per scorer.
    """
    M = len(names)
    if scoring_cost is not None:
        if isinstance(scoring_cost, Mapping):
            missing = [n for n in names if n not in scoring_cost]
            if missing or len(scoring_cost) != M:
                raise ValueError(f"scoring_cost has keys {list(scoring_cost)} but the scorers are {names}")
            values = [scoring_cost[n] for n in names]
        elif isinstance(scoring_cost, Sequence) and not isinstance(scoring_cost, str):
            values = list(scoring_cost)
        elif isinstance(scoring_cost, numbers.Real) and M == 1:
            values = [scoring_cost]
        else:
            raise ValueError(
                f"scoring_cost must be a number for one scorer, or one per scorer (a list or a dict) for {M}; "
                f"got {scoring_cost!r}"
            )
        if len(values) != M:
            raise ValueError(f"scoring_cost has {len(values)} values for {M} scorers {names}")
        return np.array([check_penalty(v, "scoring_cost") for v in values], dtype=float)
    if not scorers:
        return np.zeros(M)
    return np.array([_own_cost(s, unit) for s in scorers], dtype=float)


def _own_cost(scorer: Any, unit: str) -> float:
    if hasattr(scorer, "cost_in"):  # a costroute Scorer converts its own cost
        return check_penalty(scorer.cost_in(unit), "scorer.cost")
    scorer_unit = getattr(scorer, "cost_unit", None)
    if scorer_unit is not None and scorer_unit != unit:
        raise ValueError(
            f"scorer.cost_unit is {scorer_unit!r} but the generators' costs are in {unit!r}; "
            "pass scoring_cost in the generators' unit"
        )
    return check_penalty(scorer.cost, "scorer.cost")
