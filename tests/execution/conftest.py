"""Fixtures for running plans: a clean pipeline cache per test, one torch thread, recording
generators and hand-made plans (the tiny pipelines are in tests/conftest.py)."""

from __future__ import annotations

import pytest
from model_fixtures import fresh_pipeline_cache, one_torch_thread  # noqa: F401  (autouse fixtures)
from plan_helpers import Recorder, make_plan

from costroute.generators import CallableGenerator


@pytest.fixture
def recorder_generators():
    """Three CallableGenerators ("a", "b", "c", costs 1, 2, 3) over Recorders, returned with their recorders."""
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
