"""Run one generator on prompts chosen by index, in batches: :class:`BatchRunner`.

The building block of plan execution (and of anything else that sends prompts to a
generator: a cascade's escalation step, data collection): it sends *these prompt indices*
to *this generator* with *these seeds*, retries out-of-memory batches at half the size,
splits failing batches to isolate the prompts that fail alone, and reports an
:class:`ImageOutcome` per index -- an image, or the error that failed it. Fallbacks,
progress and the result belong to the caller.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import time
from collections.abc import Iterable, Iterator
from typing import Any

from ..generators import BackendGenerator
from ..generators._cache import free_accelerator_memory
from ._images import is_image, not_an_image

__all__ = ["BatchRunner", "ImageOutcome", "is_out_of_memory"]


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` means out of memory: ``MemoryError``, ``torch.cuda.OutOfMemoryError`` or an
    "out of memory" message (CUDA's ``RuntimeError``, other accelerators)."""
    return (
        isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()
    )


@dataclasses.dataclass(frozen=True)
class ImageOutcome:
    """What happened to one prompt in one :meth:`BatchRunner.run`.

    Attributes
    ----------
    index : int
        The prompt's index, as given to :meth:`BatchRunner.run`.
    image : object or None
        The image (see :func:`~costroute.execution.is_image`); ``None`` on failure.
    error : BaseException or None
        Why the prompt failed: the exception it raised alone (at batch size 1), or a
        ``TypeError`` when the generator returned something that is not an image for it.
    seconds : float
        Wall time of the call that returned it divided by that call's batch size (NaN
        when the call raised).
    batch_size : int
        Size of that call's batch (1 for a prompt that raised alone).
    """

    index: int
    image: Any = None
    error: BaseException | None = None
    seconds: float = math.nan
    batch_size: int = 1

    @property
    def ok(self) -> bool:
        """Whether the prompt got its image."""
        return self.error is None


class BatchRunner:
    """Send prompts, chosen by index, to one generator in batches; report each index's outcome.

    A batch that runs out of memory (see :func:`is_out_of_memory`) is retried at half its
    size after the accelerator cache is emptied, and :attr:`batch_size` stays lowered for
    every later call of this runner: a batch that did not fit once will not fit later.
    A batch that raises anything else is split in halves, recursively, until the
    prompt(s) that fail alone are isolated; the others keep their images, and the next
    batches go back to :attr:`batch_size`. One bad prompt in a batch of ``b`` costs about
    ``2 log2(b)`` extra calls. An item returned for a prompt that is not an image (``None``
    from a content filter, say) fails that prompt alone, without calling the generator again.

    The runner neither loads the generator nor falls back: call ``generator.load()``
    first, and decide what to do with failed indices yourself.

    Parameters
    ----------
    generator : BackendGenerator
        The generator to run.
    batch_size : int
        Largest batch sent to it (>= 1).

    Attributes
    ----------
    batch_size : int
        The largest batch now sent: ``batch_size``, or less after an out-of-memory error.

    Examples
    --------
    >>> from PIL import Image
    >>> from costroute.execution import BatchRunner
    >>> from costroute.generators import CallableGenerator
    >>> def draw(prompts, seeds):
    ...     return [None if "filtered" in p else Image.new("L", (4, 4), s % 256) for p, s in zip(prompts, seeds)]
    >>> runner = BatchRunner(CallableGenerator("api", draw, cost=0.04), batch_size=2)
    >>> prompts, seeds = ["a cat", "filtered", "a dog"], [1, 2, 3]
    >>> for outcomes in runner.run([0, 1, 2], prompts, seeds):  # one list per call of the generator
    ...     print([(o.index, o.ok, o.batch_size) for o in outcomes])
    [(0, True, 2), (1, False, 2)]
    [(2, True, 1)]
    """

    def __init__(self, generator: BackendGenerator, batch_size: int):
        if not isinstance(generator, BackendGenerator):
            raise TypeError(
                f"generator must be a BackendGenerator (DiffusersGenerator, CallableGenerator, a preset), "
                f"got {type(generator).__name__}: {generator!r}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.generator = generator
        self.batch_size = int(batch_size)

    def run(self, indices: Iterable[int], prompts: Any, seeds: Any) -> Iterator[list[ImageOutcome]]:
        """Make the images of ``prompts[i]`` seeded with ``seeds[i]`` for every ``i`` in ``indices``.

        Parameters
        ----------
        indices : iterable of int
            Which prompts, in the order to batch them.
        prompts, seeds : sequence or mapping
            Looked up by index: ``prompts[i]`` and ``seeds[i]``.

        Yields
        ------
        list of ImageOutcome
            After every generator call that settles some prompts, their outcomes: one per
            prompt of a call that returned (images, or failures for the items that are not
            images), in batch order, or the one failure of a prompt that raised alone. A call
            that raises for a batch of several prompts settles nothing (the batch is split or
            retried). If the iteration runs to its end, every index gets exactly one outcome.
            Stopping it early leaves the indices not yet settled untried; an exception that
            is not an ``Exception`` (``KeyboardInterrupt``) propagates, after every outcome
            already yielded.
        """
        remaining = [int(i) for i in indices]
        while remaining:
            # a batch, then the halves of whatever part of it fails for another reason than memory
            parts = [remaining[: self.batch_size]]
            remaining = remaining[self.batch_size :]
            while parts:
                part = parts.pop(0)
                try:
                    images, seconds = self._call(part, prompts, seeds)
                except Exception as exc:  # includes torch.cuda.OutOfMemoryError
                    if is_out_of_memory(exc):
                        free_accelerator_memory()
                        if len(part) > 1:
                            # retry these prompts, the halves still waiting and every later one, at half the size
                            self.batch_size = min(self.batch_size, (len(part) + 1) // 2)
                            remaining = part + [i for p in parts for i in p] + remaining
                            break
                    elif len(part) > 1:
                        half = (len(part) + 1) // 2
                        parts[:0] = [part[:half], part[half:]]
                        continue
                    yield [ImageOutcome(part[0], error=exc)]
                    continue
                outcomes = []
                for index, image in zip(part, images):
                    error = None if is_image(image) else not_an_image(self.generator.name, index, image)
                    outcomes.append(
                        ImageOutcome(index, None if error else image, error, seconds / len(part), len(part))
                    )
                yield outcomes

    def _call(self, part: list[int], prompts: Any, seeds: Any) -> tuple[list, float]:
        """One call of the generator on ``part``: its items and the call's wall time."""
        start = time.perf_counter()
        images = self.generator.generate_images([prompts[i] for i in part], [seeds[i] for i in part])
        if isinstance(images, (str, bytes, bytearray)):  # would be split into characters
            raise TypeError(
                f"generator {self.generator.name!r} returned a {type(images).__name__} for a batch of {len(part)} "
                "prompts; generate_images must return a list with one image per prompt"
            )
        images = list(images)
        if len(images) != len(part):
            raise RuntimeError(
                f"generator {self.generator.name!r} returned {len(images)} images for a batch of {len(part)}"
            )
        return images, time.perf_counter() - start

    def __repr__(self) -> str:
        return f"BatchRunner(generator={self.generator.name!r}, batch_size={self.batch_size})"
