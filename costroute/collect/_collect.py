"""Generate every (prompt, generator, seed) image once, score it with every scorer, store it: :func:`collect`."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from ..generators import BackendGenerator
from ..scoring import Scorer
from ._arguments import CollectArguments, check_arguments
from ._backend import Backend, UnitResult, WorkUnit, check_result
from ._keys import digest, generator_identity, image_seed_for, scorer_cost, scorer_identity
from ._lease import ConcurrentWriterWarning, WriterLock
from ._saved import SavedImages
from ._store import CollectionStore, NewImage, NewScore

__all__ = ["CollectSummary", "FailedImagesWarning", "collect"]


class FailedImagesWarning(RuntimeWarning):
    """Some images of a :func:`collect` run failed; they are not stored, and a new run retries them."""


@dataclasses.dataclass
class CollectSummary:
    """What a :func:`collect` run did.

    Attributes
    ----------
    store : str
        The store's path.
    cells : int
        Cells of this run's arguments: prompts x generators x seeds x scorers (one score each).
    cells_before : int
        Of those, the ones already in the store when the run started (not paid again).
    cells_written : int
        Scores written by this run.
    images_generated : int
        Images this run made (and paid for).
    images_rescored : int
        Saved images this run scored again for new scorers, without generating them.
    failures : dict
        ``{(prompt, generator name, seed index): "Type: message"}`` of the images that failed;
        the next run tries them again.
    seconds : float
        Wall time of the run.
    """

    store: str
    cells: int
    cells_before: int
    cells_written: int = 0
    images_generated: int = 0
    images_rescored: int = 0
    failures: dict = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    @property
    def cells_missing(self) -> int:
        """Cells still missing from the store after the run."""
        return self.cells - self.cells_before - self.cells_written

    @property
    def complete(self) -> bool:
        """Whether every cell of the run is in the store."""
        return self.cells_missing == 0

    def __str__(self) -> str:
        text = (
            f"{self.cells_written} cells written ({self.images_generated} images generated, "
            f"{self.images_rescored} saved images scored again), {self.cells_before} already in the store, "
            f"{self.cells_missing} missing, of {self.cells} in {self.seconds:.1f} s"
        )
        if self.failures:
            text += f"; {len(self.failures)} images failed"
        return text


@dataclasses.dataclass(frozen=True)
class _Cell:
    """Where a unit's image goes in the store."""

    prompt_id: int
    generator_id: int
    seed_index: int
    seed: int
    image_id: int | None  # an image already stored (only scores are written)


