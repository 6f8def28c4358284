"""Tiny random diffusers pipelines, built offline once per test session; a clean pipeline cache per test."""

from __future__ import annotations

import pytest

from costroute.generators import build_tiny_pipeline, pipeline_cache


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


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared 2-core machine OpenMP threads
    spinning against other processes slow them down many times over."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
