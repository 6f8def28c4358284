"""What cascades report per batch: the summary both cascade outcomes share, and the cascade's own."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


class OutcomeSummary:
    """``mean_cost`` and ``mean_quality`` of an outcome with ``cost`` and ``quality`` arrays (n,)."""

    cost: np.ndarray
    quality: np.ndarray | None

    @property
    def mean_cost(self) -> float:
        """Mean total normalised cost per prompt (0 for an empty batch)."""
        return float(self.cost.mean()) if self.cost.size else 0.0

    @property
    def mean_quality(self) -> float:
        """Mean true quality of the returned images; an error when no true quality was given."""
        if self.quality is None:
            raise ValueError("no true quality was given to simulate(); mean_quality is unknown")
        return float(self.quality.mean()) if self.quality.size else float("nan")


@dataclass(frozen=True)
class CascadeOutcome(OutcomeSummary):
    """What a cascade did for each prompt of a batch.

    Attributes
    ----------
    generator_names : list of str
        Column order of the generators.
    order : list of tuple of str
        Generators tried for each prompt, in order (the first is where the policy started:
        the router's choice under ``policy="myopic"``, the highest reservation value under
        ``policy="index"``).
    returned : ndarray of object (n,)
        Name of the generator whose image is returned.
    returned_index : ndarray of int (n,)
    scored : ndarray of bool (n, K)
        Which images were scored (by any scorer).
    cost : ndarray (n,)
        Total normalised cost per prompt: every image generated plus every scoring.
    quality : ndarray (n,) or None
        True quality of the returned image, when the true quality was given.
    cost_penalty : float
        The λ used. ``math.inf`` when no finite λ meets the budget (a budget below the
        cheapest generator's normalised cost): every prompt then went to the cheapest
        generator, unscored, the limit of the policy as λ grows (a
        :class:`~costroute.BudgetWarning` says so).
    budget : float or None
    scorer_names : list of str
        The scorers, in the order of ``scored_by``'s last axis.
    scored_by : ndarray of bool (n, K, M)
        Which scorer ran on which image.
    scoring_cost : ndarray (n,)
        The part of ``cost`` spent on scoring.
    """

    generator_names: list
    order: list
    returned: np.ndarray
    returned_index: np.ndarray
    scored: np.ndarray
    cost: np.ndarray
    quality: np.ndarray | None
    cost_penalty: float
    budget: float | None
    scorer_names: list = field(default_factory=lambda: ["scorer"])
    scored_by: np.ndarray | None = None
    scoring_cost: np.ndarray | None = None

    @property
    def n_images(self) -> np.ndarray:
        return np.array([len(o) for o in self.order])

    @property
    def n_scores(self) -> np.ndarray:
        """Scores computed per prompt, every scorer included."""
        by = self.scored[:, :, None] if self.scored_by is None else self.scored_by
        return by.sum(axis=(1, 2))

    def to_frame(self) -> pd.DataFrame:
        """One row per prompt: generators tried, returned, images, scores (per scorer), cost (and quality)."""
        frame = pd.DataFrame(
            {
                "tried": [" > ".join(o) for o in self.order],
                "returned": self.returned,
                "n_images": self.n_images,
                "n_scores": self.n_scores,
                "cost": self.cost,
            }
        )
        if self.scored_by is not None and len(self.scorer_names) > 1:
            for s, name in enumerate(self.scorer_names):
                frame[f"n_scores_{name}"] = self.scored_by[:, :, s].sum(axis=1)
        if self.quality is not None:
            frame["quality"] = self.quality
        return frame

    def __len__(self) -> int:
        return len(self.order)
