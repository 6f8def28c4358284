"""Deferral curves, the oracle and the random-mixture hull on matrices checked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costroute.evaluation import (
    apgr,
    deferral_curve,
    hull_curve,
    lambda_grid,
    operating_point,
    oracle_curve,
    quality_at_cost,
    route_with_penalty,
    single_model_points,
)

from ._helpers import C2, Q2, problems


def test_operating_point_by_hand():
    assert operating_point(np.array([1, 0]), Q2, C2) == (0.75, 2.5)


def test_oracle_curve_by_hand():
    curve = oracle_curve(Q2, C2)
    np.testing.assert_allclose(curve.lambdas, [0.0, 4.0], rtol=1e-6)  # just above the breakpoint
    np.testing.assert_allclose(curve.costs, [0.75, 0.5])
    np.testing.assert_allclose(curve.qualities, [2.5, 1.5])
    assert curve.c_min == 0.5
    # envelope: 1.5 -> 2.5 on [0.5, 0.75], then flat 2.5 on [0.75, 1]
    # area = 0.25 * 2.0 + 0.25 * 2.5 = 1.125, divided by (1 - 0.5)
    assert curve.auc() == pytest.approx(2.25)


def test_hull_of_two_generators_is_their_segment():
    hull = hull_curve(Q2, C2)
    np.testing.assert_allclose(hull.costs, [0.5, 1.0])
    np.testing.assert_allclose(hull.qualities, [1.5, 2.5])
    assert np.all(np.isnan(hull.lambdas))
    for t in np.linspace(0, 1, 7):
        cost = 0.5 + 0.5 * t
        assert quality_at_cost(hull, cost) == pytest.approx(1.5 + t)
    assert hull.auc() == pytest.approx(2.0)  # mean of the segment over [0.5, 1]


def test_hull_drops_points_below_a_segment_and_keeps_a_falling_right_end():
    c = np.array([0.2, 0.6, 1.0])
    below = np.array([[1.0, 1.5, 3.0]])  # 1.5 < 2.0 on the segment 0.2 -> 1.0
    assert hull_curve(below, c).costs.tolist() == [0.2, 1.0]
    above = np.array([[1.0, 2.5, 3.0]])
    assert hull_curve(above, c).costs.tolist() == [0.2, 0.6, 1.0]
    on = np.array([[1.0, 2.0, 3.0]])  # collinear: not a vertex
    assert hull_curve(on, c).costs.tolist() == [0.2, 1.0]
    falling = np.array([[1.0, 3.0, 2.0]])
    h = hull_curve(falling, c)
    assert h.qualities.tolist() == [1.0, 3.0, 2.0]
    # running max: the falling end does not lower the AUC
    assert h.auc() == pytest.approx(((0.6 - 0.2) * 2.0 + 0.4 * 3.0) / 0.8)
    # equal costs: only the better one can be a vertex
    assert hull_curve(np.array([[1.0, 2.0, 3.0]]), [0.5, 0.5, 1.0]).qualities.tolist() == [2.0, 3.0]


def test_single_model_points_names_and_values():
    frame = pd.DataFrame(Q2, columns=["fast", "slow"])
    pts = single_model_points(frame, C2)
    assert pts.index.tolist() == ["fast", "slow"]
    np.testing.assert_allclose(pts["cost"], [0.5, 1.0])
    np.testing.assert_allclose(pts["quality"], [1.5, 2.5])


def test_perfect_predictor_reproduces_the_oracle():
    rng = np.random.default_rng(0)
    Q = rng.normal(size=(40, 4))
    c = np.array([0.1, 0.3, 0.6, 1.0])
    oracle = oracle_curve(Q, c)
    for pred in (Q, Q + rng.normal(size=(40, 1)) * 5):  # a per-prompt shift changes nothing
        curve = deferral_curve(pred, Q, c)
        np.testing.assert_allclose(curve.costs, oracle.costs)
        np.testing.assert_allclose(curve.qualities, oracle.qualities)
    assert apgr(oracle.auc(), hull_curve(Q, c).auc(), oracle.auc()) == 1.0


def test_constant_predictor_matches_the_best_single_generator_and_the_hull():
    rng = np.random.default_rng(1)
    Q = rng.uniform(1, 5, size=(30, 3))
    c = np.array([0.2, 0.5, 1.0])
    means = Q.mean(axis=0)
    pred = np.tile(means, (30, 1))
    curve = deferral_curve(pred, Q, c)
    best = int(np.argmax(means))
    assert curve.lambdas[0] == 0
    assert curve.qualities[0] == pytest.approx(means[best])
    assert curve.costs[0] == pytest.approx(c[best])
    # every point is a single-generator point on the hull: same AUC -> APGR 0
    hull = hull_curve(Q, c)
    assert curve.auc() == pytest.approx(hull.auc())
    assert apgr(curve.auc(), hull.auc(), oracle_curve(Q, c).auc()) == pytest.approx(0.0, abs=1e-12)
    assert apgr(hull.auc(), hull.auc(), oracle_curve(Q, c).auc()) == 0.0


def test_exact_curve_ends_with_everything_on_the_cheapest_generator():
    rng = np.random.default_rng(2)
    pred, Q = rng.normal(size=(25, 5)), rng.normal(size=(25, 5))
    c = np.array([1.0, 0.05, 0.4, 0.7, 0.4])
    curve = deferral_curve(pred, Q, c)
    assert curve.costs[-1] == pytest.approx(0.05)
    assert curve.qualities[-1] == pytest.approx(Q[:, 1].mean())
    grid = lambda_grid(pred, c, n=None)
    assert grid[0] == 0
    assert (route_with_penalty(pred, c, grid[-1]) == 1).all()
    assert len(grid) == len(curve)


def test_deferral_curve_with_explicit_grid_and_int_grid():
    curve = deferral_curve(Q2, Q2, C2, lambdas=[0.0, 1.0, 10.0])
    np.testing.assert_allclose(curve.costs, [0.75, 0.75, 0.5])
    np.testing.assert_allclose(curve.qualities, [2.5, 2.5, 1.5])
    assert len(deferral_curve(Q2, Q2, C2, lambdas=5)) == 2  # only two distinct routings
    rng = np.random.default_rng(4)
    pred = rng.normal(size=(30, 4))
    c = np.array([0.1, 0.2, 0.5, 1.0])
    exact, coarse = deferral_curve(pred, pred, c), deferral_curve(pred, pred, c, lambdas=6)
    assert len(coarse) == 6 and len(exact) > 6
    assert coarse.lambdas[0] == 0 and coarse.lambdas[-1] == exact.lambdas[-1]
    assert set(coarse.costs.round(12)) <= set(exact.costs.round(12))


def test_curve_validation_errors():
    with pytest.raises(ValueError, match="shape"):
        deferral_curve(np.zeros((3, 2)), np.zeros((4, 2)), C2)
    with pytest.raises(ValueError, match="2 generator columns"):
        deferral_curve(np.zeros((3, 2)), np.zeros((3, 2)), [0.1, 0.5, 1.0])
    with pytest.raises(ValueError, match="NaN"):
        deferral_curve(np.array([[np.nan, 1.0]]), np.ones((1, 2)), C2)
    with pytest.raises(ValueError, match="NaN"):
        oracle_curve(np.array([[1.0, np.inf]]), C2)
    with pytest.raises(ValueError, match=">= 0"):
        route_with_penalty(Q2, C2, -0.1)
    with pytest.raises(ValueError, match=">= 0"):
        deferral_curve(Q2, Q2, C2, lambdas=[0.0, -1.0])
    with pytest.raises(ValueError, match="finite"):
        route_with_penalty(Q2, C2, np.nan)
    with pytest.raises(TypeError):
        route_with_penalty(Q2, C2, "big")
    with pytest.raises(TypeError):
        route_with_penalty(Q2, C2, True)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        route_with_penalty(Q2, [5e12, 1e13], 0.0)
    with pytest.raises(ValueError, match=">= 0"):
        route_with_penalty(Q2, [-0.5, 1.0], 0.0)
    with pytest.raises(ValueError, match="2-D"):
        route_with_penalty([1.0, 2.0], C2, 0.0)
    with pytest.raises(TypeError, match="numbers"):
        route_with_penalty([["a", "b"]], C2, 0.0)
    with pytest.raises(ValueError, match="normalized_costs is required"):
        deferral_curve(Q2, Q2)
    with pytest.raises(ValueError, match="n must be"):
        lambda_grid(Q2, C2, n=1)
    with pytest.raises(ValueError, match="names"):
        single_model_points(Q2, C2, names=["a"])


def test_registry_is_accepted_as_costs():
    from costroute.generators import GeneratorRegistry

    reg = GeneratorRegistry.from_costs({"fast": 1.0, "slow": 2.0})
    assert route_with_penalty(Q2, reg, 0.0).tolist() == [1, 0]
    assert single_model_points(Q2, reg).index.tolist() == ["fast", "slow"]


def test_deferral_curve_accepts_a_fitted_router(toy):
    prompts, Q, frame, routers, c = toy
    router = routers["perfect"].fit(prompts, frame)
    curve = deferral_curve(router, frame, prompts=prompts)  # columns matched by name
    np.testing.assert_allclose(curve.qualities, oracle_curve(Q, c).qualities)
    with pytest.raises(ValueError, match="prompts are required"):
        deferral_curve(router, frame)
    with pytest.raises(ValueError, match="missing"):
        deferral_curve(router, frame.rename(columns={"mid": "other"}), prompts=prompts)
    with pytest.raises(ValueError, match="only used with a router"):
        deferral_curve(Q, Q, c, prompts=prompts)


# --------------------------------------------------------------------------------------
# property tests
# --------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(problems())
def test_exact_curve_equals_routing_on_the_exact_grid(problem):
    pred, Q, c = problem
    exact = deferral_curve(pred, Q, c)
    gridded = deferral_curve(pred, Q, c, lambdas=lambda_grid(pred, c, n=None))
    np.testing.assert_allclose(exact.costs, gridded.costs, atol=1e-12)
    np.testing.assert_allclose(exact.qualities, gridded.qualities, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(problems(), st.booleans())
def test_mean_cost_non_increasing_along_lambda(problem, exact):
    pred, Q, c = problem
    curve = deferral_curve(pred, Q, c, lambdas=None if exact else 9)
    assert np.all(np.diff(curve.lambdas) > 0)
    assert np.all(np.diff(curve.costs) <= 1e-12)
    assert curve.costs[-1] == pytest.approx(c.min())


@settings(max_examples=60, deadline=None)
@given(problems(ties=True))
def test_ties_mean_cost_non_increasing_and_ends_cheapest(problem):
    pred, Q, c = problem
    curve = deferral_curve(pred, Q, c)
    assert np.all(np.diff(curve.costs) <= 1e-12)
    assert curve.costs[-1] == pytest.approx(c.min())
    # every point is a routing at its λ
    for lam, cost, qual in zip(curve.lambdas, curve.costs, curve.qualities):
        a = route_with_penalty(pred, c, lam)
        assert operating_point(a, Q, c) == pytest.approx((cost, qual))


@settings(max_examples=60, deadline=None)
@given(problems())
def test_hull_dominates_each_single_point(problem):
    _, Q, c = problem
    hull = hull_curve(Q, c)
    for cost, qual in single_model_points(Q, c)[["cost", "quality"]].to_numpy():
        assert quality_at_cost(hull, cost) >= qual - 1e-12


@settings(max_examples=60, deadline=None)
@given(st.booleans().flatmap(lambda ties: problems(ties=ties)))
def test_oracle_dominates_any_routing(problem):
    pred, Q, c = problem
    oracle = oracle_curve(Q, c)
    curve = deferral_curve(pred, Q, c)
    hull = hull_curve(Q, c)
    # at every λ the oracle has the best Lagrangian value ...
    for lam in np.r_[curve.lambdas, oracle.lambdas]:
        oc, oq = operating_point(route_with_penalty(Q, c, lam), Q, c)
        rc, rq = operating_point(route_with_penalty(pred, c, lam), Q, c)
        assert oq - lam * oc >= rq - lam * rc - 1e-9
    # ... so its curve lies above every routing's operating point and above the hull
    for cost, qual in zip(np.r_[curve.costs, hull.costs], np.r_[curve.qualities, hull.qualities]):
        assert quality_at_cost(oracle, cost) >= qual - 1e-9
    assert oracle.auc() >= curve.auc() - 1e-9
    assert oracle.auc() >= hull.auc() - 1e-9