# ---------------------------------------------------------------------- the run
def collect(
    prompts: Sequence[str],
    generators: Iterable[BackendGenerator],
    scorers: Scorer | Iterable[Scorer],
    store: str | os.PathLike,
    seeds: int | Sequence[int] = 1,
    batch_size: int = 8,
    backend: str | Backend = "local",
    progress: bool = True,
    save_images: str | os.PathLike | None = None,
    *,
    regenerate: bool = False,
) -> CollectSummary:
    """Generate every (prompt, generator, seed) image once, score it with every scorer, store the rows.

    The store is an SQLite file (see :class:`CollectionStore` for the schema) holding one
    image row per (prompt, generator, seed index) and one score row per (image, scorer):
    the score, the image's cost (its generator's cost per image, in the generator's unit),
    the measured seconds of generation and of scoring per image and, with ``save_images``,
    the PNG's path. Work goes in batches of ``batch_size`` images of one generator; every
    finished batch is written in one transaction.

    Running it again with the same arguments skips every cell already stored, so a run that
    was interrupted -- Ctrl-C, an exception, a ``SIGKILL`` at any moment -- resumes where it
    stopped and has lost at most the batches in flight; never a duplicate or a half-written
    row. A scorer added later scores the saved images without generating them again.
    Generators are identified by a hash of their settings (:func:`generator_key`): change
    one and it is a new generator whose rows never mix with the old ones.

    Seeds: the image of ``prompt`` by generator ``g`` at seed index ``s`` is seeded with
    :func:`image_seed_for(s, prompt, g.name) <image_seed_for>`, that is
    :func:`costroute.execution.candidate_seed` of (``s``, the first 63 bits of the SHA-256
    of the prompt, ``g.name``): the same image whatever batch, run or backend makes it.

    Parameters
    ----------
    prompts : sequence of str
        Distinct prompts.
    generators : GeneratorRegistry or list of BackendGenerator
        Generators that make images (:class:`~costroute.generators.DiffusersGenerator`,
        :class:`~costroute.generators.CallableGenerator`, presets), with unique names and one
        cost unit.
    scorers : Scorer or list of Scorer
        Every image is scored by each (unique names).
    store : str or path-like
        The SQLite file; created when missing (its folder must exist).
    seeds : int or list of int, default=1
        Images per (prompt, generator): ``n`` means seed indices ``0 .. n-1``; a list gives
        the seed indices themselves (``[2, 3]`` adds two more seeds to a store made with 2).
    batch_size : int, default=8
        Images per generator call, and per transaction.
    backend : "local", "ray" or Backend, default="local"
        Where units run: ``"local"`` (:class:`LocalBackend`, in this process), ``"ray"``
        (:class:`RayBackend` with its defaults: a pool of Ray actors, one per GPU, on the
        Ray instance of this process, of ``RAY_ADDRESS`` or started for the run), or any
        :class:`Backend` instance, e.g. ``RayBackend(num_workers=4, address="auto")``.
        Every backend stores the same rows.
    progress : bool, default=True
        A tqdm bar on stderr: cells (scores) done / total, images per second, ETA.
    save_images : str, path-like or None, default=None
        Folder (created when missing) to save every image in, as PNG named by the SHA-256
        of the file. Needed to score the images with a scorer added later.
    regenerate : bool, default=False
        When a scorer is added and some stored images were not saved, generate those images
        again (same seeds) to score them; without it, that is an error, before anything runs.

    Returns
    -------
    CollectSummary
        Counts of cells before and written, images generated and scored again, failures.

    Raises
    ------
    TypeError, ValueError
        Bad arguments (checked before any cost is counted, model loaded or file opened); a
        store that is not a collection store; a scorer to add to images that were not saved
        (the message says how many and what to do).
    Exception
        Whatever a scorer raises: the run stops there, the finished batches stay stored.

    Warns
    -----
    RuntimeWarning
        When some images failed (a generator raised for them, returned no image, or
        failed to load): they are left out of the store, and the next run tries again.

    Examples
    --------
    >>> from costroute.collect import collect
    >>> from costroute.scoring import CLIPScorer
    >>> summary = collect(prompts, generators, [CLIPScorer(clip_folder)], "run.sqlite", seeds=2,
    ...                   save_images="images")                                     # doctest: +SKIP
    >>> summary.complete                                                              # doctest: +SKIP
    True
    """
    start = time.perf_counter()
    args = check_arguments(
        prompts, generators, scorers, store, seeds, batch_size, backend, progress, save_images, regenerate
    )
    # identities and costs first: counting a cost may fail, and nothing is written before it all passed
    gen_idents = [generator_identity(g) for g in args.generators]
    scorer_idents = [scorer_identity(s) for s in args.scorers]
    for g in args.generators:  # counted here (FLOPs of a diffusers pipeline), raising before the store is touched
        g.count_cost(progress=args.progress) if hasattr(g, "count_cost") else g.cost
    gen_keys = [(digest(ident), ident) for ident in gen_idents]
    scorer_keys = [(digest(ident), ident) for ident in scorer_idents]
    if args.save_images is not None:
        os.makedirs(args.save_images, exist_ok=True)
    with WriterLock(args.store) as lock, CollectionStore(args.store) as db:
        if lock.other is not None:
            warnings.warn(
                f"{lock.describe()} is writing to the store {db.path!r}. Both runs generate every image "
                "still missing, so that work is paid for twice (no row is stored twice); stop one of "
                "them, or give each run different prompts or generators",
                ConcurrentWriterWarning,
                stacklevel=2,
            )
        prompt_ids = db.register_prompts(args.prompts)
        gen_ids = [db.register_generator(k, ident, float(g.cost)) for (k, ident), g in zip(gen_keys, args.generators)]
        scorer_ids = [
            db.register_scorer(k, s.name, ident, scorer_cost(s)) for (k, ident), s in zip(scorer_keys, args.scorers)
        ]
        units, cells, summary = _plan(db, args, prompt_ids, gen_ids, scorer_ids, [k for k, _ in gen_keys])
        summary.store = db.path
        _run(db, args, units, cells, summary, gen_ids, scorer_ids)
    summary.seconds = time.perf_counter() - start
    if summary.failures:
        shown = "; ".join(f"{g} seed {s} {p[:40]!r}: {why}" for (p, g, s), why in list(summary.failures.items())[:3])
        warnings.warn(
            f"{len(summary.failures)} image(s) failed and are not in the store (e.g. {shown}); run collect "
            "again to retry them",
            FailedImagesWarning,
            stacklevel=2,
        )
    return summary


