"""Fixtures for test folders that load models into the shared cache; their conftests import them.

Imported by name (``from model_fixtures import fresh_pipeline_cache, one_torch_thread``), they
apply, being autouse, to that folder only.
"""

from __future__ import annotations

import pytest

from costroute.generators import pipeline_cache


@pytest.fixture(autouse=True)
def fresh_pipeline_cache():
    """Every test starts and ends with an empty model cache and the default bound."""
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
