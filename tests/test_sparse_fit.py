"""Fitting on sparse quality matrices (NaN where no image was made): the low-rank router, the cascade over it,
and the pairwise-complete covariance of the cascade's quality/score model."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.covariance import LedoitWolf
from sklearn.neighbors import KNeighborsRegressor

from costroute import CascadeRouter, CostAwareRouter
from costroute.cascade import QualityPosterior
from costroute.cascade._posterior import MIN_PAIRS, pairwise_covariance
from costroute.quality_models import LowRankRegressor

COSTS = {"a": 1.0, "b": 2.0, "c": 4.0, "d": 8.0}
NAMES = list(COSTS)


def low_rank_world(n, seed=0, d=8, noise=0.2):
    """Features, noise-free quality (means + difficulty + a rank-2 interaction) and measured quality."""
    rng = np.random.default_rng(seed)
    world = np.random.default_rng(12345)  # the same generators for every sample
    w, A, V = world.normal(size=d) * 0.3, world.normal(size=(d, 2)) / np.sqrt(d), world.normal(size=(4, 2))
    X = rng.normal(size=(n, d))
    truth = 3.0 + (X @ w)[:, None] + (X @ A) @ V.T + np.array([0.0, 0.2, 0.4, 0.6])
    return X, truth, truth + noise * rng.normal(size=truth.shape)


def sparse(Y, missing, seed=1):
    """``Y`` with a fraction ``missing`` of its cells set to NaN at random."""
    return np.where(np.random.default_rng(seed).uniform(size=Y.shape) < missing, np.nan, Y)


def lowrank_router(**params):
    return CostAwareRouter(COSTS, features=None, quality_model="lowrank", **params)


# ---------------------------------------------------------------- the low-rank router
@pytest.fixture(scope="module")
def fitted_pair():
    X, _, Y = low_rank_world(300)
    Ys = sparse(Y, 0.6)
    assert 0.55 < np.isnan(Ys).mean() < 0.65
    return lowrank_router().fit(X, Y), lowrank_router().fit(X, Ys), Ys


def test_a_lowrank_router_on_60_percent_missing_cells_recovers_the_dense_routing(fitted_pair):
    dense, sparse_fit, _ = fitted_pair
    X, truth, _ = low_rank_world(500, seed=7)  # held-out prompts
    predicted = sparse_fit.predict_quality(X)
    # tolerance: predicted quality correlates > 0.95 with the noise-free truth (the dense fit reaches ~0.999)
    assert np.corrcoef(predicted.ravel(), truth.ravel())[0, 1] > 0.95
    assert np.abs(predicted - dense.predict_quality(X)).mean() < 0.1
    for lam in (0.0, 0.3, 1.0):
        routed = sparse_fit.route(X, cost_penalty=lam).assignments
        # tolerance: >= 90 % of the prompts routed as the dense fit routes them, and the routed true
        # quality within 0.02 of the dense fit's
        assert (routed == dense.route(X, cost_penalty=lam).assignments).mean() >= 0.9
        rows = np.arange(len(X))
        assert truth[rows, routed].mean() >= truth[rows, dense.route(X, cost_penalty=lam).assignments].mean() - 0.02


def test_everything_that_uses_predictions_works_after_a_sparse_fit(fitted_pair):
    _, router, Ys = fitted_pair
    X, truth, _ = low_rank_world(200, seed=3)
    plan = router.route(X, budget=0.4)
    assert plan.mean_normalized_cost <= 0.4 + 1e-12 and plan.budget == 0.4
    assert set(router.predict(X)) <= set(NAMES)
    quality, cost = router.set_params(budget=0.4).routing_outcome(X, truth)
    assert cost <= 0.4 + 1e-12 and np.isfinite(quality)
    assert np.isfinite(router.score(X, truth))
    router.set_params(budget=None)
    # y may be NaN in cells the routing does not choose, never in a chosen one
    chosen = router.route(X).assignments
    others = np.where(np.arange(4)[None, :] == chosen[:, None], truth, np.nan)
    assert router.routing_outcome(X, others)[0] == pytest.approx(router.routing_outcome(X, truth)[0])
    with pytest.raises(ValueError, match=r"y is NaN at the generator this router chooses for 200 of 200 prompt\(s\)"):
        router.routing_outcome(X, np.where(np.isnan(others), truth, np.nan))


def test_a_dataframe_y_and_a_lowrank_regressor_instance_fit_missing_cells(fitted_pair):
    _, reference, _ = fitted_pair
    X, _, Y = low_rank_world(300)
    Ys = pd.DataFrame(sparse(Y, 0.6), columns=NAMES)[NAMES[::-1]]  # columns in another order
    by_name = lowrank_router().fit(X, Ys)
    np.testing.assert_allclose(by_name.predict_quality(X), reference.predict_quality(X), rtol=0, atol=1e-12)
    instance = CostAwareRouter(COSTS, features=None, quality_model=LowRankRegressor(rank=2, cv=3)).fit(X, Ys)
    assert instance.quality_model_.generator_names_ == NAMES
    assert np.isfinite(instance.predict_quality(X)).all()


def test_a_generator_with_no_measured_cell_is_named():
    X, _, Y = low_rank_world(60)
    Y[:, 2] = np.nan
    with pytest.raises(ValueError, match=r"y has no measured \(non-NaN\) cell for generator\(s\) \['c'\]"):
        lowrank_router().fit(X, sparse(Y, 0.3))


@pytest.mark.parametrize("model", ["knn", "ridge", KNeighborsRegressor(3)])
def test_other_quality_models_refuse_missing_cells_and_name_lowrank(model):
    X, _, Y = low_rank_world(60)
    with pytest.raises(ValueError, match=r"y contains NaN or inf at \d+ cell\(s\).*use quality_model=\"lowrank\""):
        CostAwareRouter(COSTS, features=None, quality_model=model).fit(X, sparse(Y, 0.3))


# ---------------------------------------------------------------- the cascade over it
def served_world(n, seed):
    """Quality and two scorers' scores of 3 generators; each prompt served by one generator, 40 % by two."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    base = 3.0 + 0.5 * X[:, :1]
    Q = (
        base
        + np.c_[
            -1.5 * (rng.uniform(size=n) < 1 / 3) + 0.1 * rng.normal(size=n),
            -0.5 + 0.3 * X[:, 1] + 0.1 * rng.normal(size=n),
            0.2 + 0.1 * rng.normal(size=n),
        ]
    )
    S, S2 = Q + 0.3 * rng.normal(size=Q.shape), Q + 0.6 * rng.normal(size=Q.shape)
    served = np.zeros(Q.shape, bool)
    first = rng.integers(0, 3, size=n)
    served[np.arange(n), first] = True
    again = np.flatnonzero(rng.uniform(size=n) < 0.4)
    served[again, (first[again] + 1) % 3] = True
    return X, Q, S, S2, served


