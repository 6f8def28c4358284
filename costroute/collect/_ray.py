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
import logging
import math
import numbers
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from ._backend import Backend, UnitResult, WorkUnit

__all__ = ["RayBackend"]

#: Units sent to one actor before its first result is back: the next one waits in the
#: actor's queue while the driver writes the previous result, so the actor is never idle.
_IN_FLIGHT = 2

_INSTALL = "pip install costroute[ray]"

_ADDRESS_FORMS = "'auto', 'HOST:PORT' (the head's GCS port, 6379 by default) or 'ray://HOST:PORT' (Ray Client, 10001)"


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"backend='ray' needs the ray package, which is not installed: {_INSTALL}") from exc
    return ray


# ---------------------------------------------------------------------- the cluster's address
def _split_address(address: str, name: str = "address") -> tuple[str, int]:
    """``(host, port)`` of ``HOST:PORT`` or ``ray://HOST:PORT`` (``[IPV6]:PORT`` too); ``ValueError`` otherwise."""
    text = address.strip()
    rest = text[len("ray://") :] if text.startswith("ray://") else text
    host, sep, port = rest.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or "/" in host or "://" in rest or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{name} must be {_ADDRESS_FORMS}, or None to start a local instance; got {address!r}")
    return host, int(port)


def _cluster_address(address: str | None) -> tuple[str | None, str]:
    """The address ``ray.init(address=address)`` would attach to, and where it comes from.

    ``(None, ...)`` when it would start a local instance. Follows Ray's own lookup: an
    explicit ``HOST:PORT``; else ``RAY_ADDRESS``; else the cluster of the last
    ``ray start`` on this machine (``ray_current_cluster`` in Ray's temporary folder);
    else, for ``'auto'``, a GCS process found running here.
    """
    addr, origin = (address.strip() if address is not None else None), "address"
    env = os.environ.get("RAY_ADDRESS", "").strip()
    if addr in (None, "auto") and env:
        addr, origin = env, "the RAY_ADDRESS environment variable"
    if addr not in (None, "auto"):
        if addr == "local":
            return None, origin
        _split_address(addr, "address" if origin == "address" else "RAY_ADDRESS")
        return addr, origin
    from ray._private import services

    try:
        found = services.get_ray_address_from_environment(addr, None)
    except ConnectionError as exc:  # 'auto', and no cluster runs here
        raise ConnectionError(
            f"address='auto' finds no running Ray cluster on this machine ({exc}); start one "
            "with `ray start --head`, or pass its address as HOST:PORT"
        ) from None
    return found, "the cluster of the last `ray start` on this machine (address='auto' or None)"


def _probe(address: str, origin: str, timeout: float) -> None:
    """Open (and close) a TCP connection to the cluster's ``address`` within ``timeout`` seconds.

    Raises ``ConnectionError`` naming the address, where it came from and what to check.
    """
    host, port = _split_address(address)
    outcome: list = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(exc)

    start = time.monotonic()
    thread = threading.Thread(target=connect, name="costroute-ray-probe", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)  # bounds the host name look-up as well
    if outcome and outcome[0] is None:
        return
    why = f"{type(outcome[0]).__name__}: {outcome[0]}" if outcome else f"no answer within connect_timeout={timeout:g} s"
    raise ConnectionError(
        f"cannot reach the Ray cluster at {address!r} (from {origin}) after {time.monotonic() - start:.1f} s: "
        f"{why}. Check that its head node is running (`ray status --address {host}:{port}` on a machine of the "
        f"cluster; `ray start --head` starts one), that the address is {_ADDRESS_FORMS}, and that this machine "
        "can reach it (firewall); raise connect_timeout (--connect-timeout) for a slow network"
    )


def _current_cluster_file() -> str:
    """Ray's record of the last ``ray start`` here (``/tmp/ray/ray_current_cluster``), found without importing ray."""
    import tempfile

    if "RAY_TMPDIR" in os.environ:
        base = os.environ["RAY_TMPDIR"]
    elif sys.platform.startswith("linux") and "TMPDIR" in os.environ:
        base = os.environ["TMPDIR"]
    elif sys.platform.startswith(("linux", "darwin")):
        base = "/tmp"
    else:
        base = tempfile.gettempdir()
    return os.path.join(base, "ray", "ray_current_cluster")