def _plan(
    db: CollectionStore,
    args: CollectArguments,
    prompt_ids: list[int],
    gen_ids: list[int],
    scorer_ids: list[int],
    gen_keys: list[str],
) -> tuple[list[WorkUnit], dict[int, list[_Cell]], CollectSummary]:
    """The units still to run, the store cells of each, and the summary's starting counts."""
    existing = db.images_of(gen_ids)
    scored = db.scored(gen_ids)
    n_scorers = len(args.scorers)
    done = 0
    fresh: dict[int, list[tuple[_Cell, str]]] = {}
    regen: dict[tuple[int, tuple[int, ...]], list[tuple[_Cell, str]]] = {}
    rescore: dict[tuple[int, ...], list[tuple[_Cell, str, str]]] = {}
    unsaved: dict[str, int] = {}
    saved = SavedImages(args.save_images)
    for g, (gen, gid) in enumerate(zip(args.generators, gen_ids)):
        for s in args.seeds:
            for prompt, pid in zip(args.prompts, prompt_ids):
                stored = existing.get((pid, gid, s))
                if stored is None:
                    cell = _Cell(pid, gid, s, image_seed_for(s, prompt, gen.name), None)
                    fresh.setdefault(g, []).append((cell, prompt))
                    continue
                image_id, path = stored
                have = scored.get(image_id, set())
                missing = tuple(j for j, sid in enumerate(scorer_ids) if sid not in have)
                done += n_scorers - len(missing)
                cell = _Cell(pid, gid, s, image_seed_for(s, prompt, gen.name), image_id)
                state, resolved = saved.check(path)
                if not missing:
                    if state == "gone" and args.regenerate:  # scored, but its file is gone: make and save it again
                        regen.setdefault((g, ()), []).append((cell, prompt))
                    elif state == "gone":
                        saved.gone.append(repr(path))
                    continue
                if state == "ok":
                    rescore.setdefault(missing, []).append((cell, prompt, resolved))
                elif state == "outside":  # never opened, never replaced: reported
                    saved.outside.append(
                        f"image {image_id} ({prompt[:40]!r}, generator {gen.name!r}, seed {s}): {path!r}"
                    )
                elif args.regenerate:
                    regen.setdefault((g, missing), []).append((cell, prompt))
                else:
                    for j in missing:
                        unsaved[args.scorers[j].name] = unsaved.get(args.scorers[j].name, 0) + 1
                    if state == "gone":
                        saved.gone_unscored.append(repr(path))
                    elif state == "unchecked":
                        saved.unchecked.append(repr(path))
                    else:
                        saved.never += 1
    if unsaved:
        raise ValueError(_unsaved_message(db.path, unsaved, saved))
    if saved.outside:
        warnings.warn(saved.outside_message(db.path), RuntimeWarning, stacklevel=3)
    if saved.gone:
        warnings.warn(saved.gone_message(db.path), RuntimeWarning, stacklevel=3)
    units: list[WorkUnit] = []
    cells: dict[int, list[_Cell]] = {}

    def add(items: list, make) -> None:
        for start in range(0, len(items), args.batch_size):
            chunk = items[start : start + args.batch_size]
            unit = make(len(units), chunk)
            units.append(unit)
            cells[unit.id] = [item[0] for item in chunk]

    for missing, items in rescore.items():
        scorers = tuple(args.scorers[j] for j in missing)
        add(
            items,
            lambda uid, chunk, scorers=scorers: WorkUnit(
                uid,
                scorers,
                tuple(p for _, p, _ in chunk),
                paths=tuple(path for _, _, path in chunk),
                batch_size=args.batch_size,
            ),
        )
    for g, gen in enumerate(args.generators):
        groups = [(tuple(args.scorers), fresh.get(g, []))]
        groups += [(tuple(args.scorers[j] for j in missing), items) for (h, missing), items in regen.items() if h == g]
        for scorers, items in groups:
            add(
                items,
                lambda uid, chunk, scorers=scorers, gen=gen, key=gen_keys[g]: WorkUnit(
                    uid,
                    scorers,
                    tuple(p for _, p in chunk),
                    generator=gen,
                    generator_key=key,
                    seeds=tuple(c.seed for c, _ in chunk),
                    save_images=args.save_images,
                    batch_size=args.batch_size,
                ),
            )
    total = len(args.prompts) * len(args.generators) * len(args.seeds) * n_scorers
    return units, cells, CollectSummary(args.store, total, done)