CASCADE_COSTS = {"cheap": 1.0, "mid": 4.0, "big": 10.0}


def cascade(**params):
    router = CostAwareRouter(CASCADE_COSTS, features=None, quality_model="lowrank")
    params = {"cost_penalty": 0.5, "random_state": 0, **params}
    return CascadeRouter(router, **params)


def test_a_cascade_fits_on_sparse_quality_and_scores_and_simulates():
    X, Q, S, _, served = served_world(400, seed=0)
    Xt, Qt, St, _, _ = served_world(300, seed=1)
    hide = lambda M: np.where(served, M, np.nan)  # noqa: E731
    fitted = cascade(scoring_cost=0.05).fit(X, hide(Q), scores=hide(S))
    dense = cascade(scoring_cost=0.05).fit(X, Q, scores=S)
    cov = fitted.posterior_.covariance_
    assert cov.shape == (6, 6) and np.allclose(cov, cov.T) and np.linalg.eigvalsh(cov).min() > 0
    # a score still tells about its own image: Corr(Q_k, S_k) is large, as on the dense data
    corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    assert corr[0, 3] > 0.6 and dense.posterior_.covariance_[0, 3] > 0
    out = fitted.simulate(Xt, Qt, St)
    utility = out.mean_quality - 0.5 * out.mean_cost
    quality, cost = fitted.router_.set_params(cost_penalty=0.5).routing_outcome(Xt, Qt)
    held_out_dense = dense.simulate(Xt, Qt, St)
    # tolerance: at lambda = 0.5 the sparse-fitted cascade beats its plain router by > 0.05 in quality - lambda
    # cost on held-out prompts (about 0.1 here) and is within 0.05 of the cascade fitted on the dense matrices
    assert utility > quality - 0.5 * cost + 0.05
    assert utility > held_out_dense.mean_quality - 0.5 * held_out_dense.mean_cost - 0.05
    # simulate's scores may be NaN where the policy never asks
    asked = out.scored_by.any(axis=2)
    same = fitted.simulate(Xt, Qt, np.where(asked, St, np.nan))
    np.testing.assert_array_equal(same.returned, out.returned)
    budgeted = fitted.simulate(Xt, Qt, St, budget=0.5)
    assert budgeted.mean_cost <= 0.5 + 1e-9


