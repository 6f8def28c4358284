"""Collection fixtures: fast generators and scorers made of plain functions, and a clean model cache per
test (the tiny pipelines and the tiny CLIP model are in tests/conftest.py)."""

from __future__ import annotations

import pytest
from model_fixtures import fresh_pipeline_cache, one_torch_thread  # noqa: F401  (autouse fixtures)

from costroute.generators import CallableGenerator
from costroute.scoring import CallableScorer

from ._helpers import Counting, brightness, redness


@pytest.fixture
def callables():
    """Two counting CallableGenerators (costs 0.5 and 2.0 USD), returned with their counters."""
    counters = {"cheap": Counting(), "dear": Counting()}
    gens = [
        CallableGenerator("cheap", counters["cheap"], cost=0.5),
        CallableGenerator("dear", counters["dear"], cost=2.0),
    ]
    return gens, counters


@pytest.fixture
def bright():
    return CallableScorer("bright", brightness, cost=0.01)


@pytest.fixture
def red():
    return CallableScorer("red", redness, cost=0.02)
