"""RoutingPlan: which generator makes which prompt's image, at what expected quality and cost."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .generators import GeneratorRegistry


class RoutingPlan:
    """The outcome of :meth:`CostAwareRouter.route <costroute.CostAwareRouter.route>`.

    Parameters
    ----------
    prompts : sequence
        The routed prompts, in input order.
    assignments : array-like of int, shape (n,)
        Position in ``generators`` of the generator chosen for each prompt.
    generators : GeneratorRegistry
        The generators routed over.
    predicted_quality : ndarray, shape (n, K)
        Predicted quality of every generator for every prompt, in registry order.
    cost_penalty : float
        The λ the routing used (after any budget search).
    budget : float or None, default=None
        The mean normalised cost target the routing was asked to meet, if any.

    Attributes
    ----------
    generator_names : ndarray of str, shape (n,)
        The chosen generator of each prompt.
    expected_quality : ndarray, shape (n,)
        Predicted quality of the chosen generator.
    costs : ndarray, shape (n,)
        Cost of each prompt's image, in ``generators.cost_unit``.
    normalized_costs : ndarray, shape (n,)
        The same costs divided by the most expensive generator's cost.
    """

    def __init__(
        self,
        prompts: Sequence,
        assignments,
        generators: GeneratorRegistry,
        predicted_quality,
        cost_penalty: float,
        budget: float | None = None,
    ):
        self.prompts = list(prompts)
        self.assignments = np.asarray(assignments, dtype=np.intp)
        self.generators = generators
        self.predicted_quality = np.asarray(predicted_quality, dtype=float)
        n, k = len(self.prompts), len(generators)
        if self.assignments.shape != (n,):
            raise ValueError(f"assignments must have shape ({n},), got {self.assignments.shape}")
        if self.predicted_quality.shape != (n, k):
            raise ValueError(f"predicted_quality must have shape ({n}, {k}), got {self.predicted_quality.shape}")
        if n and (self.assignments.min() < 0 or self.assignments.max() >= k):
            raise ValueError(f"assignments must be generator positions in [0, {k}), got {self.assignments}")
        self.cost_penalty = float(cost_penalty)
        self.budget = budget

    @property
    def generator_names(self) -> np.ndarray:
        return np.asarray(self.generators.names, dtype=object)[self.assignments]

    @property
    def expected_quality(self) -> np.ndarray:
        return self.predicted_quality[np.arange(len(self.prompts)), self.assignments]

    @property
    def costs(self) -> np.ndarray:
        return self.generators.costs[self.assignments]

    @property
    def normalized_costs(self) -> np.ndarray:
        return self.generators.normalized_costs()[self.assignments]

    @property
    def total_cost(self) -> float:
        """Sum of per-image costs, in ``generators.cost_unit``."""
        return float(self.costs.sum())

    @property
    def mean_normalized_cost(self) -> float:
        """Mean of c̃ over the prompts: the x-axis of a deferral curve."""
        return float(self.normalized_costs.mean())

    @property
    def mean_expected_quality(self) -> float:
        return float(self.expected_quality.mean())

    def utilities(self) -> np.ndarray:
        """The router's utility q̂_k(x) − λ·c̃_k for every prompt and generator, shape (n, K)."""
        return self.predicted_quality - self.cost_penalty * self.generators.normalized_costs()[None, :]

    def groups(self) -> dict[str, np.ndarray]:
        """Prompt positions per generator, in registry order; generators with no prompt are left out."""
        out = {}
        for k, name in enumerate(self.generators.names):
            idx = np.flatnonzero(self.assignments == k)
            if idx.size:
                out[name] = idx
        return out

    def summary(self) -> pd.DataFrame:
        """One row per generator (all of them, registry order): count, share, cost, expected quality."""
        names = self.generators.names
        counts = np.bincount(self.assignments, minlength=len(names))
        n = max(len(self.prompts), 1)
        unit_costs = self.generators.costs
        rows = []
        for k, name in enumerate(names):
            mask = self.assignments == k
            rows.append(
                {
                    "generator": name,
                    "count": int(counts[k]),
                    "share": counts[k] / n,
                    "cost_per_image": unit_costs[k],
                    "cost": unit_costs[k] * counts[k],
                    "mean_expected_quality": float(self.expected_quality[mask].mean()) if mask.any() else np.nan,
                }
            )
        return pd.DataFrame(rows).set_index("generator")

    def to_frame(self) -> pd.DataFrame:
        """One row per prompt, in input order."""
        return pd.DataFrame(
            {
                "prompt": self.prompts,
                "generator": self.generator_names,
                "expected_quality": self.expected_quality,
                "cost": self.costs,
                "normalized_cost": self.normalized_costs,
            }
        )

    def __len__(self) -> int:
        return len(self.prompts)

    def __repr__(self) -> str:
        used = ", ".join(f"{name}: {idx.size}" for name, idx in self.groups().items())
        return (
            f"RoutingPlan(n_prompts={len(self)}, cost_penalty={self.cost_penalty:.4g}, "
            f"mean_normalized_cost={self.mean_normalized_cost:.4f}, routes={{{used}}})"
        )
