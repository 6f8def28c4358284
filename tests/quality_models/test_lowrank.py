"""LowRankRegressor: exact recovery, missing cells, adding a generator, selection, bad input, router, skops."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from costroute import CostAwareRouter
from costroute.io import load, save
from costroute.quality_models import QUALITY_MODEL_CHOICES, LowRankRegressor, build_quality_model

EXACT = {"alphas": [1e-10], "difficulty_alphas": [1e-10]}


def low_rank_data(n=120, d=8, K=5, r=2, seed=0):
    """Noise-free quality with a known generator mean, difficulty and rank-r interaction."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(r, d))
    V = rng.normal(size=(K, r))
    V -= V.mean(axis=0)
    w, mu = rng.normal(size=d), rng.normal(size=K)

    def truth(X):
        return mu + (X @ w)[:, None] + X @ A.T @ V.T

    X = rng.normal(size=(n, d))
    return X, truth(X), truth, rng


def test_noise_free_low_rank_data_is_recovered_exactly():
    X, Y, truth, rng = low_rank_data()
    model = LowRankRegressor(rank=2, **EXACT).fit(X, Y)
    X_new = rng.normal(size=(30, X.shape[1]))
    np.testing.assert_allclose(model.predict(X), Y, atol=1e-6)
    np.testing.assert_allclose(model.predict(X_new), truth(X_new), atol=1e-6)
    assert model.rank_ == 2 and model.n_iter_ == 1
    # generator means are the column means (features are centred), factors orthonormal and zero-sum
    np.testing.assert_allclose(model.generator_means_, Y.mean(axis=0), atol=1e-9)
    V = model.generator_factors_
    np.testing.assert_allclose(V.T @ V, np.eye(2), atol=1e-9)
    np.testing.assert_allclose(V.sum(axis=0), 0, atol=1e-9)
    # the interaction (double-centred prediction) has rank exactly 2
    P = model.predict(X_new)
    P = P - P.mean(axis=0) - P.mean(axis=1, keepdims=True) + P.mean()
    s = np.linalg.svd(P, compute_uv=False)
    assert s[1] > 1e-3 * s[0] and s[2] < 1e-8 * s[0]


def test_rank_one_fit_of_rank_two_data_keeps_the_leading_interaction():
    X, Y, truth, _ = low_rank_data()
    full = LowRankRegressor(rank=2, **EXACT).fit(X, Y)
    one = LowRankRegressor(rank=1, **EXACT).fit(X, Y)
    # the rank-1 interaction subspace is the leading one of the rank-2 fit
    assert abs(abs(one.generator_factors_[:, 0] @ full.generator_factors_[:, 0]) - 1) < 1e-8
    assert np.abs(one.predict(X) - Y).max() > 1e-3


def test_missing_cells_are_ignored_and_low_rank_truth_recovered():
    X, Y, truth, rng = low_rank_data()
    Ym = Y.copy()
    Ym[rng.random(Y.shape) < 0.3] = np.nan
    model = LowRankRegressor(rank=2, **EXACT).fit(X, Ym)
    assert model.n_iter_ > 1
    X_new = rng.normal(size=(20, X.shape[1]))
    np.testing.assert_allclose(model.predict(X_new), truth(X_new), atol=1e-6)


