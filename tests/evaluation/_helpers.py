"""Small hand-checked matrices, hypothesis strategies and a lookup router shared by the tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import strategies as st
from sklearn.base import BaseEstimator

# Two prompts, two generators: the cheap one (cost 0.5) and the expensive one (cost 1.0).
#   prompt 0: cheap 1, expensive 3  -> switches to cheap at λ = (3 - 1) / 0.5 = 4
#   prompt 1: cheap 2, expensive 2  -> tie: cheap already at λ = 0
Q2 = np.array([[1.0, 3.0], [2.0, 2.0]])
C2 = np.array([0.5, 1.0])

# points (0.2, 1), (0.4, 0.5), (0.6, 3), c_min = 0.2. Running max: flat 1 until the segment
# 0.4 -> 0.6 (0.5 -> 3) crosses 1 at x = 0.44, up to 3 at 0.6, flat 3 to cost 1.
DIP = ([0.6, 0.2, 0.4], [3.0, 1.0, 0.5])


@st.composite
def problems(draw, ties=False):
    """(predicted quality, true quality, normalised costs) with 1-12 prompts, 1-5 generators."""
    n = draw(st.integers(1, 12))
    k = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if ties:  # 1-5 Likert means of three raters: many exact ties
        Q = rng.integers(3, 16, size=(n, k)) / 3
        pred = rng.integers(3, 16, size=(n, k)) / 3
        c = rng.choice([0.25, 0.5, 1.0], size=k)
    else:
        Q = rng.normal(size=(n, k))
        pred = Q + rng.normal(scale=draw(st.floats(0.0, 3.0)), size=(n, k))
        c = rng.uniform(0.01, 1.0, size=k)
    c = c / c.max()
    return pred, Q, c


class LookupRouter(BaseEstimator):
    """Router with known predictions: ``mode="perfect"`` looks each prompt up in a quality
    table (the oracle), ``mode="mean"`` predicts the training means (a prompt-blind constant)."""

    def __init__(self, table=None, costs=None, names=None, mode="perfect"):
        self.table = table
        self.costs = costs
        self.names = names
        self.mode = mode

    def fit(self, prompts, y):
        y = y[self.names].to_numpy() if isinstance(y, pd.DataFrame) else np.asarray(y)
        self.means_ = y.mean(axis=0)
        self.generator_names_ = list(self.names)
        self.normalized_costs_ = np.asarray(self.costs) / np.max(self.costs)
        self.n_fit_ = len(prompts)
        return self

    def predict_quality(self, prompts):
        if self.mode == "perfect":
            return np.array([self.table[p] for p in prompts])
        return np.tile(self.means_, (len(prompts), 1))


def varied_prompts(n: int) -> list[str]:
    """``n`` distinct prompts of different lengths, colours, counts and spatial words."""
    words = "a red cat sits on the left of two blue chairs under a golden lamp near the window".split()
    return [" ".join(words[: 3 + (7 * i) % (len(words) - 2)]) + f" #{i}" for i in range(n)]


def assert_folds_partition(test_indices, n_prompts: int, cv: int, n_repeats: int) -> None:
    """Every repeat's test folds hold every prompt exactly once; repeats split differently."""
    assert sorted(test_indices) == [(r, f) for r in range(n_repeats) for f in range(cv)]
    partitions = []
    for r in range(n_repeats):
        folds = [np.asarray(test_indices[(r, f)]) for f in range(cv)]
        assert all(len(fold) > 0 for fold in folds)
        counts = np.bincount(np.concatenate(folds), minlength=n_prompts)
        assert counts.shape == (n_prompts,) and (counts == 1).all(), f"repeat {r}: prompt counts {counts}"
        partitions.append({frozenset(fold.tolist()) for fold in folds})
    for r in range(1, n_repeats):
        assert partitions[r] != partitions[0], f"repeat {r} splits the prompts like repeat 0"


class LookupCascade(BaseEstimator):
    """Cascade with known operating points: at λ < 0.5 prompt ``p`` costs ``table[p][0]`` and
    returns quality ``table[p][1]``; at λ >= 0.5 every prompt costs ``low[0]`` with quality
    ``low[1]``. Its own sweep is ``[0, 1]`` on every fold."""

    def __init__(self, table=None, low=(0.2, 1.0)):
        self.table = table
        self.low = low

    def fit(self, prompts, y, scores=None):
        self.n_fit_ = len(prompts)
        return self

    def deferral_points(self, prompts, y, scores, lambdas=None):
        lams = np.array([0.0, 1.0]) if lambdas is None else np.asarray(lambdas, dtype=float)
        t = np.array([self.table[p] for p in prompts])
        costs = np.array([t[:, 0].mean() if lam < 0.5 else self.low[0] for lam in lams])
        quals = np.array([t[:, 1].mean() if lam < 0.5 else self.low[1] for lam in lams])
        return lams, costs, quals
