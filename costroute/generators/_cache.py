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
        self._lock = threading.RLock()
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
            self._shrink(value)

    def _shrink(self, size: int) -> None:
        evicted = False
        while len(self._entries) > size:
            key, _ = self._entries.popitem(last=False)
            self._load_seconds.pop(key, None)
            self.evictions += 1
            evicted = True
        if evicted:
            free_accelerator_memory()

    def get(self, key: Hashable, loader: Callable[[], Any]) -> Any:
        """The pipeline under ``key``, loading it with ``loader()`` on a miss.

        The entry becomes the most recently used. A miss first evicts down to
        ``max_loaded - 1`` entries so that two large pipelines are never held together
        beyond the bound, then loads. A loader that raises leaves the cache unchanged
        (apart from that eviction).
        """
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key]
            self._shrink(self._max_loaded - 1)
            start = time.perf_counter()
            pipeline = loader()
            self._entries[key] = pipeline
            self._load_seconds[key] = time.perf_counter() - start
            self.loads += 1
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
