"""Tiny random diffusers pipelines, built offline once per test session, and test helpers."""

from __future__ import annotations

import numpy as np
import pytest

from costroute import GeneratorRegistry, RoutingPlan
from costroute.generators import CallableGenerator, build_tiny_pipeline, pipeline_cache


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory) -> str:
    """Folder of a tiny StableDiffusionPipeline (64x64 images, random weights)."""
    return build_tiny_pipeline(tmp_path_factory.mktemp("pipelines") / "tiny-sd", kind="sd", seed=0)


@pytest.fixture(scope="session")
def tiny_sdxl(tmp_path_factory) -> str:
    """Folder of a tiny StableDiffusionXLPipeline (two CLIP encoders, text_time conditioning)."""
    return build_tiny_pipeline(tmp_path_factory.mktemp("pipelines") / "tiny-sdxl", kind="sdxl", seed=1)


@pytest.fixture(autouse=True)
def fresh_pipeline_cache():
    """Every test starts and ends with an empty cache and the default bound."""
    bound = pipeline_cache.max_loaded
    pipeline_cache.clear()
    yield pipeline_cache
    pipeline_cache.clear()
    pipeline_cache.max_loaded = bound


class Recorder:
    """fn(prompts, seeds) -> labels "prompt|seed", failing on demand, recording every call."""

    def __init__(self, tag: str, fail_on=None, max_batch: int | None = None):
        self.tag = tag
        self.fail_on = fail_on or (lambda prompt: False)
        self.max_batch = max_batch
        self.calls: list[list] = []

    def __call__(self, prompts, seeds):
        self.calls.append(list(prompts))
        if self.max_batch is not None and len(prompts) > self.max_batch:
            raise MemoryError(f"simulated out of memory at batch size {len(prompts)}")
        bad = [p for p in prompts if self.fail_on(p)]
        if bad:
            raise RuntimeError(f"{self.tag} cannot draw {bad}")
        return [f"{self.tag}|{p}|{s}" for p, s in zip(prompts, seeds)]


def make_plan(prompts, assignments, generators, quality=None, cost_penalty: float = 0.0) -> RoutingPlan:
    """A RoutingPlan built by hand; ``quality`` defaults to preferring the assigned generator."""
    registry = generators if isinstance(generators, GeneratorRegistry) else GeneratorRegistry(generators)
    n, k = len(prompts), len(registry)
    if quality is None:
        quality = np.tile(np.linspace(1.0, 0.0, k), (n, 1))
        quality[np.arange(n), assignments] = 2.0
    return RoutingPlan(prompts, assignments, registry, quality, cost_penalty)


@pytest.fixture
def recorder_generators():
    """Three CallableGenerators ("a", "b", "c") over Recorders, returned with their recorders."""
    recs = {name: Recorder(name) for name in "abc"}
    gens = [CallableGenerator(name, recs[name], cost=float(i + 1), cost_unit="flops") for i, name in enumerate("abc")]
    return gens, recs


@pytest.fixture(name="make_plan")
def make_plan_fixture():
    """The :func:`make_plan` helper."""
    return make_plan


@pytest.fixture(name="Recorder")
def recorder_class():
    """The :class:`Recorder` helper class."""
    return Recorder


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared 2-core machine OpenMP threads
    spinning against other processes slow them down many times over."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
