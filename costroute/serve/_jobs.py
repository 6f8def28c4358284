"""What travels between the endpoints and the worker: jobs in, per-image outcomes out.

An endpoint validates a request and turns it into an :class:`ImageJob` or a
:class:`RouteJob`; the batcher hands a batch of jobs to the worker thread, which answers each
with an :class:`ImageJobResult` / :class:`RouteJobResult` or an
:class:`~costroute.serve._errors.APIError`. Nothing here touches a model or the network.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

__all__ = ["Candidate", "ImageJob", "ImageJobResult", "ServedImage", "RouteDecision", "RouteJob", "RouteJobResult"]


@dataclasses.dataclass
class ImageJob:
    """Make ``n`` images of ``prompt``: routed when ``model`` is ``None``, else with that generator.

    Image ``j`` is seeded from ``(seed, j)``: :func:`~costroute.execution.image_seed` for a
    router, :func:`~costroute.execution.candidate_seed` with each generator for a cascade, the
    seeds of ``generate`` on ``[prompt] * n`` with run seed ``seed``. With ``candidates``,
    each image keeps every candidate made for it (:class:`Candidate`), pixels included.
    """

    prompt: str
    n: int
    model: str | None
    seed: int
    cost_penalty: float | None = None
    candidates: bool = False

    @property
    def size(self) -> int:
        """Images this job asks for (what it weighs in a batch)."""
        return self.n


@dataclasses.dataclass
class RouteJob:
    """Decide, without generating, which generator each of ``prompts`` would go to."""

    prompts: list[str]
    cost_penalty: float | None = None

    @property
    def size(self) -> int:
        return 1


def _number(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


@dataclasses.dataclass
class Candidate:
    """One image made for a served image: the one returned, or another a cascade made and scored.

    ``scores`` maps a scorer's name to this image's score (only the scorers that scored it);
    ``normalized_cost`` is its generation plus those scorings, divided by the dearest
    generator's cost, so that the candidates of an image add up to the image's own
    ``normalized_cost``; ``cost`` is the same in the generators' unit.
    """

    generator: str
    image: Any
    seed: int | None
    scores: dict[str, float]
    normalized_cost: float
    seconds: float
    returned: bool
    cost: float = math.nan

    def extension(self, b64_json: str, cost_unit: str) -> dict[str, Any]:
        """The candidate in the response (``costroute.candidates``), its PNG given as ``b64_json``."""
        return {
            "generator": self.generator,
            "b64_json": b64_json,
            "returned": self.returned,
            "seed": self.seed,
            "scores": {s: float(v) for s, v in self.scores.items()},
            "cost": _number(self.cost),
            "cost_unit": cost_unit,
            "normalized_cost": float(self.normalized_cost),
            "seconds": _number(self.seconds),
        }


@dataclasses.dataclass
class ServedImage:
    """One image of an :class:`ImageJob`: the image (or why there is none) and what it took.

    ``scores`` maps a scorer's name to ``{generator: score}`` for every image of this prompt
    it scored (a cascade's other candidates included); ``cost`` is in the generators' unit,
    ``normalized_cost`` divided by the most expensive generator's cost, both counting every
    image made for it and every scoring. ``candidates`` holds every image made for it (the
    returned one included, in the order made) when its job asked for them, else ``None``.
    """

    index: int
    image: Any = None
    generator: str | None = None
    tried: list[str] = dataclasses.field(default_factory=list)
    fallbacks: list[dict[str, str]] = dataclasses.field(default_factory=list)
    routed: bool = True
    explored: bool = False
    guarded: bool = False
    predicted_quality: float = math.nan
    scores: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    cost: float = 0.0
    normalized_cost: float = 0.0
    seconds: float = 0.0
    seed: int | None = None
    cost_penalty: float = math.nan
    error: str | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    candidates: list[Candidate] | None = None

    def extension(self, cost_unit: str) -> dict[str, Any]:
        """The image's ``costroute`` object in the response (without ``candidates``, which the endpoint encodes)."""
        return {
            "generator": self.generator,
            "generators_tried": list(self.tried),
            "routed": self.routed,
            "explored": self.explored,
            "budget_guard": self.guarded,
            "fallbacks": list(self.fallbacks),
            "predicted_quality": _number(self.predicted_quality),
            "scores": {s: {g: float(v) for g, v in by.items()} for s, by in self.scores.items()},
            "cost": float(self.cost),
            "cost_unit": cost_unit,
            "normalized_cost": float(self.normalized_cost),
            "seconds": float(self.seconds),
            "seed": self.seed,
            "cost_penalty": _number(self.cost_penalty),
            "warnings": list(self.warnings),
        }


@dataclasses.dataclass
class ImageJobResult:
    """The images of an :class:`ImageJob`, in order (failed ones carry ``error`` and no image)."""

    images: list[ServedImage]

    @property
    def made(self) -> list[ServedImage]:
        return [im for im in self.images if im.image is not None]


@dataclasses.dataclass
class RouteDecision:
    """Where one prompt goes: its generator, predicted quality, cost, the λ used and what the budget window was charged.

    ``charged`` is the normalised cost charged to the budget window for the decision (``None``
    without a budget): the generator's cost plus scoring for a router, the expected cost for a
    cascade, or the cheapest generator's when the guard redirected it.
    """

    prompt: str
    generator: str
    predicted_quality: float
    cost: float
    normalized_cost: float
    cost_penalty: float
    budget_guard: bool = False
    charged: float | None = None


@dataclasses.dataclass
class RouteJobResult:
    decisions: list[RouteDecision]
