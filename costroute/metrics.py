"""Scorers for choosing a router's settings with a fixed quality/cost trade-off."""

from __future__ import annotations

import numpy as np

from .router import _check_penalty


def routing_outcome(router, X, y) -> tuple[float, float]:
    """Mean true quality and mean normalised cost of ``router``'s own routing of ``X``.

    ``y`` is the true quality matrix of ``X`` (same rules as in ``fit``).
    """
    plan = router.route(X)
    Y = router._check_y(y, len(plan))
    return float(Y[np.arange(len(plan)), plan.assignments].mean()), plan.mean_normalized_cost


def make_routing_scorer(cost_weight: float | None = None, budget: float | None = None):
    """A scorer ``(estimator, X, y) -> float`` with a trade-off fixed outside the estimator.

    Use it to tune ``cost_penalty`` (or the features and quality model) with
    :class:`~sklearn.model_selection.GridSearchCV`. The estimator's own
    :meth:`~costroute.CostAwareRouter.score` subtracts ``cost_penalty`` x cost, so it moves
    with the very parameter being tuned and rewards a penalty of 0; a scorer must judge
    every candidate by the same yardstick.

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
    callable
        ``scorer(estimator, X, y)``, usable as ``scoring=`` in scikit-learn model selection.

    Examples
    --------
    >>> from costroute.metrics import make_routing_scorer
    >>> scorer = make_routing_scorer(cost_weight=0.5)
    """
    if (cost_weight is None) == (budget is None):
        raise ValueError("give exactly one of cost_weight or budget")
    if cost_weight is not None:
        weight = _check_penalty(cost_weight, "cost_weight")

        def cost_weighted_quality(estimator, X, y) -> float:
            quality, cost = routing_outcome(estimator, X, y)
            return quality - weight * cost

        cost_weighted_quality.__doc__ = f"Mean true quality − {weight} x mean normalised cost."
        return cost_weighted_quality

    limit = _check_penalty(budget, "budget")

    def quality_within_budget(estimator, X, y) -> float:
        quality, cost = routing_outcome(estimator, X, y)
        return quality if cost <= limit + 1e-12 else -np.inf

    quality_within_budget.__doc__ = f"Mean true quality if mean normalised cost <= {limit}, else -inf."
    return quality_within_budget