def test_a_cascade_with_two_sparse_scorers_fits_and_simulates():
    X, Q, S, S2, served = served_world(400, seed=0)
    Xt, Qt, St, S2t, _ = served_world(200, seed=2)
    only_first = served & (np.arange(3)[None, :] == served.argmax(axis=1)[:, None])  # the second scorer: less
    scores = {"fast": np.where(served, S, np.nan), "slow": np.where(only_first, S2, np.nan)}
    fitted = cascade(scoring_cost=[0.05, 0.01]).fit(X, np.where(served, Q, np.nan), scores=scores)
    cov = fitted.posterior_.covariance_
    assert fitted.scorer_names_ == ["fast", "slow"] and cov.shape == (9, 9)
    assert np.allclose(cov, cov.T) and np.linalg.eigvalsh(cov).min() > -1e-12
    out = fitted.simulate(Xt, Qt, {"fast": St, "slow": S2t})
    assert len(out.returned) == 200 and np.isfinite(out.quality).all()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # a generator on 2 prompts
def test_a_cascade_names_what_is_measured_too_rarely():
    X, Q, S, _, served = served_world(200, seed=0)
    S = np.where(served, S, np.nan)
    S[:, 1] = np.nan
    S[5, 1] = 3.0
    with pytest.raises(ValueError, match=r"measured on fewer: 'scorer' scores of 'mid'"):
        cascade().fit(X, np.where(served, Q, np.nan), scores=S)
    # two measured prompts: the coverage holds, but a training fold of the out-of-fold routers lacks them
    Q = np.where(served, Q, np.nan)
    two = np.flatnonzero(served[:, 1])[:2]
    Q[:, 1], S[:, 1] = np.nan, np.nan
    Q[two, 1], S[two, 1] = 3.0, 3.5
    with pytest.raises(ValueError, match=r"the router fitted on training fold \d of cv=5 .*\['mid'\]"):
        cascade().fit(X, Q, scores=S)
    with pytest.raises(ValueError, match=r"use quality_model=\"lowrank\""):
        CascadeRouter(CostAwareRouter(CASCADE_COSTS, features=None, quality_model="ridge")).fit(
            X, np.where(served, Q, np.nan), scores=S
        )


