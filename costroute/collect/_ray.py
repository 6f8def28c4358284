"""Run work units on a pool of Ray actors: :class:`RayBackend` (``backend="ray"``).

Each actor is a long-lived worker process that runs units exactly as
:class:`~costroute.collect.LocalBackend` does in the driver (same generator runners, same
scorers, same seeds), and keeps what it loaded in its own
:data:`~costroute.generators.pipeline_cache`; the results come back to the driver, which
alone writes the store. Ray is imported when a run starts, never when costroute is imported.
"""

from __future__ import annotations

import collections
import importlib.util
import numbers
import os
from collections.abc import Iterable, Iterator
from typing import Any

from ._backend import Backend, UnitResult, WorkUnit

__all__ = ["RayBackend"]

#: Units sent to one actor before its first result is back: the next one waits in the
#: actor's queue while the driver writes the previous result, so the actor is never idle.
_IN_FLIGHT = 2

_INSTALL = "pip install costroute[ray]"


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"backend='ray' needs the ray package, which is not installed: {_INSTALL}") from exc
    return ray


class _Worker:
    """One actor's state: the runners of the generators it loaded and those that failed to load."""

    def __init__(self) -> None:
        from ._local import LocalBackend

        self._backend = LocalBackend()
        self._runners: dict = {}
        self._failed_loads: dict = {}

    def run_unit(self, unit: WorkUnit) -> UnitResult:
        from ..generators import pipeline_cache

        pipeline_cache.max_loaded = max(pipeline_cache.max_loaded, 1 + len(unit.scorers))
        return self._backend._run_unit(unit, self._runners, self._failed_loads)

    def pid(self) -> int:
        return os.getpid()


class _Slot:
    """An actor of the pool, the generator it works on, and the units it has not answered yet."""

    def __init__(self, handle: Any, key: Any) -> None:
        self.handle = handle
        self.key = key
        self.in_flight: dict[Any, WorkUnit] = {}


def _group_key(unit: WorkUnit) -> Any:
    if unit.generator is None:
        return None  # saved images to score: any actor, no generator to load
    return unit.generator_key or unit.generator.name


