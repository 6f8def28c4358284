"""Stand-in images, recording generator functions and hand-made plans for the execution tests.

The generators built from these are real :class:`CallableGenerator` objects over plain
functions; nothing here replaces a component of costroute.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from costroute import GeneratorRegistry, RoutingPlan


@dataclasses.dataclass(frozen=True)
class Label:
    """A small image that is only text: it has the ``save(path)`` method the image contract asks for."""

    text: str

    def save(self, path) -> None:
        Path(path).write_text(self.text)

    def __str__(self) -> str:
        return self.text


def texts(images) -> list:
    """The text of each Label (None stays None)."""
    return [None if image is None else str(image) for image in images]


class Recorder:
    """fn(prompts, seeds) -> Labels "tag|prompt|seed", failing on demand, recording every call."""

    def __init__(self, tag: str, fail_on=None, max_batch: int | None = None):
        self.tag = tag
        self.fail_on = fail_on or (lambda prompt: False)
        self.max_batch = max_batch
        self.calls: list[list] = []
        self.made: list = []  # every prompt it returned an image for, in order

    def __call__(self, prompts, seeds):
        self.calls.append(list(prompts))
        if self.max_batch is not None and len(prompts) > self.max_batch:
            raise MemoryError(f"simulated out of memory at batch size {len(prompts)}")
        bad = [p for p in prompts if self.fail_on(p)]
        if bad:
            raise RuntimeError(f"{self.tag} cannot draw {bad}")
        self.made.extend(prompts)
        return [Label(f"{self.tag}|{p}|{s}") for p, s in zip(prompts, seeds)]


def make_plan(prompts, assignments, generators, quality=None, cost_penalty: float = 0.0) -> RoutingPlan:
    """A RoutingPlan built by hand; ``quality`` defaults to preferring the assigned generator."""
    registry = generators if isinstance(generators, GeneratorRegistry) else GeneratorRegistry(generators)
    n, k = len(prompts), len(registry)
    if quality is None:
        quality = np.tile(np.linspace(1.0, 0.0, k), (n, 1))
        quality[np.arange(n), assignments] = 2.0
    return RoutingPlan(prompts, assignments, registry, quality, cost_penalty)
