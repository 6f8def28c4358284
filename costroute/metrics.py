"""Scorers for choosing a router's settings with a fixed quality/cost trade-off."""

from __future__ import annotations

import numpy as np

from ._checks import check_nonnegative
from .routing import meets_budget


def routing_outcome(estimator, X, y) -> tuple[float, float]:
    """Mean true quality and mean normalised cost of ``estimator``'s own routing of ``X``.

    ``estimator`` is a fitted :class:`~costroute.CostAwareRouter` or a fitted
    :class:`~sklearn.pipeline.Pipeline` whose last step is one (the earlier steps transform
    ``X`` first). ``y`` is the true quality matrix of ``X``.
    """
    if hasattr(estimator, "steps"):  # a Pipeline ending in the router
        for _, step in estimator.steps[:-1]:
            if step is not None and step != "passthrough":
                X = step.transform(X)
        estimator = estimator.steps[-1][1]
    if not hasattr(estimator, "routing_outcome"):
        raise TypeError(
            f"routing scorers need a CostAwareRouter or a Pipeline ending in one, got {type(estimator).__name__}"
        )
    return estimator.routing_outcome(X, y)


class RoutingScorer:
    """Scorer ``(estimator, X, y) -> float`` with a fixed trade-off; see :func:`make_routing_scorer`.

    A module-level class (not a closure) so that a fitted ``GridSearchCV`` that keeps it in
    ``scorer_`` can be pickled.
    """

    def __init__(self, cost_weight: float | None = None, budget: float | None = None):
        if (cost_weight is None) == (budget is None):
            raise ValueError("give exactly one of cost_weight or budget")
        self.cost_weight = None if cost_weight is None else check_nonnegative(cost_weight, "cost_weight")
        self.budget = None if budget is None else check_nonnegative(budget, "budget")

    def __call__(self, estimator, X, y) -> float:
        quality, cost = routing_outcome(estimator, X, y)
        if self.cost_weight is not None:
            return quality - self.cost_weight * cost
        return quality if meets_budget(cost, self.budget) else -np.inf

    def __repr__(self) -> str:
        if self.cost_weight is not None:
            return f"make_routing_scorer(cost_weight={self.cost_weight})"
        return f"make_routing_scorer(budget={self.budget})"


def make_routing_scorer(cost_weight: float | None = None, budget: float | None = None) -> RoutingScorer:
    """A scorer ``(estimator, X, y) -> float`` with a trade-off fixed outside the estimator.

    Use it to tune ``cost_penalty`` (or the features and quality model) with
    :class:`~sklearn.model_selection.GridSearchCV`. The estimator's own
    :meth:`~costroute.CostAwareRouter.score` subtracts ``cost_penalty`` x cost, so it moves
    with the very parameter being tuned and rewards a penalty of 0; a scorer must judge
    every candidate by the same yardstick. The estimator may be a router or a
    :class:`~sklearn.pipeline.Pipeline` ending in one.

    Give exactly one of:

    cost_weight : float >= 0
        Score = mean true quality − ``cost_weight`` x mean normalised cost of the routing
        the estimator makes with its own settings (the utility a service actually values).
    budget : float >= 0
        Score = mean true quality of the estimator's routing if its mean normalised cost is
        <= ``budget``, else ``-inf`` (the constrained problem max E[q] s.t. E[c] <= B).
        A candidate must meet the budget in every fold to rank; ``GridSearchCV`` warns
        when some scores are not finite.

    Returns
    -------
    RoutingScorer
        Callable ``scorer(estimator, X, y)``, usable as ``scoring=`` in scikit-learn model
        selection, and picklable.

    Examples
    --------
    >>> from costroute.metrics import make_routing_scorer
    >>> make_routing_scorer(cost_weight=0.5)
    make_routing_scorer(cost_weight=0.5)
    """
    return RoutingScorer(cost_weight=cost_weight, budget=budget)