# ---------------------------------------------------------------------- the local instance's watchdog
class _Watchdog:
    """The driver's end of :mod:`costroute.collect._watchdog`: start it, hand it the Ray processes, say ``done``."""

    def __init__(self, roots: list[int]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "costroute.collect._watchdog", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            text=True,
        )
        self.process.stdin.write(" ".join(str(p) for p in roots) + "\n")
        self.process.stdin.flush()

    @classmethod
    def start(cls, ray: Any) -> _Watchdog | None:
        """A watchdog over the local instance this process started (Linux), else ``None``."""
        if not sys.platform.startswith("linux") or not os.path.isdir("/proc"):
            return None
        node = getattr(getattr(ray, "_private", None), "worker", None)
        node = getattr(node, "_global_node", None)
        roots = [
            info.process.pid
            for infos in getattr(node, "all_processes", {}).values()
            for info in infos
            if getattr(info, "process", None) is not None
        ]
        return cls(roots) if roots else None

    def done(self) -> None:
        """Ray was shut down: the watchdog kills what is left after a grace period, then exits."""
        try:
            self.process.stdin.write("done\n")
            self.process.stdin.close()
        except OSError:
            pass


class _Worker:
    """One actor's state: the runners of the generators it loaded and those that failed to load."""

    def __init__(self) -> None:
        from ._local import LocalBackend

        _quiet_libraries()
        self._backend = LocalBackend()
        self._runners: dict = {}
        self._failed_loads: dict = {}

    def run_unit(self, unit: WorkUnit) -> UnitResult:
        from ..generators import pipeline_cache

        pipeline_cache.max_loaded = max(pipeline_cache.max_loaded, 1 + len(unit.scorers))
        return self._backend._run_unit(unit, self._runners, self._failed_loads)

    def pid(self) -> int:
        return os.getpid()