class RayBackend(Backend):
    """Run units on a pool of Ray actors, one per GPU (or ``num_workers`` CPU workers).

    The driver groups the units by generator and gives each actor one generator's units
    for as long as there are some, so that an actor loads a generator's weights once and
    keeps them in its pipeline cache; an actor whose generator has no units left takes the
    generator that the fewest actors work on (the one with most units left among those),
    so actors never sit idle while units wait. Every actor runs its units as
    :class:`LocalBackend` does (:class:`~costroute.execution.BatchRunner`, out-of-memory
    batches halved, per-image failures), so a Ray run stores the same rows as a local run
    on the same arguments: same images and files, same scores, same keys; only the
    measured seconds differ (bit-identical scores need the same device and, on CPU, the
    same number of torch threads: an actor has ``num_cpus_per_worker`` of them).

    When an actor dies (its process killed, a node lost), the units it had not answered
    are sent again to a fresh actor; a unit sent ``1 + max_retries`` times without an
    answer stops the run with a ``RuntimeError``. Only the driver writes the store, one
    transaction per answered unit, so the store never holds a duplicate or loses a unit.

    Parameters
    ----------
    num_workers : int or None, default=None
        Actors in the pool. ``None``: one per GPU of the cluster when it has GPUs, else one
        per ``num_cpus_per_worker`` CPUs; never more than there are units.
    address : str or None, default=None
        The Ray cluster to attach to (``"auto"``, ``"HOST:PORT"``, ``"ray://HOST:PORT"``).
        ``None``: the Ray instance this process already initialised, else the cluster of
        the ``RAY_ADDRESS`` environment variable, else a local instance started for the
        run and shut down after it. An instance the run did not start is left running.
    num_gpus_per_worker : float or None, default=None
        GPUs reserved by each actor. ``None``: 1 when the cluster has GPUs, else 0. A
        fraction (0.5) puts several actors on one GPU.
    num_cpus_per_worker : float, default=1
        CPUs reserved by each actor (also its number of torch threads on CPU).
    max_retries : int, default=2
        Times a unit lost with its actor is sent again before the run stops.

    Examples
    --------
    >>> from costroute.collect import RayBackend, collect
    >>> summary = collect(prompts, generators, scorers, "run.sqlite", seeds=2,
    ...                   backend=RayBackend(address="auto"))                    # doctest: +SKIP
    """

    name = "ray"

    def __init__(self, num_workers: int | None = None, address: str | None = None,
                 num_gpus_per_worker: float | None = None, num_cpus_per_worker: float = 1,
                 max_retries: int = 2) -> None:
        self.num_workers = num_workers
        self.address = address
        self.num_gpus_per_worker = num_gpus_per_worker
        self.num_cpus_per_worker = num_cpus_per_worker
        self.max_retries = max_retries

    def __repr__(self) -> str:
        params = ("num_workers", "address", "num_gpus_per_worker", "num_cpus_per_worker", "max_retries")
        defaults = (None, None, None, 1, 2)
        shown = [f"{p}={getattr(self, p)!r}" for p, d in zip(params, defaults) if getattr(self, p) != d]
        return f"RayBackend({', '.join(shown)})"

    # ------------------------------------------------------------------ checks
    def check(self) -> None:
        """Raise ``ValueError``/``TypeError`` for a bad setting, ``ImportError`` when ray is missing.

        Imports nothing and starts nothing.
        """
        n = self.num_workers
        if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1):
            raise ValueError(f"num_workers must be a positive integer (actors in the pool) or None (one per GPU, "
                             f"else one per CPU), got {n!r}")
        if self.address is not None and (not isinstance(self.address, str) or not self.address.strip()):
            raise TypeError(f"address must be a Ray cluster address such as 'auto' or 'HOST:PORT', or None to start "
                            f"a local instance, got {type(self.address).__name__}: {self.address!r}")
        for name, value, least in (("num_gpus_per_worker", self.num_gpus_per_worker, 0),
                                   ("num_cpus_per_worker", self.num_cpus_per_worker, 0)):
            if value is None and name == "num_gpus_per_worker":
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= least \
                    or (name == "num_cpus_per_worker" and value == 0):
                relation = "> 0" if name == "num_cpus_per_worker" else ">= 0 or None"
                raise ValueError(f"{name} must be a number {relation}, got {value!r}")
        r = self.max_retries
        if isinstance(r, bool) or not isinstance(r, numbers.Integral) or r < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {r!r}")
        if importlib.util.find_spec("ray") is None:
            raise ImportError(f"backend='ray' needs the ray package, which is not installed: {_INSTALL}")

    # ------------------------------------------------------------------ the run
    def run(self, units: Iterable[WorkUnit]) -> Iterator[UnitResult]:
        """Run ``units`` on the actor pool, yielding each one's :class:`UnitResult` as it comes back."""
        self.check()
        units = list(units)
        if not units:
            return
        ray = _import_ray()
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address)
        try:
            yield from self._run(ray, units)
        finally:
            if started:
                ray.shutdown()

    def _pool_size(self, ray: Any, n_units: int) -> tuple[int, float]:
        resources = ray.cluster_resources()
        gpus, cpus = float(resources.get("GPU", 0)), float(resources.get("CPU", 0))
        per_gpu = self.num_gpus_per_worker
        if per_gpu is None:
            per_gpu = 1 if gpus > 0 else 0
        n = self.num_workers
        if n is None:
            n = int(gpus // per_gpu) if per_gpu > 0 else int(cpus // self.num_cpus_per_worker)
            n = max(1, min(n, n_units))
        if n * per_gpu > gpus + 1e-9 or n * self.num_cpus_per_worker > cpus + 1e-9:
            raise ValueError(
                f"num_workers={n} actors of {self.num_cpus_per_worker} CPU(s) and {per_gpu} GPU(s) each do not fit in "
                f"the Ray cluster ({cpus:g} CPUs, {gpus:g} GPUs): lower num_workers, num_cpus_per_worker or "
                "num_gpus_per_worker, or attach to a larger cluster (address=)")
        return min(n, n_units), float(per_gpu)

    def _run(self, ray: Any, units: list[WorkUnit]) -> Iterator[UnitResult]:
        from ray.exceptions import RayActorError

        n_workers, per_gpu = self._pool_size(ray, len(units))
        worker = ray.remote(_Worker).options(num_cpus=self.num_cpus_per_worker, num_gpus=per_gpu, max_restarts=0)
        pool = _Pool(units, [worker.remote() for _ in range(n_workers)])
        try:
            pool.fill()
            while pool.pending:
                [ref], _ = ray.wait(list(pool.pending), num_returns=1)
                slot = pool.pending.pop(ref)
                unit = slot.in_flight.pop(ref)
                try:
                    result = ray.get(ref)
                except RayActorError as exc:
                    lost = pool.requeue(slot, unit)
                    for u in sorted(lost, key=lambda u: u.id):
                        if pool.sent[u.id] > self.max_retries:
                            what = f"generator {u.generator.name!r}" if u.generator is not None else "saved images"
                            raise RuntimeError(
                                f"unit {u.id} ({len(u)} images of {what}) was lost with its Ray actor "
                                f"{pool.sent[u.id]} times (max_retries={self.max_retries}); the last time: "
                                f"{type(exc).__name__}: {exc}. The units finished before are in the store: run "
                                "collect again to resume, with max_retries raised if actors die for reasons that "
                                "pass (pre-empted nodes)") from exc
                    ray.kill(slot.handle)
                    slot.handle = worker.remote()  # a fresh actor, on the same generator
                    pool.fill()
                    continue
                yield result
                pool.fill(slot)
        finally:
            for slot in pool.slots:
                ray.kill(slot.handle)


class _Pool:
    """Which actor runs which unit: units grouped by generator, at most ``_IN_FLIGHT`` per actor."""

    def __init__(self, units: list[WorkUnit], handles: list[Any]) -> None:
        self.groups: dict[Any, collections.deque] = {}
        for unit in units:
            self.groups.setdefault(_group_key(unit), collections.deque()).append(unit)
        self.slots = [_Slot(handle, None) for handle in handles]
        self.pending: dict[Any, _Slot] = {}  # object ref -> the actor computing it
        self.sent: collections.Counter = collections.Counter()  # unit id -> times sent

    def _next_group(self, slot: _Slot) -> Any:
        """The actor's generator while it has units; else the one the fewest actors serve (most units first)."""
        if self.groups.get(slot.key):
            return slot.key
        served = collections.Counter(s.key for s in self.slots if s is not slot)
        waiting = [k for k, q in self.groups.items() if q]
        return min(waiting, key=lambda k: (served[k], -len(self.groups[k])), default=_NONE)

    def fill(self, slot: _Slot | None = None) -> None:
        """Send units to ``slot`` (every actor when ``None``) until it has ``_IN_FLIGHT`` or none are left."""
        for s in self.slots if slot is None else [slot]:
            while len(s.in_flight) < _IN_FLIGHT:
                key = self._next_group(s)
                if key is _NONE:
                    break
                s.key = key
                unit = self.groups[key].popleft()
                self.sent[unit.id] += 1
                ref = s.handle.run_unit.remote(unit)
                s.in_flight[ref] = unit
                self.pending[ref] = s

    def requeue(self, slot: _Slot, unit: WorkUnit) -> list[WorkUnit]:
        """The dead actor's unanswered units (``unit`` and the others) back at the head of their groups."""
        lost = [unit, *slot.in_flight.values()]
        for ref in slot.in_flight:
            self.pending.pop(ref, None)
        slot.in_flight.clear()
        for u in sorted(lost, key=lambda u: u.id, reverse=True):
            self.groups[_group_key(u)].appendleft(u)
        return lost


_NONE = object()  # no units left
