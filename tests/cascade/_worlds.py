"""Worlds for the cascade tests: posteriors built by hand, and fitted cascades on constructed data."""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import KNeighborsRegressor

from costroute import CascadeRouter, CostAwareRouter
from costroute.cascade import QualityPosterior

COSTS = {"cheap": 1.0, "mid": 4.0, "big": 10.0}
#: normalised costs of COSTS
NC = np.array([0.1, 0.4, 1.0])


def exact_scorer_posterior(spread) -> QualityPosterior:
    """Independent ``Q_k ~ N(q̂_k, e_k²)`` and one scorer that reveals each quality exactly (``S_k = Q_k``)."""
    e = np.asarray(spread, dtype=float)
    K = e.size
    post = QualityPosterior()
    post.n_generators_ = K
    post.n_scorers_ = 1
    post.score_calibration_ = np.tile([0.0, 1.0], (K, 1))  # E[S_k | q̂] = q̂_k
    v = np.diag(e**2)
    post.covariance_ = np.block([[v, v], [v, v]])
    return post


def make_world(n=300, seed=0, noise=0.3):
    """Prompts (one feature), true quality of one image per generator, and a scorer's score.

    The cheap generator is as good as the big one on average but fails on a random third of
    its images: only the image's score can tell which (as in tests/test_cascade.py).
    """
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n, 1))
    base = 3.0 + X[:, 0]
    fail = rng.uniform(size=n) < 1 / 3
    Q = np.c_[
        base - 2.0 * fail + 0.1 * rng.normal(size=n),
        base - 0.8 + 0.1 * rng.normal(size=n),
        base + 0.1 + 0.1 * rng.normal(size=n),
    ]
    S = Q + noise * rng.normal(size=Q.shape)
    return X, Q, S


def router(**params) -> CostAwareRouter:
    return CostAwareRouter(COSTS, features=None, quality_model=KNeighborsRegressor(n_neighbors=25), **params)


def fitted(X, Q, S, **params) -> CascadeRouter:
    params.setdefault("random_state", 0)
    return CascadeRouter(router(), **params).fit(X, Q, scores=S)
