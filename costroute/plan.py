"""RoutingPlan: which generator makes which prompt's image, at what expected quality and cost."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .execution import GenerationResult, generate_plan
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

    def generate(
        self, seed: int = 0, batch_size: int = 8, progress: bool = True, on_error: str = "fallback"
    ) -> GenerationResult:
        """Make the image of every prompt with its assigned generator.

        Prompts are grouped by generator (registry order) and run in batches of
        ``batch_size``, loading each pipeline once (the engine is
        :func:`costroute.execution.generate_plan`). Every image has its own seed,
        :func:`~costroute.execution.image_seed` of ``(seed, prompt index)``, used through
        its own CPU ``torch.Generator``: a prompt's noise is the same whatever the batch
        size, the other prompts or the device. Its pixels are then the same up to the
        floating-point effect of batching on the kernels: identical in float64, within one
        intensity level (in a small share of pixels) in float32 on CPU and float16 on CUDA;
        the same call repeated gives identical pixels.

        A batch that runs out of memory (CUDA out-of-memory included) is retried with half
        the batch size, down to 1, and the smaller size is kept for the rest of that
        generator's prompts; a batch that raises anything else is split in halves until the
        failing prompts are isolated, then batching resumes at the earlier size. An item a
        generator returns that is not an image (an object with a ``save`` method, such as
        a PIL image; see :func:`~costroute.execution.is_image`) -- ``None`` from an API's
        content filter, say -- fails its prompt, which is not charged. A generator whose
        pipeline fails to load is not tried again in the run (``result.failed_loads``).
        Pipelines stay loaded after the run, within the pipeline cache's ``max_loaded``
        bound. A prompt that still fails is, with ``on_error="fallback"``, moved to its
        next generator by this plan's utility (:meth:`utilities`, highest first,
        generators already tried skipped) and recorded in ``result.fallbacks``; with
        ``on_error="raise"`` generation stops after the generator call that failed it (the
        images that call returned are kept). Either way an image is never
        silently missing or reordered: when a prompt cannot be made a
        :class:`~costroute.execution.GenerationError` is raised whose ``.result`` holds the
        images made so far and says which prompts failed (``result.failed``) and which
        were not attempted (``result.not_attempted``).

        Interrupting the run (Ctrl-C) keeps what was made: the ``KeyboardInterrupt``
        propagates with a ``.result`` attribute holding the partial
        :class:`~costroute.execution.GenerationResult` (the same holds for any other
        exception that escapes once generation has started), and the progress bar is
        closed cleanly.

        Parameters
        ----------
        seed : int, default=0
            Seed of the run (>= 0).
        batch_size : int, default=8
            Largest batch sent to a generator.
        progress : bool, default=True
            Show a tqdm progress bar over images on stderr (diffusers' own per-step and
            loading bars stay off).
        on_error : {"fallback", "raise"}, default="fallback"
            What to do with a prompt that fails at batch size 1 (or gets a non-image).

        Returns
        -------
        GenerationResult
            Images in prompt order, with per-image generator, status, seed, cost and wall
            time (``result.to_frame()``) and the list of fallbacks.

        Raises
        ------
        TypeError
            If a generator that prompts are routed to is a plain
            :class:`~costroute.generators.GeneratorSpec` (no backend to make images).
        GenerationError
            If some prompt could not be made (see above).
        """
        return generate_plan(self, seed=seed, batch_size=batch_size, progress=progress, on_error=on_error)

    def __len__(self) -> int:
        return len(self.prompts)

    def __repr__(self) -> str:
        used = ", ".join(f"{name}: {idx.size}" for name, idx in self.groups().items())
        return (
            f"RoutingPlan(n_prompts={len(self)}, cost_penalty={self.cost_penalty:.4g}, "
            f"mean_normalized_cost={self.mean_normalized_cost:.4f}, routes={{{used}}})"
        )
