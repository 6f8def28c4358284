"""The process-wide LRU of loaded pipelines (no torch needed)."""

import pytest

from costroute.generators import PipelineCache


def test_lru_order_hits_and_eviction():
    cache = PipelineCache(max_loaded=2)
    loads = []

    def loader(tag):
        return lambda: loads.append(tag) or f"pipe-{tag}"

    assert cache.get("a", loader("a")) == "pipe-a"
    assert cache.get("b", loader("b")) == "pipe-b"
    assert cache.get("a", loader("a")) == "pipe-a"  # hit: a becomes most recent
    assert cache.get("c", loader("c")) == "pipe-c"  # evicts b, the least recently used
    assert cache.keys() == ["a", "c"]
    assert loads == ["a", "b", "c"]
    assert (cache.loads, cache.hits, cache.evictions) == (3, 1, 1)
    assert "b" not in cache and len(cache) == 2


def test_lowering_the_bound_evicts_and_info_lists_entries():
    cache = PipelineCache(max_loaded=3)
    for key in "xyz":
        cache.get(key, lambda: object())
    cache.max_loaded = 1
    assert cache.keys() == ["z"]
    info = cache.info()
    assert list(info.columns) == ["key", "pipeline", "load_seconds"]
    assert info["key"].tolist() == ["z"]
    assert cache.evict("z") and not cache.evict("z")
    cache.get("w", lambda: 1)
    cache.clear()
    assert len(cache) == 0 and cache.loads == 0


def test_failed_load_is_not_cached():
    cache = PipelineCache(max_loaded=2)

    def boom():
        raise OSError("no such model")

    with pytest.raises(OSError, match="no such model"):
        cache.get("k", boom)
    assert "k" not in cache and cache.loads == 0
    assert cache.get("k", lambda: "ok") == "ok"


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_bound(bad):
    with pytest.raises(ValueError, match="max_loaded"):
        PipelineCache(max_loaded=bad)
