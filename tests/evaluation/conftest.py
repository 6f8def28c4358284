"""Fixtures of the evaluation tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ._helpers import LookupRouter


@pytest.fixture
def toy():
    """30 prompts x 3 generators, a perfect and a constant router, costs 0.1 / 0.3 / 1."""
    rng = np.random.default_rng(7)
    n, names = 30, ["cheap", "mid", "best"]
    Q = rng.uniform(1, 5, size=(n, 3)) + np.array([0.0, 0.3, 0.6])
    prompts = [f"prompt {i}" for i in range(n)]
    table = {p: Q[i] for i, p in enumerate(prompts)}
    costs = [1.0, 3.0, 10.0]
    routers = {
        "perfect": LookupRouter(table, costs, names, "perfect"),
        "constant": LookupRouter(table, costs, names, "mean"),
    }
    # columns deliberately in another order than the routers' generator order
    frame = pd.DataFrame(Q, columns=names)[["best", "cheap", "mid"]]
    return prompts, Q, frame, routers, np.array(costs) / 10
