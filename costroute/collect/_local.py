"""Run work units in this process, one after another: :class:`LocalBackend`."""

from __future__ import annotations

import hashlib
import io
import math
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from typing import Any

from ..execution import BatchRunner
from ..generators import pipeline_cache
from ._backend import Backend, ImageRow, UnitResult, WorkUnit

__all__ = ["LocalBackend", "save_png"]


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def save_png(image: Any, folder: str) -> str:
    """Save ``image`` as PNG in ``folder`` under the SHA-256 of the file's bytes; return the path.

    The file is written beside its final name and moved there in one step, so a process
    killed while saving leaves at most a ``.tmp-*`` file, never a half-written image under a
    final name. An image already saved (same bytes) is not written again.
    """
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = buffer.getvalue()
    path = os.path.join(folder, hashlib.sha256(data).hexdigest() + ".png")
    if not os.path.isfile(path):
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".png", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return path


def _open_image(path: str) -> Any:
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return image.copy()


class LocalBackend(Backend):
    """Run units in this process, in order: generate with a :class:`~costroute.execution.BatchRunner`, score, save.

    Per unit: the generator is loaded once (a generator that fails to load fails every
    image of its units, without trying again), the unit's prompts go through the
    generator's runner (out-of-memory batches are retried at half the size, and the runner
    keeps the lower size for the rest of the run; a prompt that fails alone is a failure
    of that image only), the images are saved (``save_images``) and scored by every scorer
    of the unit. A scorer that raises stops the run (its exception propagates): the
    batches finished before stay in the store.

    While it runs, the shared :data:`~costroute.generators.pipeline_cache` holds at least
    one generator and every scorer (``max_loaded`` is raised to ``1 + len(scorers)`` when
    lower, and restored afterwards), so that batches do not reload models in turn.
    """

    name = "local"

    def run(self, units: Iterable[WorkUnit]) -> Iterator[UnitResult]:
        """Run ``units`` in order, yielding each one's :class:`UnitResult` as soon as it is finished."""
        runners: dict[str, BatchRunner] = {}
        failed_loads: dict[str, str] = {}
        bound = pipeline_cache.max_loaded
        try:
            for unit in units:
                pipeline_cache.max_loaded = max(pipeline_cache.max_loaded, 1 + len(unit.scorers))
                yield self._run_unit(unit, runners, failed_loads)
        finally:
            pipeline_cache.max_loaded = bound

    # ------------------------------------------------------------------ one unit
    def _run_unit(self, unit: WorkUnit, runners: dict[str, BatchRunner], failed_loads: dict[str, str]) -> UnitResult:
        result = UnitResult(unit.id)
        images: dict[int, Any] = {}
        seconds: dict[int, float] = {}
        paths: dict[int, str | None] = {}
        if unit.generator is None:
            for position, path in enumerate(unit.paths):
                try:
                    images[position] = _open_image(path)
                except Exception as exc:  # a deleted or damaged file: that image only
                    result.failures[position] = f"cannot read saved image {path!r}: {_describe(exc)}"
                    continue
                seconds[position] = math.nan
                paths[position] = path
        else:
            self._generate(unit, runners, failed_loads, result, images, seconds)
            for position, image in images.items():
                paths[position] = None if unit.save_images is None else save_png(image, unit.save_images)
        ok = sorted(images)
        values: list[list[tuple[float, float]]] = [[] for _ in ok]
        if ok:
            prompts = [unit.prompts[p] for p in ok]
            batch = [images[p] for p in ok]
            for scorer in unit.scorers:
                start = time.perf_counter()
                try:
                    scores = scorer.score(prompts, batch, progress=False)
                except Exception as exc:
                    what = "saved images" if unit.generator is None else f"images of generator {unit.generator.name!r}"
                    exc.add_note(
                        f"while scorer {scorer.name!r} scored a batch of {len(ok)} {what}; the batches "
                        "finished before are in the store, and running collect again resumes there"
                    )
                    raise
                per_image = (time.perf_counter() - start) / len(ok)
                for j, value in enumerate(scores):
                    values[j].append((float(value), per_image))
        result.rows = [ImageRow(p, seconds[p], paths[p], values[j]) for j, p in enumerate(ok)]
        return result

    def _generate(
        self,
        unit: WorkUnit,
        runners: dict[str, BatchRunner],
        failed_loads: dict[str, str],
        result: UnitResult,
        images: dict[int, Any],
        seconds: dict[int, float],
    ) -> None:
        generator = unit.generator
        key = unit.generator_key or generator.name
        if key not in failed_loads and key not in runners:
            try:
                generator.load()
            except Exception as exc:
                failed_loads[key] = _describe(exc)
        if key in failed_loads:
            for position in range(len(unit)):
                result.failures[position] = f"generator {generator.name!r} failed to load: {failed_loads[key]}"
            return
        runner = runners.setdefault(key, BatchRunner(generator, unit.batch_size))
        for outcomes in runner.run(range(len(unit)), unit.prompts, unit.seeds):
            for outcome in outcomes:
                if outcome.ok:
                    images[outcome.index] = outcome.image
                    seconds[outcome.index] = outcome.seconds
                else:
                    result.failures[outcome.index] = _describe(outcome.error)
