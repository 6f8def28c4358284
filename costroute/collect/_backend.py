"""What a collection backend gets and gives back: :class:`WorkUnit` in, :class:`UnitResult` out.

The driver (:func:`~costroute.collect.collect`) plans the work as units -- one batch of one
generator's images, or one batch of saved images to score -- hands them to a backend, and
writes each :class:`UnitResult` to the store in one transaction as it arrives. Backends never
touch the store: a backend that runs units elsewhere (processes, machines) only has to send
the units out and the results back, in any order. Units and results hold plain data and
specs (no images, no loaded weights), so they can be pickled.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Backend", "ImageRow", "UnitResult", "WorkUnit", "check_result"]


@dataclass(frozen=True)
class WorkUnit:
    """One batch of work.

    Attributes
    ----------
    id : int
        Unique within a run; the result carries it back.
    scorers : tuple of Scorer
        Score every image of the unit with each of these, in this order.
    prompts : tuple of str
        One prompt per image.
    generator : BackendGenerator or None
        Make the images with it; ``None`` for a unit that scores saved images.
    generator_key : str or None
        The generator's store key (a backend may key loaded runners by it).
    seeds : tuple of int
        The seed of each image to make (see :func:`~costroute.collect.image_seed_for`).
    paths : tuple of str
        The saved images to score (units without a generator).
    save_images : str or None
        Folder to save made images in (PNG, named by the SHA-256 of the file), or ``None``.
    batch_size : int
        Most images per generator call.
    """

    id: int
    scorers: tuple
    prompts: tuple[str, ...]
    generator: Any = None
    generator_key: str | None = None
    seeds: tuple[int, ...] = ()
    paths: tuple[str, ...] = ()
    save_images: str | None = None
    batch_size: int = 8

    def __len__(self) -> int:
        return len(self.prompts)


@dataclass
class ImageRow:
    """One finished image of a unit.

    Attributes
    ----------
    position : int
        Its position in the unit (index into ``WorkUnit.prompts``).
    seconds : float
        Generation wall time per image (NaN for a saved image that was only scored).
    path : str or None
        Where it was saved (``None`` when not saved).
    scores : list of (float, float)
        ``(value, seconds per image)`` of each of the unit's scorers, in their order.
    """

    position: int
    seconds: float
    path: str | None
    scores: list[tuple[float, float]]


@dataclass
class UnitResult:
    """What a backend returns for one :class:`WorkUnit`.

    Attributes
    ----------
    unit_id : int
    rows : list of ImageRow
        The images that were made (or loaded) and scored by every scorer.
    failures : dict of int to str
        Positions whose image failed, with the reason ("Type: message"); the driver retries
        them on the next run.
    """

    unit_id: int
    rows: list[ImageRow] = field(default_factory=list)
    failures: dict[int, str] = field(default_factory=dict)


class Backend:
    """Runs work units and yields their results (abstract).

    Subclasses implement :meth:`run`. A backend may run units in any order and in
    parallel; it must yield exactly one :class:`UnitResult` per unit it finishes, and may
    stop early (an interrupted run): the units it did not finish are planned again by the
    next :func:`~costroute.collect.collect`.
    """

    #: Name used in messages and in ``collect(backend=...)``.
    name = "backend"

    def run(self, units: Iterable[WorkUnit]) -> Iterator[UnitResult]:
        """Run ``units``; yield each one's result as soon as it is finished."""
        raise NotImplementedError(f"{type(self).__name__} does not implement run(units)")

    def check(self) -> None:
        """Raise ``ValueError`` or ``TypeError`` for a bad setting; called before anything runs.

        :func:`~costroute.collect.collect` calls it with its other argument checks, before
        any cost is counted or the store opened. The default checks nothing.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def check_result(result: Any, unit: WorkUnit, backend: Backend) -> None:
    """Raise ``RuntimeError`` if ``result`` is not a well-formed answer to ``unit``."""
    where = f"backend {backend!r} returned for unit {unit.id}"
    if not isinstance(result, UnitResult):
        raise RuntimeError(f"{where} a {type(result).__name__}; a backend must yield UnitResult objects")
    seen: set[int] = set()
    for row in result.rows:
        p = row.position
        if not isinstance(p, int) or not 0 <= p < len(unit) or p in seen or p in result.failures:
            raise RuntimeError(
                f"{where} an image at position {p!r}: positions must be distinct and in [0, {len(unit)})"
            )
        seen.add(p)
        if len(row.scores) != len(unit.scorers):
            raise RuntimeError(f"{where} {len(row.scores)} scores for position {p}, expected {len(unit.scorers)}")
        for value, seconds in row.scores:
            if not (math.isfinite(value) and math.isfinite(seconds)):
                raise RuntimeError(f"{where} a non-finite score or time ({value!r}, {seconds!r}) at position {p}")
        if unit.generator is not None and not math.isfinite(row.seconds):
            raise RuntimeError(f"{where} a non-finite generation time {row.seconds!r} at position {p}")
    for p in result.failures:
        if not isinstance(p, int) or not 0 <= p < len(unit):
            raise RuntimeError(f"{where} a failure at position {p!r}, outside [0, {len(unit)})")
