"""Collection fixtures: tiny diffusers pipelines and a tiny CLIP model (real, random weights, built offline
once per session), fast generators and scorers made of plain functions, a clean pipeline cache per test."""

from __future__ import annotations

import pytest

from costroute.generators import CallableGenerator, build_tiny_pipeline, pipeline_cache
from costroute.scoring import CallableScorer, build_tiny_clip

from ._helpers import Counting, brightness, redness


@pytest.fixture
def callables():
    """Two counting CallableGenerators (costs 0.5 and 2.0 USD), returned with their counters."""
    counters = {"cheap": Counting(), "dear": Counting()}
    gens = [CallableGenerator("cheap", counters["cheap"], cost=0.5),
            CallableGenerator("dear", counters["dear"], cost=2.0)]
    return gens, counters


@pytest.fixture
def bright():
    return CallableScorer("bright", brightness, cost=0.01)


@pytest.fixture
def red():
    return CallableScorer("red", redness, cost=0.02)


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory) -> str:
    return build_tiny_pipeline(tmp_path_factory.mktemp("pipelines") / "tiny-sd", kind="sd", seed=0)


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> str:
    return build_tiny_clip(tmp_path_factory.mktemp("scorers") / "tiny-clip", seed=3)


@pytest.fixture(autouse=True)
def fresh_pipeline_cache():
    """Every test starts and ends with an empty model cache and the default bound (emptied only when it holds
    something: emptying collects garbage, which takes a while once torch is loaded)."""
    bound = pipeline_cache.max_loaded
    if pipeline_cache.keys():
        pipeline_cache.clear()
    yield pipeline_cache
    if pipeline_cache.keys():
        pipeline_cache.clear()
    pipeline_cache.max_loaded = bound


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads; on a shared 2-core machine threads slow them down."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
