"""Run a :class:`~costroute.RoutingPlan`: batched generation per generator, seeding, retries, fallbacks.

The logic behind :meth:`RoutingPlan.generate <costroute.RoutingPlan.generate>`.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
import re
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._cache import free_accelerator_memory
from ._callable import BackendGenerator

if TYPE_CHECKING:  # pragma: no cover
    from ..plan import RoutingPlan

__all__ = ["Fallback", "GenerationError", "GenerationResult", "generate_plan", "image_seed"]

ON_ERROR = ("fallback", "raise")

# characters kept in a generator name when it becomes part of a file name; others become "_"
_UNSAFE_IN_FILE_NAME = re.compile(r"[^A-Za-z0-9._+-]")


def _check_non_negative_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)


def _file_name_part(name: str) -> str:
    """``name`` with every character but letters, digits, ``.``, ``_``, ``+`` and ``-`` replaced by ``_``.

    No separator survives (``/`` and ``\\`` become ``_``), and a run of dots is cut to one,
    so the part can never leave the folder or name a parent.
    """
    return re.sub(r"\.{2,}", ".", _UNSAFE_IN_FILE_NAME.sub("_", name))


def image_seed(seed: int, index: int) -> int:
    """The seed of the image of prompt number ``index`` in a run seeded with ``seed``.

    Derived with :class:`numpy.random.SeedSequence` from ``(seed, index)``, so it does not
    depend on the batch, the generator or the other prompts, and nearby ``(seed, index)``
    pairs give unrelated streams. The value fits ``torch.Generator.manual_seed`` (< 2**63).

    Parameters
    ----------
    seed : int
        The run's seed (>= 0).
    index : int
        Position of the prompt in the plan (>= 0).

    Returns
    -------
    int

    Examples
    --------
    >>> from costroute.generators import image_seed
    >>> image_seed(0, 3) == image_seed(0, 3) != image_seed(1, 3)
    True
    """
    seed, index = _check_non_negative_int(seed, "seed"), _check_non_negative_int(index, "index")
    state = np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))


@dataclasses.dataclass(frozen=True)
class Fallback:
    """One prompt moved from a failing generator to the next one by utility.

    Attributes
    ----------
    index : int
        Position of the prompt in the plan.
    prompt : object
        The prompt.
    from_generator : str
        The generator that failed on it (at batch size 1).
    to_generator : str or None
        The generator it moved to; ``None`` when none was left.
    error : str
        The failure, as ``"ExceptionType: message"``.
    """

    index: int
    prompt: Any
    from_generator: str
    to_generator: str | None
    error: str


class GenerationResult(Sequence):
    """Images of a routed batch, in prompt order, with who made each one and at what cost.

    Behaves as a sequence of images (``result[i]`` is prompt ``i``'s image). A result
    carried by a :class:`GenerationError` is partial: :attr:`missing` lists the prompts
    without an image (their ``images`` entries are ``None``).

    Attributes
    ----------
    prompts : list
        The plan's prompts.
    images : list
        One image per prompt (PIL images for diffusers generators), ``None`` where missing.
    planned : list of str
        The generator the plan chose for each prompt.
    generators : list of str or None
        The generator that actually made each image.
    seeds : list of int
        Per-image seed (:func:`image_seed` of the run seed and the prompt index).
    costs : ndarray of float
        Cost of each image (the maker's cost), NaN where missing.
    seconds : ndarray of float
        Wall time of each image: its batch's wall time divided by the batch size.
    batch_sizes : list of int
        Size of the batch that made each image (0 where missing).
    fallbacks : list of Fallback
        Every move from a failed generator to another, in the order they happened.
    load_seconds : dict of str to float
        Time spent in each generator's ``load()`` (near 0 when the pipeline was cached).
    failed_loads : dict of str to str
        Generators whose ``load()`` raised in this run, with the error as
        ``"ExceptionType: message"``. Each is loaded at most once per run: after its
        failure it counts as already tried for every prompt, so no fallback goes to it.
    cost_unit : str
        Unit of :attr:`costs`.
    seed : int
        The run seed.
    """

    def __init__(self, prompts: Sequence, planned: Sequence[str], seed: int, cost_unit: str):
        n = len(prompts)
        self.prompts = list(prompts)
        self.planned = list(planned)
        self.seed = seed
        self.cost_unit = cost_unit
        self.images: list = [None] * n
        self.generators: list[str | None] = [None] * n
        self.seeds = [image_seed(seed, i) for i in range(n)]
        self.costs = np.full(n, np.nan)
        self.seconds = np.full(n, np.nan)
        self.batch_sizes = [0] * n
        self.fallbacks: list[Fallback] = []
        self.load_seconds: dict[str, float] = {}
        self.failed_loads: dict[str, str] = {}

    @property
    def missing(self) -> list[int]:
        """Positions of prompts without an image (empty for a complete result)."""
        return [i for i, g in enumerate(self.generators) if g is None]

    @property
    def complete(self) -> bool:
        """Whether every prompt has its image."""
        return not self.missing

    @property
    def total_cost(self) -> float:
        """Sum of the costs of the images made, in :attr:`cost_unit`."""
        return float(np.nansum(self.costs))

    @property
    def total_seconds(self) -> float:
        """Wall time spent making the images (loading and failed attempts excluded)."""
        return float(np.nansum(self.seconds))

    def to_frame(self) -> pd.DataFrame:
        """One row per prompt, in prompt order.

        Columns: prompt, planned_generator, generator, fell_back, seed, cost, seconds,
        batch_size.
        """
        return pd.DataFrame(
            {
                "prompt": self.prompts,
                "planned_generator": self.planned,
                "generator": self.generators,
                "fell_back": [g is not None and g != p for g, p in zip(self.generators, self.planned)],
                "seed": self.seeds,
                "cost": self.costs,
                "seconds": self.seconds,
                "batch_size": self.batch_sizes,
            }
        )

    def save(self, folder: str | os.PathLike, prefix: str = "image", fmt: str = "png") -> list[str]:
        """Save every image as ``{prefix}_{index:04d}_{generator}.{fmt}``; returns the paths.

        Images must be PIL images (or anything with a ``save(path)`` method). In the file
        name, every character of the generator name other than letters, digits, ``.``,
        ``_``, ``+`` and ``-`` becomes ``_`` and runs of dots become one dot, so names such
        as ``"org/model"`` or ``"../x"`` stay inside ``folder`` (``image_0003_org_model.png``).
        """
        os.makedirs(folder, exist_ok=True)
        paths = []
        for i, (image, gen) in enumerate(zip(self.images, self.generators)):
            if image is None:
                continue
            path = os.path.join(os.fspath(folder), f"{prefix}_{i:04d}_{_file_name_part(gen)}.{fmt}")
            image.save(path)
            paths.append(path)
        return paths

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index):  # type: ignore[override]
        return self.images[index]

    def __iter__(self) -> Iterator:
        return iter(self.images)

    def __repr__(self) -> str:
        made: dict[str, int] = {}
        for g in self.generators:
            if g is not None:
                made[g] = made.get(g, 0) + 1
        state = "complete" if self.complete else f"missing={len(self.missing)}"
        return (
            f"GenerationResult(n_images={len(self)}, {state}, fallbacks={len(self.fallbacks)}, "
            f"total_cost={self.total_cost:.4g} {self.cost_unit}, made_by={made})"
        )


class GenerationError(RuntimeError):
    """Generation could not make every image; :attr:`result` holds what was made.

    Attributes
    ----------
    result : GenerationResult
        The partial result (``result.missing`` lists the prompts without an image).
    failures : dict of int to BaseException
        For each failed prompt, the last exception raised for it.
    """

    def __init__(self, message: str, result: GenerationResult, failures: dict[int, BaseException]):
        super().__init__(message)
        self.result = result
        self.failures = failures


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"


def _check_args(seed: Any, batch_size: Any, on_error: Any) -> None:
    _check_non_negative_int(seed, "seed")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {list(ON_ERROR)}, got {on_error!r}")


def generate_plan(
    plan: RoutingPlan,
    seed: int = 0,
    batch_size: int = 8,
    progress: bool = True,
    on_error: str = "fallback",
) -> GenerationResult:
    """Make every image of ``plan``; the engine of :meth:`RoutingPlan.generate <costroute.RoutingPlan.generate>`.

    See :meth:`RoutingPlan.generate <costroute.RoutingPlan.generate>` for the parameters
    and the semantics of seeding and fallbacks. Retries and loading, precisely:

    - A batch that runs out of memory (``MemoryError``, ``torch.cuda.OutOfMemoryError``
      or an "out of memory" message) is retried with half its size after the CUDA cache
      is emptied, and the smaller size stays in force for the rest of that generator's
      prompts in this run.
    - A batch that raises anything else is split in halves, recursively, to isolate the
      prompt(s) that fail alone; the prompts that succeed keep their images, and the
      next batches use the batch size in force before the error. One bad prompt costs
      about ``2 log2(batch_size)`` extra calls, not the batching of the whole group.
    - Each generator's ``load()`` runs once per group. A generator whose ``load()`` raised
      is remembered for the rest of the run (``result.failed_loads``): it counts as
      already tried for every prompt, so no fallback goes to it and it is not loaded again.
    - Nothing is unloaded at the end: :meth:`BackendGenerator.unload` is not called, and
      loaded pipelines stay in :data:`~costroute.generators.pipeline_cache` (at most
      ``pipeline_cache.max_loaded`` of them, least recently used evicted first) for the
      next run. Lower the bound, call ``spec.unload()`` or
      :func:`~costroute.generators.clear_pipeline_cache` to free the memory.
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

    from tqdm.auto import tqdm

    bar = tqdm(total=n, disable=not progress, unit="img", desc="generating")

    def fail(index: int, name: str, exc: BaseException) -> None:
        """Prompt ``index`` failed on ``name`` (alone, or at load): move it on, or record the failure."""
        tried[index].add(name)
        if on_error == "raise":
            failures[index] = exc
            return
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
        else:
            pending.setdefault(target, []).append(index)

    def stop() -> GenerationError:
        bar.close()
        detail = "; ".join(
            f"prompt {i} ({result.generators[i] or 'tried ' + ', '.join(sorted(tried[i]))}): {_describe(e)}"
            for i, e in sorted(failures.items())[:5]
        )
        return GenerationError(
            f"{len(result.missing)} of {n} images could not be made (on_error={on_error!r}); "
            f"e.g. {detail}. The partial result is in .result",
            result,
            failures,
        )

    def run(name: str, spec: BackendGenerator, chunk: list[int]) -> None:
        """One call of ``spec`` on ``chunk``; its images go into ``result`` (raises what the backend raises)."""
        start = time.perf_counter()
        images = list(spec.generate_images([plan.prompts[i] for i in chunk], [result.seeds[i] for i in chunk]))
        if len(images) != len(chunk):
            raise RuntimeError(f"{name!r} returned {len(images)} images for a batch of {len(chunk)}")
        elapsed = time.perf_counter() - start
        for index, image in zip(chunk, images):
            result.images[index] = image
            result.generators[index] = name
            result.costs[index] = spec.cost
            result.seconds[index] = elapsed / len(chunk)
            result.batch_sizes[index] = len(chunk)
        bar.update(len(chunk))

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
            size = batch_size  # lowered for the rest of the group by out-of-memory errors only
            while remaining:
                # a batch, then the halves of whatever part of it fails for another reason than memory
                parts = [remaining[:size]]
                remaining = remaining[size:]
                while parts:
                    part = parts.pop(0)
                    try:
                        run(name, spec, part)
                    except Exception as exc:  # includes torch.cuda.OutOfMemoryError
                        if _is_out_of_memory(exc):
                            free_accelerator_memory()
                            if len(part) > 1:
                                # retry these prompts, and every later one, at half the size
                                size = min(size, (len(part) + 1) // 2)
                                remaining = sorted(part + [i for p in parts for i in p] + remaining)
                                break
                        elif len(part) > 1:
                            half = (len(part) + 1) // 2
                            parts[:0] = [part[:half], part[half:]]
                            continue
                        fail(part[0], name, exc)
                        if failures and on_error == "raise":
                            raise stop() from exc
    finally:
        bar.close()
    if failures:
        raise stop()
    return result