# ---------------------------------------------------------------- the covariance estimator
def todays_posterior(P, Q, S):
    """The complete-data fit as it is without missing cells: least-squares calibration per score cell, then
    Ledoit-Wolf on residuals standardised by their std, two scorers' scores of one image left unshrunk."""
    n, K, M = S.shape
    S = S.transpose(0, 2, 1).reshape(n, M * K)
    calibration = []
    for j in range(M * K):
        x, y = P[:, j % K], S[:, j]
        xc = x - x.mean()
        b = float(xc @ (y - y.mean())) / float(xc @ xc)
        calibration.append((float(y.mean() - b * x.mean()), b))
    c, d = np.array(calibration).T
    R = np.concatenate([Q - P, S - (c + d * np.tile(P, (1, M)))], axis=1)
    scale = R.std(axis=0)
    Z = R / scale
    corr = LedoitWolf(assume_centered=True).fit(Z).covariance_
    for k in range(K):
        cells = [K + m * K + k for m in range(M)]
        for i in cells:
            for j in cells:
                if i != j:
                    corr[i, j] = Z[:, i] @ Z[:, j] / n
    return np.array(calibration), corr * scale[:, None] * scale[None, :]


@pytest.mark.parametrize("scorers", [1, 2])
def test_dense_data_give_exactly_todays_posterior(scorers):
    X, Q, S, S2, _ = served_world(300, seed=4)
    P = Q + 0.4 * np.random.default_rng(5).normal(size=Q.shape)  # stands for out-of-fold predictions
    cube = np.stack([S, S2][:scorers], axis=2)
    calibration, covariance = todays_posterior(P, Q, cube)
    post = QualityPosterior().fit(P, Q, cube if scorers > 1 else S)
    np.testing.assert_allclose(post.score_calibration_, calibration, rtol=0, atol=1e-12)
    np.testing.assert_allclose(post.covariance_, covariance, rtol=0, atol=1e-12)
    # the pairwise estimator itself reduces to Ledoit-Wolf on complete data
    Z = np.random.default_rng(6).normal(size=(80, 7)) @ np.random.default_rng(7).normal(size=(7, 7))
    np.testing.assert_allclose(
        pairwise_covariance(Z), LedoitWolf(assume_centered=True).fit(Z).covariance_, rtol=0, atol=1e-12
    )


def test_the_pairwise_covariance_recovers_a_covariance_from_half_missing_data():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 6))
    truth = A @ A.T / 6
    Z = rng.multivariate_normal(np.zeros(6), truth, size=4000)
    estimate = pairwise_covariance(np.where(rng.uniform(size=Z.shape) < 0.5, np.nan, Z))
    assert np.abs(estimate - truth).max() < 0.1 * np.abs(truth).max()
    assert np.linalg.eigvalsh(estimate).min() > 0


def test_pairs_seen_together_too_rarely_are_uncorrelated():
    rng = np.random.default_rng(1)
    Z = rng.multivariate_normal(np.zeros(3), [[1, 0.9, 0.5], [0.9, 1, 0.5], [0.5, 0.5, 1]], size=200)
    Z[: 100 + MIN_PAIRS - 1, 0] = np.nan  # columns 0 and 1 together on only MIN_PAIRS - 1 rows
    Z[100:, 1] = np.nan
    estimate = pairwise_covariance(Z)
    assert abs(estimate[0, 1]) < 1e-12 and estimate[0, 2] > 0.3 and estimate[1, 2] > 0.3
    Z[100 + MIN_PAIRS - 2, 0] = 0.5  # ... and on MIN_PAIRS rows: estimated
    assert pairwise_covariance(Z)[0, 1] != 0.0


def test_the_calibration_falls_back_to_the_mean_with_too_few_scores():
    X, Q, S, _, _ = served_world(100, seed=8)
    P = Q + 0.3
    S[2:, 1] = np.nan  # two scores of generator 1
    Q[::2, 0] = np.nan
    post = QualityPosterior().fit(P, Q, S)
    assert post.score_calibration_[1].tolist() == [pytest.approx(S[:2, 1].mean()), 0.0]
    assert post.score_calibration_[0, 1] != 0.0  # enough rows: a slope
    S[1:, 1] = np.nan
    with pytest.raises(ValueError, match=r"at least 2 observed rows; too few: \['score cell 1'\]"):
        QualityPosterior().fit(P, Q, S)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from empty slices
        QualityPosterior().fit(P, Q, np.where(np.isnan(S), Q, S))
