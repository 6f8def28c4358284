"""Process-wide LRU cache of loaded pipelines, kept outside the generator specs.

Specs are cheap descriptions that :func:`sklearn.base.clone` deep-copies, so they never
hold weights. A loaded pipeline lives here instead, under a key such as
``(model, dtype, device)``; specs that differ only in steps, guidance or scheduler share
one entry (SDXL at 4, 25 and 50 steps load one set of weights).
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import pandas as pd

__all__ = ["PipelineCache", "clear_pipeline_cache", "pipeline_cache"]


def free_accelerator_memory() -> None:
    """Collect garbage and return cached CUDA blocks to the driver (no-op without CUDA)."""
    gc.collect()
    torch = sys.modules.get("torch")  # never import torch just to free memory
    if torch is not None:
        try:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:  # pragma: no cover - best effort only
            pass


class _Loading:
    """A load in progress: the thread running it, and the outcome other threads wait for."""

    __slots__ = ("done", "ok", "owner", "pipeline")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False
        self.owner = threading.get_ident()
        self.pipeline: Any = None


class PipelineCache:
    """A bounded, least-recently-used map from a load key to a loaded pipeline.

    Parameters
    ----------
    max_loaded : int, default=2
        Most pipelines held at once. Loading one more evicts the least recently used,
        drops the cache's reference to it and empties the CUDA cache.

    Attributes
    ----------
    loads : int
        Pipelines loaded since the cache was created (misses).
    hits : int
        Look-ups answered without loading.
    evictions : int
        Pipelines dropped to stay within ``max_loaded``.

    Examples
    --------
    >>> from costroute.generators import PipelineCache
    >>> cache = PipelineCache(max_loaded=1)
    >>> cache.get("a", lambda: "pipeline A")
    'pipeline A'
    >>> cache.get("b", lambda: "pipeline B")   # evicts "a"
    'pipeline B'
    >>> cache.keys(), cache.loads, cache.evictions
    (['b'], 2, 1)
    """

    def __init__(self, max_loaded: int = 2):
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._load_seconds: dict[Hashable, float] = {}
        self._loading: dict[Hashable, _Loading] = {}
        self._lock = threading.RLock()  # guards the maps and counters; never held while a loader runs
        self.loads = 0
        self.hits = 0
        self.evictions = 0
        self.max_loaded = max_loaded

    @property
    def max_loaded(self) -> int:
        """Most pipelines held at once; lowering it evicts at once."""
        return self._max_loaded

    @max_loaded.setter
    def max_loaded(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"max_loaded must be an integer >= 1, got {value!r}")
        with self._lock:
            self._max_loaded = value
            evicted = self._shrink(value)
        if evicted:
            free_accelerator_memory()

    def _shrink(self, size: int) -> bool:
        """Evict least recently used entries down to ``size`` (lock held); returns whether any went."""
        evicted = False
        while len(self._entries) > max(size, 0):
            key, _ = self._entries.popitem(last=False)
            self._load_seconds.pop(key, None)
            self.evictions += 1
            evicted = True
        return evicted

    def get(self, key: Hashable, loader: Callable[[], Any]) -> Any:
        """The pipeline under ``key``, loading it with ``loader()`` on a miss.

        The entry becomes the most recently used. A miss first evicts down to
        ``max_loaded`` minus the loads in progress, so that large pipelines are never
        held together beyond the bound, then loads. A loader that raises leaves the cache
        unchanged (apart from that eviction).

        Thread-safe, and ``loader()`` runs *outside* the cache-wide lock: while one thread
        loads a key, other threads get hits and load other keys. A thread asking for a
        key that another thread is loading waits for that load and shares its pipeline
        (one load per key); if that load fails, the waiting thread runs its own loader.
        """
        while True:
            with self._lock:
                if key in self._entries:
                    self._entries.move_to_end(key)
                    self.hits += 1
                    return self._entries[key]
                loading = self._loading.get(key)
                if loading is None:
                    loading = self._loading[key] = _Loading()
                    evicted = self._shrink(self._max_loaded - len(self._loading))
                    break
            if loading.owner == threading.get_ident():
                raise RuntimeError(f"the loader of {key!r} asked the cache for {key!r} again (recursive load)")
            loading.done.wait()
            if loading.ok:
                with self._lock:
                    self.hits += 1
                    if key in self._entries:
                        self._entries.move_to_end(key)
                return loading.pipeline
            # that load failed: try again, as the loader of the key if nobody else is
        if evicted:
            free_accelerator_memory()
        start = time.perf_counter()
        try:
            pipeline = loader()
        except BaseException:
            with self._lock:
                del self._loading[key]
            loading.done.set()
            raise
        with self._lock:
            del self._loading[key]
            self._entries[key] = pipeline
            self._entries.move_to_end(key)
            self._load_seconds[key] = time.perf_counter() - start
            self.loads += 1
            evicted = self._shrink(self._max_loaded)
        loading.pipeline, loading.ok = pipeline, True
        loading.done.set()
        if evicted:
            free_accelerator_memory()
        return pipeline

    def evict(self, key: Hashable) -> bool:
        """Drop ``key`` if present (frees CUDA memory); returns whether it was held."""
        with self._lock:
            if key not in self._entries:
                return False
            del self._entries[key]
            self._load_seconds.pop(key, None)
            self.evictions += 1
        free_accelerator_memory()
        return True

    def clear(self) -> None:
        """Drop every pipeline and reset the counters."""
        with self._lock:
            self._entries.clear()
            self._load_seconds.clear()
            self.loads = self.hits = self.evictions = 0
        free_accelerator_memory()

    def keys(self) -> list:
        """Keys held, least recently used first."""
        with self._lock:
            return list(self._entries)

    def info(self) -> pd.DataFrame:
        """One row per held pipeline (least recently used first): key, class, load seconds."""
        with self._lock:
            rows = [
                {"key": key, "pipeline": type(pipe).__name__, "load_seconds": self._load_seconds.get(key, float("nan"))}
                for key, pipe in self._entries.items()
            ]
        return pd.DataFrame(rows, columns=["key", "pipeline", "load_seconds"])

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return (
            f"PipelineCache(max_loaded={self._max_loaded}, held={len(self)}, loads={self.loads}, "
            f"hits={self.hits}, evictions={self.evictions})"
        )


#: The process-wide cache every :class:`~costroute.generators.DiffusersGenerator` loads through.
pipeline_cache = PipelineCache(max_loaded=2)


def clear_pipeline_cache() -> None:
    """Drop every loaded pipeline held by :data:`pipeline_cache` and free CUDA memory."""
    pipeline_cache.clear()