def test_all_missing_rows_change_nothing():
    """Rows with no rated cell contribute nothing: same fit as dropping them (penalties included)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 6))
    Y = X[:, :4] @ rng.normal(size=(4, 4)) + rng.normal(scale=0.3, size=(60, 4))
    Ym = Y.copy()
    Ym[:10] = np.nan
    params = {"rank": 2, "alphas": [3.0], "difficulty_alphas": [2.0], "tol": 1e-12, "max_iter": 5000}
    dropped = LowRankRegressor(**params).fit(X[10:], Y[10:])
    masked = LowRankRegressor(**params).fit(X, Ym)
    X_new = rng.normal(size=(15, 6))
    np.testing.assert_allclose(masked.predict(X_new), dropped.predict(X_new), atol=1e-6)


def test_blocks_of_sources_share_the_prompt_side():
    """Two sources rating disjoint generators (the pooled layout): truth still recovered on each."""
    X, Y, truth, rng = low_rank_data(n=160, K=6)
    Ym = Y.copy()
    Ym[:80, 3:] = np.nan
    Ym[80:, :3] = np.nan
    model = LowRankRegressor(rank=2, **EXACT).fit(X, Ym)
    X_new = rng.normal(size=(20, X.shape[1]))
    np.testing.assert_allclose(model.predict(X_new), truth(X_new), atol=1e-5)


def test_add_generator_converges_to_the_true_generator_as_m_grows():
    X, Y, truth, rng = low_rank_data(n=300, K=6, seed=1)
    noisy = Y + rng.normal(scale=0.3, size=Y.shape)  # a realistic noise level for the prior
    model = LowRankRegressor(rank=2).fit(X, noisy[:, :5])
    X_new = rng.normal(size=(200, X.shape[1]))
    errors = []
    for m in (5, 20, 80, 300):
        rmse = []
        for _ in range(8):
            rows = rng.permutation(len(X))[:m]
            added = clone(model).fit(X, noisy[:, :5]).add_generator(X[rows], noisy[rows, 5], name="new")
            rmse.append(np.sqrt(np.mean((added.predict(X_new)[:, 5] - truth(X_new)[:, 5]) ** 2)))
            # the other generators are untouched
            np.testing.assert_allclose(added.predict(X_new)[:, :5], model.predict(X_new), atol=1e-12)
        errors.append(np.mean(rmse))
    assert errors == sorted(errors, reverse=True), errors
    assert errors[-1] < 0.3 * errors[0], errors
    # noise-free ratings with a negligible penalty and an exact prompt side: the exact generator
    exact = LowRankRegressor(rank=2, **EXACT).fit(X, Y[:, :5]).add_generator(X[:20], Y[:20, 5], alpha=1e-12)
    np.testing.assert_allclose(exact.predict(X_new)[:, 5], truth(X_new)[:, 5], atol=1e-6)
    assert exact.generator_names_ == ["0", "1", "2", "3", "4", "5"] and exact.n_outputs_ == 6


def test_add_generator_with_one_prompt_gets_the_average_interaction():
    X, Y, _, _ = low_rank_data()
    model = LowRankRegressor(rank=2, **EXACT).fit(X, Y[:, :4]).add_generator(X[:1], Y[:1, 4], name="new")
    np.testing.assert_allclose(model.generator_factors_[-1], model.generator_factors_[:4].mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(model.predict(X[:1])[0, -1], Y[0, 4], atol=1e-9)


def test_inner_cv_picks_a_rank_and_penalties_from_the_candidates():
    X, Y, _, rng = low_rank_data(n=150, K=6, r=1)
    Y = Y + rng.normal(scale=0.05, size=Y.shape)
    model = LowRankRegressor(rank=[1, 3], alphas=[1e-3, 1e3], difficulty_alphas=[1e-3, 1e3], cv=3).fit(X, Y)
    assert model.rank_ == 1 and model.alpha_ == 1e-3 and model.difficulty_alpha_ == 1e-3
    assert len(model.cv_results_["mse"]) == 4 and model.noise_variance_ == min(model.cv_results_["mse"])
    # pure noise: the strongest shrinkage wins
    noise = LowRankRegressor(rank=1, alphas=[1e-3, 1e3], difficulty_alphas=[1e-3, 1e3], cv=3).fit(
        X, rng.normal(size=Y.shape)
    )
    assert noise.alpha_ == 1e3 and noise.difficulty_alpha_ == 1e3


def test_rank_is_capped_at_generators_minus_one():
    X, Y, _, _ = low_rank_data(K=3)
    assert LowRankRegressor(rank=5, **EXACT).fit(X, Y).rank_ == 2
    one = LowRankRegressor(rank=2, **EXACT).fit(X, Y[:, 0])  # one generator: a ridge regression
    assert one.rank_ == 0 and one.predict(X).shape == (len(X),)
    np.testing.assert_allclose(one.predict(X), Y[:, 0], atol=1e-6)


def test_fit_is_deterministic():
    X, Y, _, rng = low_rank_data()
    Y = Y + rng.normal(size=Y.shape)
    Y[rng.random(Y.shape) < 0.2] = np.nan
    a = LowRankRegressor(rank=[1, 2]).fit(X, Y)
    b = LowRankRegressor(rank=[1, 2]).fit(X, Y)
    assert (a.rank_, a.alpha_, a.difficulty_alpha_) == (b.rank_, b.alpha_, b.difficulty_alpha_)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), shift=st.floats(-100, 100), scale=st.floats(0.1, 10))
def test_prediction_is_equivariant_to_affine_changes_of_y(seed, shift, scale):
    """q -> scale·q + shift maps the fit to scale·q̂ + shift (penalties scale with the loss)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 5))
    Y = rng.normal(size=(40, 4))
    Y[rng.random(Y.shape) < 0.2] = np.nan
    Y[0] = 0.0  # every column keeps a rated cell
    params = {"rank": 2, "alphas": [0.5], "difficulty_alphas": [0.5], "tol": 1e-12, "max_iter": 3000}
    base = LowRankRegressor(**params).fit(X, Y).predict(X)
    moved = LowRankRegressor(**params).fit(X, scale * Y + shift).predict(X)
    np.testing.assert_allclose(moved, scale * base + shift, atol=1e-6 * scale * (1 + np.abs(base).max()))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_prediction_is_equivariant_to_generator_order(seed):
    rng = np.random.default_rng(seed)
    X, Y = rng.normal(size=(30, 4)), rng.normal(size=(30, 5))
    perm = rng.permutation(5)
    params = {"rank": 2, "alphas": [1.0], "difficulty_alphas": [1.0]}
    a = LowRankRegressor(**params).fit(X, Y).predict(X)
    b = LowRankRegressor(**params).fit(X, Y[:, perm]).predict(X)
    np.testing.assert_allclose(b, a[:, perm], atol=1e-9)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"rank": 0}, "rank must be"),
        ({"rank": [1, -2]}, "rank must be"),
        ({"rank": 1.5}, "rank must be"),
        ({"alphas": [0.0, 1.0]}, "alphas must be"),
        ({"difficulty_alphas": [np.nan]}, "difficulty_alphas must be"),
        ({"cv": 1}, "cv must be"),
        ({"max_iter": 0}, "max_iter must be"),
        ({"tol": 0}, "tol must be"),
    ],
)
def test_bad_parameters_raise_naming_them(params, message):
    X, Y, _, _ = low_rank_data(n=20)
    with pytest.raises(ValueError, match=message):
        LowRankRegressor(**params).fit(X, Y)


