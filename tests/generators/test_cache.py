"""The process-wide LRU of loaded pipelines (no torch needed)."""

import threading
import time

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


# ------------------------------------------------------------------ threads
def run_in_thread(fn):
    """Start ``fn`` in a daemon thread; returns the thread and a dict that gets its result or error."""
    out = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            out["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def test_a_slow_load_does_not_block_other_keys():
    cache = PipelineCache(max_loaded=3)
    cache.get("fast", lambda: "pipe-fast")
    started, release = threading.Event(), threading.Event()

    def slow():
        started.set()
        assert release.wait(10)
        return "pipe-slow"

    loader, slow_out = run_in_thread(lambda: cache.get("slow", slow))
    try:
        assert started.wait(10)
        # while "slow" loads: a hit on another key, and a load of a third key, return at once
        hit, hit_out = run_in_thread(lambda: cache.get("fast", lambda: "reloaded"))
        hit.join(5)
        other, other_out = run_in_thread(lambda: cache.get("other", lambda: "pipe-other"))
        other.join(5)
        assert not hit.is_alive() and hit_out == {"value": "pipe-fast"}
        assert not other.is_alive() and other_out == {"value": "pipe-other"}
        assert "slow" not in cache
    finally:
        release.set()
        loader.join(10)
    assert slow_out == {"value": "pipe-slow"}
    assert cache.keys() == ["fast", "other", "slow"] and (cache.loads, cache.hits) == (3, 1)


def test_two_threads_asking_for_one_key_load_it_once():
    cache = PipelineCache(max_loaded=2)
    calls, started, release = [], threading.Event(), threading.Event()

    def loader():
        calls.append(threading.get_ident())
        started.set()
        assert release.wait(10)
        return object()

    first, first_out = run_in_thread(lambda: cache.get("k", loader))
    assert started.wait(10)
    second, second_out = run_in_thread(lambda: cache.get("k", loader))
    time.sleep(0.05)  # let the second thread reach the wait for the load in progress
    release.set()
    first.join(10)
    second.join(10)
    assert len(calls) == 1 and first_out["value"] is second_out["value"]
    assert (cache.loads, cache.hits, cache.keys()) == (1, 1, ["k"])


def test_a_waiting_thread_loads_itself_when_the_load_it_waited_for_fails():
    cache = PipelineCache(max_loaded=2)
    started, release = threading.Event(), threading.Event()

    def failing():
        started.set()
        assert release.wait(10)
        raise OSError("flaky disk")

    first, first_out = run_in_thread(lambda: cache.get("k", failing))
    assert started.wait(10)
    second, second_out = run_in_thread(lambda: cache.get("k", lambda: "pipe-k"))
    time.sleep(0.05)
    release.set()
    first.join(10)
    second.join(10)
    assert isinstance(first_out["error"], OSError) and second_out == {"value": "pipe-k"}
    assert cache.keys() == ["k"] and cache.loads == 1


def test_concurrent_loads_stay_within_the_bound():
    cache = PipelineCache(max_loaded=2)
    cache.get("old", lambda: "pipe-old")
    held, together, recorded = [], threading.Barrier(2, timeout=10), threading.Barrier(2, timeout=10)

    def loader(tag):
        def load():
            together.wait()  # both loads in progress
            held.append(len(cache) + 2)  # pipelines held plus the two being loaded
            recorded.wait()
            return f"pipe-{tag}"

        return load

    threads = [run_in_thread(lambda tag=tag: cache.get(tag, loader(tag))) for tag in "ab"]
    for thread, _ in threads:
        thread.join(10)
    assert [out for _, out in threads] == [{"value": "pipe-a"}, {"value": "pipe-b"}]
    # "old" was evicted before the two loads ran side by side: never more than 2 pipelines at once
    assert held == [2, 2] and sorted(cache.keys()) == ["a", "b"] and cache.evictions == 1


def test_a_loader_asking_for_its_own_key_fails_instead_of_deadlocking():
    cache = PipelineCache(max_loaded=2)
    with pytest.raises(RuntimeError, match="recursive load"):
        cache.get("k", lambda: cache.get("k", lambda: "never"))
    assert "k" not in cache and cache.get("k", lambda: "ok") == "ok"
