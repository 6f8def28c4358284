"""Making a batch's images in the worker thread: one image per item, scoring, and cascades.

* :func:`make_images`: each item's image from its planned generator, batched per generator
  through the generators' :class:`~costroute.execution.BatchRunner` (one call for up to
  ``max_batch_size`` images), with :meth:`RoutingPlan.generate <costroute.RoutingPlan.generate>`'s
  rules: a failing batch is split, a failed image moves to the next generator by utility
  (among those ``fits`` allows), a generator that fails to load is not tried again.
* :func:`score_images`: every made image of the items that ask for it, per scorer, in batches.
* :func:`run_cascade`: a cascade over the batch's routed items, through
  :func:`costroute.execution.generate_cascade` with each item's own seed and spend limit.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..execution import BatchRunner, generate_cascade
from ._jobs import Candidate, ServedImage

__all__ = ["Item", "make_images", "run_cascade", "score_images"]


@dataclasses.dataclass
class Item:
    """One image to make in a batch: its prompt, predicted quality row, seed key, plan and outcome.

    ``keep``: keep every candidate made for it, pixels included, in ``served.candidates``.
    """

    job: int
    prompt: str
    row: np.ndarray
    seed_key: tuple[int, int]
    k: int
    lam: float
    score: bool
    served: ServedImage
    slot: int | None = None
    image_seconds: float = math.nan
    score_seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    scoring_cost: float = 0.0
    # a cascade's other candidates: generator -> (seed, seconds, {scorer: (value, seconds)})
    candidates: dict[str, tuple[int, float, dict[str, tuple[float, float]]]] = dataclasses.field(default_factory=dict)
    #: made by the cascade (routed, not explored, not redirected), fixed when the item is planned
    verified: bool = False
    keep: bool = False


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _preference(row: np.ndarray, costs: np.ndarray, lam: float) -> np.ndarray:
    """Generators by decreasing utility at ``lam`` (λ = inf: cheapest first, then by predicted quality)."""
    if math.isfinite(lam):
        return np.argsort(-(row - lam * costs), kind="stable")
    return np.lexsort((-row, costs))


def make_images(
    items: Sequence[Item],
    registry: Any,
    runners: dict[str, BatchRunner],
    max_batch_size: int,
    seed_of: Callable[[Item, str], int],
    fits: Callable[[Item, int], bool],
    failed_loads: dict[str, str],
) -> None:
    """Make each item's image with its planned generator ``item.k``; fills ``item.served``.

    Parameters
    ----------
    items : sequence of Item
    registry : GeneratorRegistry
    runners : dict
        One :class:`BatchRunner` per generator name, kept between batches (an out-of-memory
        error lowers its batch size for good).
    max_batch_size : int
    seed_of : callable
        ``seed_of(item, generator name)``: the seed of that generator's image for the item.
    fits : callable
        ``fits(item, k)``: whether the item may fall back to generator ``k`` (the budget's
        guard; it may also turn the item's scoring off to make room).
    failed_loads : dict
        Generators whose ``load()`` failed (name -> error), shared by the batch.
    """
    names = list(registry.names)
    costs = registry.normalized_costs()
    pending: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        pending.setdefault(names[item.k], []).append(i)
    tried: list[set[str]] = [set() for _ in items]
    prompts = {i: item.prompt for i, item in enumerate(items)}

    def fail(i: int, name: str, exc: BaseException) -> None:
        item = items[i]
        tried[i].add(name)
        item.served.tried.append(name)
        target = None
        if item.served.routed:  # a request naming its generator gets that one or an error
            for k in _preference(item.row, costs, item.lam):
                other = names[int(k)]
                if other not in tried[i] and other not in failed_loads and fits(item, int(k)):
                    target = int(k)
                    break
        item.served.fallbacks.append(
            {"generator": name, "error": _describe(exc), "to": None if target is None else names[target]}
        )
        if target is None:
            item.served.error = f"{name}: {_describe(exc)}"
        else:
            item.k = target
            pending.setdefault(names[target], []).append(i)

    while True:
        name = next((g for g in names if pending.get(g)), None)
        if name is None:
            break
        waiting = pending.pop(name)
        spec = registry[name]
        if name not in failed_loads:
            try:
                spec.load()
            except Exception as exc:  # noqa: BLE001 - a model that cannot load fails its images, which move on
                failed_loads[name] = _describe(exc)
        if name in failed_loads:
            for i in waiting:
                fail(i, name, RuntimeError(f"{name} failed to load: {failed_loads[name]}"))
            continue
        runner = runners.setdefault(name, BatchRunner(spec, max_batch_size))
        seeds = {i: seed_of(items[i], name) for i in waiting}
        for outcomes in runner.run(waiting, prompts, seeds):
            for o in outcomes:
                if not o.ok:
                    fail(o.index, name, o.error)
                    continue
                item = items[o.index]
                item.served.image = o.image
                item.served.generator = name
                item.served.tried.append(name)
                item.served.seed = seeds[o.index]
                item.served.error = None
                item.image_seconds = o.seconds


def score_images(
    items: Sequence[Item], scorers: dict[str, Any], scoring_costs: np.ndarray, max_batch_size: int
) -> None:
    """Score the made image of every item with ``item.score`` set, with each scorer, in batches.

    A batch whose scorer fails leaves its images unscored and uncharged, with the error in
    their ``served.warnings``.
    """
    todo = [it for it in items if it.score and it.served.image is not None]
    for s, (name, scorer) in enumerate(scorers.items()):
        for start in range(0, len(todo), max_batch_size):
            part = todo[start : start + max_batch_size]
            began = time.perf_counter()
            try:
                values = np.asarray(
                    scorer.score(
                        [it.prompt for it in part],
                        [it.served.image for it in part],
                        batch_size=max_batch_size,
                        progress=False,
                    ),
                    dtype=float,
                )
                if values.shape != (len(part),) or not np.isfinite(values).all():
                    raise ValueError(f"expected {len(part)} finite scores, got {values.tolist()[:8]}")
            except Exception as exc:  # noqa: BLE001 - the images are served unscored
                for it in part:
                    it.served.warnings.append(f"scorer {name!r} failed: {_describe(exc)}")
                continue
            per_image = (time.perf_counter() - began) / len(part)
            for it, value in zip(part, values.tolist()):
                it.served.scores.setdefault(name, {})[it.served.generator] = float(value)
                it.score_seconds[name] = per_image
                it.scoring_cost += float(scoring_costs[s])


def run_cascade(cascade: Any, items: Sequence[Item], scorers: dict[str, Any], max_batch_size: int, window: Any) -> Any:
    """Run ``cascade`` over ``items`` (routed, one image each) and fill their outcomes; returns the CascadeResult.

    Each item's candidates are seeded from its own ``seed_key``, so its images are those of
    ``cascade.generate([prompt], seed=s, cost_penalty=item.lam)``. With a budget ``window``
    (a :class:`~costroute.serve._budget.SpendWindow`), the items' first images are reserved one
    after another as a router's are (one that does not fit goes to the cheapest generator,
    unscored: λ = inf), and what room every window holding them has left is shared equally as
    each item's spend limit for scoring, escalations and fallbacks.
    """
    predicted = np.vstack([it.row for it in items])
    lams = np.array([it.lam for it in items], dtype=float)
    limits = None
    # private to the cascade package: the policy state generate() builds, here with a λ and a limit per item
    run = cascade._run(predicted, lams)
    if window is not None:
        reserved = []
        for i, item in enumerate(items):
            first = float(run.costs[run.first[i]])
            if first > window.room() + 1e-12:
                lams[i], item.served.guarded, first = math.inf, True, float(run.costs.min())
            item.slot = window.reserve(first)
            reserved.append(first)
        spare = min(window.headroom(it.slot) - r for it, r in zip(items, reserved))
        limits = np.asarray(reserved) + max(0.0, spare) / len(items)
        for item, limit in zip(items, limits):
            window.replan(item.slot, float(limit))
        run = cascade._run(predicted, lams, limits)
    names = list(scorers)
    with warnings.catch_warnings():  # scoring failures are reported per image instead
        warnings.simplefilter("ignore", RuntimeWarning)
        result = generate_cascade(
            run,
            [it.prompt for it in items],
            cascade.router_.generators_,
            list(scorers.values()),
            batch_size=max_batch_size,
            progress=False,
            on_error="fallback",
            scorer_names=names,
            seed_keys=[it.seed_key for it in items],
        )
    generators = list(result.generator_names)
    for i, item in enumerate(items):
        served = item.served
        served.tried = list(result.order[i])
        served.cost_penalty = float(lams[i])
        for k, g in enumerate(generators):
            for s, name in enumerate(names):
                value = result.score_cube[i, k, s]
                if not np.isnan(value):
                    served.scores.setdefault(name, {})[g] = float(value)
        for g in result.candidates[i]:
            k = generators.index(g)
            scored = {
                name: (float(result.score_cube[i, k, s]), float(result.score_seconds[i, k, s]))
                for s, name in enumerate(names)
                if not np.isnan(result.score_cube[i, k, s])
            }
            item.candidates[g] = (result.candidate_seeds[i][g], result.candidate_seconds[i][g], scored)
        served.normalized_cost = float(result.normalized_cost[i])
        served.seconds = float(result.seconds[i])
        returned = result.returned[i]
        for (row, where), why in result.errors.items():
            if row != i:
                continue
            if where == "scorer":
                served.warnings.append(f"scoring failed: {why}")
            else:
                order = served.tried
                after = order[order.index(where) + 1 :] if where in order else []
                served.fallbacks.append({"generator": where, "error": why, "to": after[0] if after else None})
        if returned is None:
            served.error = "; ".join(f"{f['generator']}: {f['error']}" for f in served.fallbacks) or "no image made"
            continue
        served.image = result.candidates[i][returned]
        served.generator = returned
        served.seed = result.candidate_seeds[i][returned]
        served.predicted_quality = float(item.row[generators.index(returned)])
        if item.keep:
            served.candidates = _cascade_candidates(result, i, run, names)
    return result


def _cascade_candidates(result: Any, i: int, run: Any, names: list[str]) -> list[Candidate]:
    """Every image the cascade made for prompt ``i``, in the order made, each charged its generation and scorings."""
    generators = list(result.generator_names)
    out = []
    for g in dict.fromkeys(result.order[i]):
        if g not in result.candidates[i]:  # a generator that failed on it: in the fallbacks, no pixels
            continue
        k = generators.index(g)
        scored = ~np.isnan(result.score_cube[i, k])
        out.append(
            Candidate(
                generator=g,
                image=result.candidates[i][g],
                seed=result.candidate_seeds[i][g],
                scores={name: float(result.score_cube[i, k, s]) for s, name in enumerate(names) if scored[s]},
                normalized_cost=float(run.costs[k] + run.scorer_costs[scored].sum()),
                seconds=float(np.nansum([result.candidate_seconds[i][g], *result.score_seconds[i, k]])),
                returned=g == result.returned[i],
            )
        )
    return out