def test_bad_data_raise_naming_the_argument():
    X, Y, _, _ = low_rank_data(n=20)
    Y_empty = Y.copy()
    Y_empty[:, 2] = np.nan
    with pytest.raises(ValueError, match=r"y has no rated cell in column\(s\) \[2\]"):
        LowRankRegressor().fit(X, Y_empty)
    with pytest.raises(ValueError, match=r"y must have shape .* n_samples = 20"):
        LowRankRegressor().fit(X, Y[:10])
    with pytest.raises(ValueError, match="y contains inf"):
        LowRankRegressor().fit(X, np.where(Y > 1, np.inf, Y))
    with pytest.raises(ValueError, match="cv=5 folds need at least 5 prompts"):
        LowRankRegressor().fit(X[:3], Y[:3])
    model = LowRankRegressor(rank=1).fit(X, Y)
    with pytest.raises(ValueError, match="X has 3 features"):
        model.predict(X[:, :3])
    with pytest.raises(ValueError, match="y must be a 1-D array"):
        model.add_generator(X[:5], Y[:4, 0])
    with pytest.raises(ValueError, match="name must be a new generator name"):
        model.add_generator(X[:5], Y[:5, 0], name="0")
    with pytest.raises(ValueError, match="y must be finite"):
        model.add_generator(X[:2], [1.0, np.nan])


def test_router_builds_and_routes_with_lowrank():
    assert "lowrank" in QUALITY_MODEL_CHOICES
    assert isinstance(build_quality_model("lowrank", 3, None), LowRankRegressor)
    X, Y, truth, rng = low_rank_data(n=80, d=4, K=3, r=1)
    costs = {"cheap": 1.0, "mid": 2.0, "big": 4.0}
    router = CostAwareRouter(costs, features=None, quality_model="lowrank", cost_penalty=0.0, random_state=0).fit(X, Y)
    assert isinstance(router.quality_model_, LowRankRegressor)
    X_new = rng.normal(size=(25, 4))
    np.testing.assert_allclose(router.predict_quality(X_new), truth(X_new), atol=1e-2)
    np.testing.assert_array_equal(router.predict(X_new), np.array(list(costs))[truth(X_new).argmax(axis=1)])


def test_skops_round_trip(tmp_path):
    X, Y, _, _ = low_rank_data(n=40, d=4, K=3)
    router = CostAwareRouter({"a": 1.0, "b": 2.0, "c": 3.0}, features=None, quality_model="lowrank").fit(X, Y)
    loaded = load(save(router, tmp_path / "router.skops"))
    np.testing.assert_array_equal(loaded.predict_quality(X), router.predict_quality(X))
    model = LowRankRegressor(rank=1).fit(X, Y).add_generator(X[:5], Y[:5, 0], name="new")
    back = load(save(model, tmp_path / "model.skops"))
    np.testing.assert_array_equal(back.predict(X), model.predict(X))
    assert back.generator_names_ == ["0", "1", "2", "new"]


@parametrize_with_checks([LowRankRegressor(rank=1, alphas=[1.0], difficulty_alphas=[1.0], cv=2)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_a_generator_rated_too_rarely_for_the_inner_folds_is_named():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    Y = rng.normal(size=(40, 3))
    Y[1:, 2] = np.nan  # rated on one prompt: some inner training fold holds none of it
    with pytest.raises(ValueError, match=r"column\(s\) \['2'\] of y are rated on only \[1\] prompt"):
        LowRankRegressor(cv=5).fit(X, Y)


def test_an_unconverged_fit_with_missing_cells_warns():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 4))
    Y = X @ rng.normal(size=(4, 4)) + rng.normal(size=(60, 4))
    Y[rng.random(Y.shape) < 0.3] = np.nan
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        LowRankRegressor(alphas=[1.0], difficulty_alphas=[1.0], cv=2, max_iter=1).fit(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        LowRankRegressor(alphas=[1.0], difficulty_alphas=[1.0], cv=2).fit(X, Y)