def _unsaved_message(store: str, unsaved: dict[str, int], saved: SavedImages) -> str:
    """Why stored images that lack scores cannot be scored, and what to do."""
    counts = ", ".join(f"{n} for scorer {name!r}" for name, n in unsaved.items())
    text = f"the store {store!r} holds images that lack scores ({counts}) and cannot be read: "
    reasons = []
    if saved.gone_unscored:
        reasons.append(
            f"{len(saved.gone_unscored)} saved file(s) are missing ({', '.join(saved.gone_unscored[:5])}"
            f"{' ...' if len(saved.gone_unscored) > 5 else ''})"
        )
    if saved.unchecked:
        reasons.append(
            f"{len(saved.unchecked)} were saved (e.g. {saved.unchecked[0]}) but save_images is not given; "
            "pass save_images=FOLDER (`--save-images FOLDER`), the folder they are in, to score them"
        )
    if saved.never:
        reasons.append(f"{saved.never} were not saved (collect ran without save_images)")
    return (
        text + "; ".join(reasons) + ". Pass regenerate=True (`--regenerate`) to generate them again with the same "
        "seeds and pay for them once more, or collect into a new store; pass save_images=FOLDER from now on so "
        "that later scorers can reuse them"
    )


def _run(
    db: CollectionStore,
    args: CollectArguments,
    units: list[WorkUnit],
    cells: dict[int, list[_Cell]],
    summary: CollectSummary,
    gen_ids: list[int],
    scorer_ids: list[int],
) -> None:
    """Send the units to the backend; write each result in one transaction as it comes back."""
    from tqdm.auto import tqdm

    by_id = {u.id: u for u in units}
    cost_of = {gid: float(g.cost) for g, gid in zip(args.generators, gen_ids)}
    scorer_id = {s.name: sid for s, sid in zip(args.scorers, scorer_ids)}
    bar = tqdm(
        total=summary.cells,
        initial=summary.cells_before,
        unit="cell",
        desc="collect",
        file=sys.stderr,
        disable=not args.progress,
        dynamic_ncols=True,
    )
    started = time.perf_counter()
    try:
        if not units:
            return
        results = args.backend.run(units)
        try:
            _write_all(db, args, results, by_id, cells, summary, cost_of, scorer_id, bar, started)
        finally:
            close = getattr(results, "close", None)
            if close is not None:  # a generator backend releases its workers now, not when collected
                close()
    finally:
        bar.close()


def _write_all(
    db: CollectionStore,
    args: CollectArguments,
    results: Iterable[UnitResult],
    by_id: dict[int, WorkUnit],
    cells: dict[int, list[_Cell]],
    summary: CollectSummary,
    cost_of: dict[int, float],
    scorer_id: dict[str, int],
    bar: Any,
    started: float,
) -> None:
    """Write each result in one transaction as it comes back, and count it."""
    for result in results:
        unit = by_id.get(getattr(result, "unit_id", None))
        if unit is None:
            raise RuntimeError(
                f"backend {args.backend!r} returned a result for unknown unit {getattr(result, 'unit_id', result)!r}"
            )
        check_result(result, unit, args.backend)
        written = _write(db, unit, cells[unit.id], result, cost_of, scorer_id)
        summary.cells_written += written
        if unit.generator is None:
            summary.images_rescored += len(result.rows)
        else:
            summary.images_generated += len(result.rows)
        for position, why in result.failures.items():
            cell = cells[unit.id][position]
            name = unit.generator.name if unit.generator is not None else f"generator id {cell.generator_id}"
            summary.failures[(unit.prompts[position], name, cell.seed_index)] = why
        elapsed = time.perf_counter() - started
        made = summary.images_generated + summary.images_rescored
        bar.set_postfix(
            {"img/s": f"{made / elapsed:.2f}" if elapsed > 0 else "-", "failed": len(summary.failures)}, refresh=False
        )
        bar.update(written)


def _write(
    db: CollectionStore,
    unit: WorkUnit,
    cells: list[_Cell],
    result: UnitResult,
    cost_of: dict[int, float],
    scorer_id: dict[str, int],
) -> int:
    """Write one unit's result in one transaction; the number of scores written."""
    sids = [scorer_id[s.name] for s in unit.scorers]
    images: list[NewImage] = []
    scores: list[NewScore] = []
    paths: list[tuple[int, str]] = []
    for row in result.rows:
        cell = cells[row.position]
        if cell.image_id is None:
            images.append(
                NewImage(
                    cell.prompt_id,
                    cell.generator_id,
                    cell.seed_index,
                    cell.seed,
                    cost_of[cell.generator_id],
                    float(row.seconds),
                    row.path,
                    [(sid, value, seconds) for sid, (value, seconds) in zip(sids, row.scores)],
                )
            )
        else:
            scores += [NewScore(cell.image_id, sid, value, seconds) for sid, (value, seconds) in zip(sids, row.scores)]
            if unit.generator is not None and row.path is not None:  # made again: its new file replaces the old
                paths.append((cell.image_id, row.path))
    _, n_scores = db.write(images, scores, paths)
    return n_scores
