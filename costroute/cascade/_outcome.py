"""What cascades report per batch: the summary both cascade outcomes share."""

from __future__ import annotations

import numpy as np


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
