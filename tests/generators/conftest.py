"""A clean pipeline cache per test and one torch thread per module (the tiny pipelines are in tests/conftest.py)."""

from __future__ import annotations

from model_fixtures import fresh_pipeline_cache, one_torch_thread  # noqa: F401  (autouse fixtures)
