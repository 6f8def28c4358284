"""Run a :class:`~costroute.RoutingPlan`: its groups through :class:`BatchRunner`, with fallbacks by utility.

The logic behind :meth:`RoutingPlan.generate <costroute.RoutingPlan.generate>`.
"""

from __future__ import annotations

import numbers
import time
from typing import Any

import numpy as np

from ..generators import BackendGenerator
from ._batches import BatchRunner
from ._progress import ProgressBar
from ._result import Fallback, GenerationError, GenerationResult, _ranges
from ._seeds import check_non_negative_int

__all__ = ["ON_ERROR", "generate_plan"]

#: Valid values of ``on_error``.
ON_ERROR = ("fallback", "raise")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _check_args(seed: Any, batch_size: Any, on_error: Any) -> None:
    check_non_negative_int(seed, "seed")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {list(ON_ERROR)}, got {on_error!r}")


def _error_message(
    result: GenerationResult, failures: dict[int, BaseException], tried: list[set[str]], on_error: str
) -> str:
    """Says how many prompts failed, how many were not attempted, how many were made, and why."""
    n, failed, skipped = len(result), result.failed, result.not_attempted
    made = n - len(result.missing)
    parts = [f"{len(failed)} of {n} images failed (prompts {_ranges(failed)})"]
    if skipped:
        parts.append(
            f"{len(skipped)} were not attempted because on_error={on_error!r} stops the run at the first "
            f"failure (prompts {_ranges(skipped)})"
        )
    parts.append(f"{made} were made")
    detail = "; ".join(
        f"prompt {i} (tried {', '.join(sorted(tried[i]))}): {_describe(e)}" for i, e in sorted(failures.items())[:3]
    )
    return f"{', '.join(parts)}. E.g. {detail}. The partial result is in .result (.failed, .not_attempted, .errors)"


def generate_plan(
    plan: Any,  # a costroute.RoutingPlan (the layer above: not imported here)
    seed: int = 0,
    batch_size: int = 8,
    progress: bool = True,
    on_error: str = "fallback",
) -> GenerationResult:
    """Make every image of ``plan``; the engine of :meth:`RoutingPlan.generate <costroute.RoutingPlan.generate>`.

    See :meth:`RoutingPlan.generate <costroute.RoutingPlan.generate>` for the parameters
    and the semantics of seeding, fallbacks and interruption. Precisely:

    - Groups (a generator and its pending prompts) run in registry order. Each group
      calls the generator's ``load()`` once, then goes through the generator's
      :class:`BatchRunner` (one per generator per run): out-of-memory batches are retried
      at half the size, which then stays in force for the rest of that generator's
      prompts in this run; other failing batches are split to isolate the prompts that
      fail alone; an item that is not an image fails its prompt.
    - A generator whose ``load()`` raised is remembered for the rest of the run
      (``result.failed_loads``): it counts as already tried for every prompt, so no
      fallback goes to it and it is not loaded again.
    - A failed prompt moves to the untried generator with the highest utility
      (``plan.utilities()``, ties to the earlier in the registry) and joins its group.
    - Nothing is unloaded at the end: loaded pipelines stay in
      :data:`~costroute.generators.pipeline_cache` (at most ``pipeline_cache.max_loaded``)
      for the next run.
    - Any exception that escapes once generation has started (``KeyboardInterrupt``
      included) gets a ``result`` attribute holding the partial :class:`GenerationResult`,
      and the progress bar is closed first.
    """
    _check_args(seed, batch_size, on_error)
    registry = plan.generators
    groups = plan.groups()
    plain = [name for name in groups if not isinstance(registry[name], BackendGenerator)]
    if plain:
        raise TypeError(
            f"generators {plain} of this plan are plain GeneratorSpecs, which only describe a cost and cannot "
            "make images; route over generators with a backend (DiffusersGenerator, CallableGenerator or a "
            "preset from costroute.generators.presets), e.g. spec -> presets.get(...).clone(name=spec.name)"
        )
    names = registry.names
    n = len(plan)
    result = GenerationResult(plan.prompts, list(plan.generator_names), int(seed), registry.cost_unit)
    if n == 0:
        return result
    # fallback order of each prompt: generators by decreasing utility (ties: registry order)
    preference = np.argsort(-plan.utilities(), axis=1, kind="stable")
    tried: list[set[str]] = [set() for _ in range(n)]
    pending: dict[str, list[int]] = {name: list(map(int, idx)) for name, idx in groups.items()}
    failures: dict[int, BaseException] = {}
    runners: dict[str, BatchRunner] = {}

    def fail(index: int, name: str, exc: BaseException) -> None:
        """Prompt ``index`` failed on ``name``: move it on, or record the failure."""
        tried[index].add(name)
        target = None
        if on_error == "fallback":
            target = next(
                (
                    names[k]
                    for k in preference[index]
                    if names[k] not in tried[index]
                    and names[k] not in result.failed_loads
                    and isinstance(registry[names[k]], BackendGenerator)
                ),
                None,
            )
            result.fallbacks.append(Fallback(index, plan.prompts[index], name, target, _describe(exc)))
        if target is None:
            failures[index] = exc
            result.errors[index] = _describe(exc)
        else:
            pending.setdefault(target, []).append(index)

    def stop() -> GenerationError:
        return GenerationError(_error_message(result, failures, tried, on_error), result, failures)

    bar = ProgressBar(total=n, enabled=progress)
    try:
        while True:
            name = next((g for g in names if pending.get(g)), None)
            if name is None:
                break
            remaining = sorted(pending.pop(name))
            spec = registry[name]
            start = time.perf_counter()
            try:
                spec.load()
            except Exception as exc:  # a model that cannot load fails all its prompts, and is not loaded again
                result.failed_loads[name] = _describe(exc)
                for index in remaining:
                    fail(index, name, exc)
                if failures and on_error == "raise":
                    raise stop() from exc
                continue
            finally:
                result.load_seconds[name] = result.load_seconds.get(name, 0.0) + time.perf_counter() - start
            runner = runners.setdefault(name, BatchRunner(spec, batch_size))
            for outcomes in runner.run(remaining, plan.prompts, result.seeds):
                # every image a call returned is kept, even when another prompt of the call stops the run
                for outcome in outcomes:
                    if outcome.ok:
                        result._record(
                            outcome.index, outcome.image, name, spec.cost, outcome.seconds, outcome.batch_size
                        )
                        bar.advance()
                    else:
                        fail(outcome.index, name, outcome.error)
                if failures and on_error == "raise":
                    raise stop() from next(iter(failures.values()))
        if failures:
            raise stop()
    except GenerationError:
        raise
    except BaseException as exc:  # KeyboardInterrupt included: hand back what was made
        try:
            exc.result = result  # type: ignore[attr-defined]
        except (AttributeError, TypeError):  # pragma: no cover - exceptions without a __dict__
            pass
        raise
    finally:
        bar.close()
    return result