def _quiet_libraries() -> None:
    """In an actor: drop deprecation notices and log lines below WARNING; every real warning stays.

    Ray copies an actor's stderr to the driver, prefixed with ``(_Worker pid=...)``; without
    this every actor repeats the deprecation notices of torch, diffusers and transformers.
    The libraries' known harmless notices are dropped where models load and run
    (:func:`~costroute.generators._loading.known_notices_filtered`), as in the driver; other
    warnings (a user's, a NaN, memory) and errors still reach the driver.
    """
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category)
    logging.disable(logging.INFO)


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
        the ``RAY_ADDRESS`` environment variable (or of the last ``ray start`` on this
        machine), else a local instance started for the run and shut down after it. An
        instance the run did not start is left running. Before anything is written to the
        store, :meth:`check` opens a TCP connection to the cluster's address: a cluster
        that cannot be reached is a ``ConnectionError`` naming the address, within
        ``connect_timeout`` seconds, instead of Ray's endless retries.
    num_gpus_per_worker : float or None, default=None
        GPUs reserved by each actor. ``None``: 1 when the cluster has GPUs, else 0. A
        fraction (0.5) puts several actors on one GPU.
    num_cpus_per_worker : float, default=1
        CPUs reserved by each actor (also its number of torch threads on CPU).
    max_retries : int, default=2
        Times a unit lost with its actor is sent again before the run stops.
    connect_timeout : float, default=30
        Seconds to wait for the cluster at ``address`` to accept a connection.

    Notes
    -----
    A local instance (``address=None``, no cluster found) is started on 127.0.0.1 without
    the dashboard; a small watchdog process (Linux) kills its processes -- GCS, raylet, the
    agents the raylet starts, the actors -- when the driver ends, also when it is killed
    with ``SIGKILL``, which Ray alone leaves behind (``ray::DashboardAgent``,
    ``ray::RuntimeEnvAgent``). Library warnings and log lines below ``ERROR`` inside the
    actors are dropped (costroute's warnings and every error still reach the driver).

    Examples
    --------
    >>> from costroute.collect import RayBackend, collect
    >>> summary = collect(prompts, generators, scorers, "run.sqlite", seeds=2,
    ...                   backend=RayBackend(address="auto"))                    # doctest: +SKIP
    """

    name = "ray"

    def __init__(
        self,
        num_workers: int | None = None,
        address: str | None = None,
        num_gpus_per_worker: float | None = None,
        num_cpus_per_worker: float = 1,
        max_retries: int = 2,
        connect_timeout: float = 30,
    ) -> None:
        self.num_workers = num_workers
        self.address = address
        self.num_gpus_per_worker = num_gpus_per_worker
        self.num_cpus_per_worker = num_cpus_per_worker
        self.max_retries = max_retries
        self.connect_timeout = connect_timeout

    def __repr__(self) -> str:
        params = (
            "num_workers",
            "address",
            "num_gpus_per_worker",
            "num_cpus_per_worker",
            "max_retries",
            "connect_timeout",
        )
        defaults = (None, None, None, 1, 2, 30)
        shown = [f"{p}={getattr(self, p)!r}" for p, d in zip(params, defaults) if getattr(self, p) != d]
        return f"RayBackend({', '.join(shown)})"

    # ------------------------------------------------------------------ checks
    def check(self) -> None:
        """Check the settings, and that the cluster to attach to can be reached.

        Starts nothing. Unless this process has initialised Ray already, the address the run
        would attach to (``address``, else ``RAY_ADDRESS``, else the last ``ray start``
        here) gets a TCP connection, for at most ``connect_timeout`` seconds.

        Raises
        ------
        ValueError, TypeError
            A bad setting (the message names it), an ``address`` not of the form
            ``'auto'``, ``'HOST:PORT'`` or ``'ray://HOST:PORT'``.
        ImportError
            The ray package is not installed.
        ConnectionError
            No cluster answers at the address (the message names it and what to check).
        """
        n = self.num_workers
        if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1):
            raise ValueError(
                f"num_workers must be a positive integer (actors in the pool) or None (one per GPU, "
                f"else one per CPU), got {n!r}"
            )
        if self.address is not None and (not isinstance(self.address, str) or not self.address.strip()):
            raise TypeError(
                f"address must be a Ray cluster address such as 'auto' or 'HOST:PORT', or None to start "
                f"a local instance, got {type(self.address).__name__}: {self.address!r}"
            )
        if self.address is not None and self.address.strip() not in ("auto", "local"):
            _split_address(self.address)
        t = self.connect_timeout
        if isinstance(t, bool) or not isinstance(t, numbers.Real) or not (math.isfinite(t) and t > 0):
            raise ValueError(f"connect_timeout must be a finite number of seconds > 0, got {t!r}")
        for name, value, least in (
            ("num_gpus_per_worker", self.num_gpus_per_worker, 0),
            ("num_cpus_per_worker", self.num_cpus_per_worker, 0),
        ):
            if value is None and name == "num_gpus_per_worker":
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not value >= least
                or (name == "num_cpus_per_worker" and value == 0)
            ):
                relation = "> 0" if name == "num_cpus_per_worker" else ">= 0 or None"
                raise ValueError(f"{name} must be a number {relation}, got {value!r}")
        r = self.max_retries
        if isinstance(r, bool) or not isinstance(r, numbers.Integral) or r < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {r!r}")
        if importlib.util.find_spec("ray") is None:
            raise ImportError(f"backend='ray' needs the ray package, which is not installed: {_INSTALL}")
        self._reach()

    def _reach(self) -> str | None:
        """The address the run attaches to, probed (``None``: a local instance, or Ray already initialised)."""
        ray = sys.modules.get("ray")
        if ray is not None and getattr(ray, "is_initialized", lambda: False)():
            return None
        if (
            self.address is None
            and not os.environ.get("RAY_ADDRESS", "").strip()
            and not os.path.exists(_current_cluster_file())
        ):
            return None  # a local instance: nothing to reach, and no need to import ray to know it
        address, origin = _cluster_address(self.address)
        if address is not None:
            _probe(address, origin, float(self.connect_timeout))
        return address

    # ------------------------------------------------------------------ the run
    def run(self, units: Iterable[WorkUnit]) -> Iterator[UnitResult]:
        """Run ``units`` on the actor pool, yielding each one's :class:`UnitResult` as it comes back."""
        self.check()
        units = list(units)
        if not units:
            return
        ray = _import_ray()
        started = not ray.is_initialized()
        watchdog = None
        address = self._reach() if started else None
        try:
            if started and address is None:  # a local instance for this run, on loopback, that ends with this process
                ray.init(
                    address="local", include_dashboard=False, _node_ip_address="127.0.0.1", logging_level=logging.ERROR
                )
                watchdog = _Watchdog.start(ray)
            elif started:
                ray.init(address=address, logging_level=logging.ERROR)
            yield from self._run(ray, units)
        finally:
            if started:
                ray.shutdown()
            if watchdog is not None:
                watchdog.done()

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
                "num_gpus_per_worker, or attach to a larger cluster (address=)"
            )
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
                                "pass (pre-empted nodes)"
                            ) from exc
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
