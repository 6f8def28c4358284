"""Tests of costroute.evaluation on small matrices whose answers are computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator

from costroute.evaluation import (
    DeferralCurve,
    RoutingCVResult,
    apgr,
    auc,
    cost_at_quality,
    cost_saving,
    cross_validate_routing,
    deferral_curve,
    hull_curve,
    lambda_grid,
    operating_point,
    oracle_curve,
    plot_deferral,
    quality_at_cost,
    report_to_markdown,
    route_with_penalty,
    routing_report,
    single_model_points,
    split_rater_cross_validate,
)

# Two prompts, two generators: the cheap one (cost 0.5) and the expensive one (cost 1.0).
#   prompt 0: cheap 1, expensive 3  -> switches to cheap at λ = (3 - 1) / 0.5 = 4
#   prompt 1: cheap 2, expensive 2  -> tie: cheap already at λ = 0
Q2 = np.array([[1.0, 3.0], [2.0, 2.0]])
C2 = np.array([0.5, 1.0])


# --------------------------------------------------------------------------------------
# routing rule
# --------------------------------------------------------------------------------------


def test_operating_point_by_hand():
    assert operating_point(np.array([1, 0]), Q2, C2) == (0.75, 2.5)


# --------------------------------------------------------------------------------------
# curves by hand
# --------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------
# AUC, cost at quality, APGR, saving by hand
# --------------------------------------------------------------------------------------
# points (0.2, 1), (0.4, 0.5), (0.6, 3), c_min = 0.2. Running max: flat 1 until the segment
# 0.4 -> 0.6 (0.5 -> 3) crosses 1 at x = 0.44, up to 3 at 0.6, flat 3 to cost 1.
DIP = ([0.6, 0.2, 0.4], [3.0, 1.0, 0.5])


def test_auc_by_hand():
    area = 0.24 * 1.0 + 0.16 * (1.0 + 3.0) / 2 + 0.4 * 3.0  # = 1.76
    assert auc(*DIP, 0.2) == pytest.approx(area / 0.8)
    assert auc([0.0, 1.0], [0.0, 1.0], 0.0) == pytest.approx(0.5)
    # left of the first point counts as zero, right of the last one is flat
    assert auc([0.5], [2.0], 0.0) == pytest.approx(1.0)
    assert auc([0.5], [2.0], 0.5) == pytest.approx(2.0)
    # all generators cost the same
    assert auc([1.0], [2.0], 1.0) == pytest.approx(2.0)
    # a point left of c_min is clipped by interpolation: (0, 0) -> (1, 1) on [0.5, 1]
    assert auc([0.0, 1.0], [0.0, 1.0], 0.5) == pytest.approx(0.75)


def test_cost_and_quality_at_by_hand():
    assert cost_at_quality(DIP, 2.0) == pytest.approx(0.52)
    assert cost_at_quality(DIP, 1.0) == pytest.approx(0.2)
    assert cost_at_quality(DIP, 0.7) == pytest.approx(0.2)
    assert cost_at_quality(DIP, 3.0) == pytest.approx(0.6)
    assert cost_at_quality(DIP, 3.01) == math.inf
    assert quality_at_cost(DIP, 0.3) == pytest.approx(1.0)
    assert quality_at_cost(DIP, 0.52) == pytest.approx(2.0)
    assert quality_at_cost(DIP, 0.9) == pytest.approx(3.0)
    assert math.isnan(quality_at_cost(DIP, 0.1))
    frame = pd.DataFrame({"cost": DIP[0], "quality": DIP[1]})
    assert cost_at_quality(frame, 2.0) == pytest.approx(0.52)


def test_cost_at_quality_tolerates_rounding():
    assert cost_at_quality(([0.5, 1.0], [1.0, 3.0 - 1e-14]), 3.0) == 1.0


def test_headline_saving_by_hand():
    oracle, hull = oracle_curve(Q2, C2), hull_curve(Q2, C2)
    # q_best = 2.5: hull needs cost 1.0, the oracle 0.75
    assert cost_saving(oracle, hull) == pytest.approx(1.0 / 0.75)
    assert cost_saving(hull, hull) == pytest.approx(1.0)
    # at q = 2: hull 0.75, oracle 0.5 + 0.25 * 0.5
    assert cost_saving(oracle, hull, 2.0) == pytest.approx(0.75 / 0.625)
    never = DeferralCurve([0.0], [0.5], [1.5], 0.5)
    assert cost_saving(never, hull) == 0.0


def test_apgr_by_hand_and_degenerate():
    assert apgr(3.5, 3.0, 4.0) == 0.5
    assert apgr(2.5, 3.0, 4.0) == -0.5
    assert math.isnan(apgr(3.0, 3.0, 3.0))
    with pytest.raises(TypeError):
        apgr("1", 0.0, 2.0)


# --------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------
def test_validation_errors():
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
    with pytest.raises(ValueError, match="c_min"):
        auc([0.5], [1.0], 1.5)
    with pytest.raises(ValueError, match="equal"):
        auc([0.5, 1.0], [1.0], 0.5)
    with pytest.raises(ValueError, match="q must be"):
        cost_at_quality(DIP, float("nan"))
    with pytest.raises(TypeError, match="curve"):
        cost_at_quality([1.0, 2.0, 3.0], 1.0)
    with pytest.raises(ValueError, match="names"):
        single_model_points(Q2, C2, names=["a"])


def test_registry_is_accepted_as_costs():
    from costroute.generators import GeneratorRegistry

    reg = GeneratorRegistry.from_costs({"fast": 1.0, "slow": 2.0})
    assert route_with_penalty(Q2, reg, 0.0).tolist() == [1, 0]
    assert single_model_points(Q2, reg).index.tolist() == ["fast", "slow"]


# --------------------------------------------------------------------------------------
# property tests
# --------------------------------------------------------------------------------------
@st.composite
def problems(draw, ties=False):
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


@settings(max_examples=40, deadline=None)
@given(problems(), st.floats(-3, 3))
def test_cost_at_quality_inverts_quality_at_cost(problem, q):
    pred, Q, c = problem
    curve = deferral_curve(pred, Q, c)
    cost = curve.cost_at_quality(q)
    if math.isinf(cost):
        assert curve.qualities.max() < q
    else:
        assert curve.quality_at_cost(cost) >= q - 1e-9
        if cost > curve.costs.min() + 1e-9:
            assert curve.quality_at_cost(cost - 1e-7) < q + 1e-9


# --------------------------------------------------------------------------------------
# cross-validation with stand-in routers
# --------------------------------------------------------------------------------------
class LookupRouter(BaseEstimator):
    """Stand-in router: ``mode="perfect"`` looks each prompt up in a quality table (the
    oracle), ``mode="mean"`` predicts the training means (a prompt-blind constant)."""

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


@pytest.fixture
def toy():
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


def test_cross_validate_routing_perfect_and_constant(toy):
    prompts, Q, frame, routers, c = toy
    res = cross_validate_routing(routers, prompts, frame, cv=3, n_repeats=2, random_state=0)
    assert isinstance(res, RoutingCVResult)
    assert res.generator_names == ["cheap", "mid", "best"]
    np.testing.assert_allclose(res.true_quality, Q)
    np.testing.assert_allclose(res.normalized_costs, c)
    s = res.scores
    # 6 folds x (3 singles + hull + 2 routers + oracle)
    assert len(s) == 6 * 7
    assert set(s["method"]) == {"cheap", "mid", "best", "random mixture", "perfect", "constant", "oracle"}
    per = s.set_index(["repeat", "fold", "method"])
    for (rep, fold), _ in s.groupby(["repeat", "fold"]):
        perfect, oracle = per.loc[(rep, fold, "perfect")], per.loc[(rep, fold, "oracle")]
        assert perfect["auc"] == pytest.approx(oracle["auc"])
        assert perfect["quality"] == pytest.approx(oracle["quality"])
        assert perfect["apgr"] == pytest.approx(1.0)
        assert per.loc[(rep, fold, "random mixture"), "apgr"] == 0.0
        assert per.loc[(rep, fold, "constant"), "apgr"] <= 1e-9
        assert per.loc[(rep, fold, "random mixture"), "saving"] == pytest.approx(1.0)
        assert per.loc[(rep, fold, "random mixture"), "gain"] == 0.0
    # the pooled out-of-fold predictions of the perfect router are the quality matrix
    for rep in range(2):
        np.testing.assert_allclose(res.oof_predictions["perfect"][rep], Q)
    curves = res.curves(0)
    assert set(curves) == {"perfect", "constant", "random mixture", "oracle"}
    np.testing.assert_allclose(curves["perfect"].costs, curves["oracle"].costs)


def test_all_methods_share_folds(toy):
    prompts, Q, frame, routers, c = toy
    a = cross_validate_routing(routers["constant"], prompts, frame, cv=3, n_repeats=1, random_state=3)
    b = cross_validate_routing(routers, prompts, frame, cv=3, n_repeats=1, random_state=3)
    assert set(a.scores["method"]) >= {"router", "oracle"}
    base = ["cheap", "mid", "best", "random mixture", "oracle"]
    pa = a.scores[a.scores["method"].isin(base)].reset_index(drop=True)
    pb = b.scores[b.scores["method"].isin(base)].reset_index(drop=True)
    pd.testing.assert_frame_equal(pa[["method", "auc", "quality"]], pb[["method", "auc", "quality"]])


def test_routing_report_and_markdown(toy):
    prompts, Q, frame, routers, c = toy
    res = cross_validate_routing(routers, prompts, frame, cv=3, n_repeats=2, random_state=0)
    rep = routing_report(res)
    assert rep.index.tolist() == ["cheap", "mid", "best", "random mixture", "perfect", "constant", "oracle"]
    assert (rep["n_folds"] == 6).all()
    assert rep.loc["oracle", "apgr_mean"] == pytest.approx(1.0)
    assert rep.loc["random mixture", "apgr_mean"] == 0.0
    assert math.isnan(rep.loc["cheap", "auc_mean"])
    assert {"quality_mean", "quality_std", "saving_mean", "cost_50_mean", "cost_80_std"} <= set(rep.columns)
    pd.testing.assert_frame_equal(rep, res.summary())
    md = report_to_markdown(rep, ["quality", "apgr", "saving", "cost_80"])
    assert md.count("\n") == 2 + len(rep)
    assert "±" in md and "| perfect |" in md
    # routing_report can also run the CV itself
    direct = routing_report(routers, prompts, frame, cv=3, n_repeats=2, random_state=0)
    pd.testing.assert_frame_equal(direct.drop(columns="fit_time_mean"), rep.drop(columns="fit_time_mean"))


def test_cross_validate_routing_validation(toy):
    prompts, Q, frame, routers, c = toy
    with pytest.raises(ValueError, match="prompts"):
        cross_validate_routing(routers, prompts[:-1], frame, cv=3)
    with pytest.raises(ValueError, match="cv"):
        cross_validate_routing(routers, prompts, frame, cv=1)
    with pytest.raises(TypeError, match="fit"):
        cross_validate_routing(object(), prompts, frame)
    with pytest.raises(ValueError, match="clash"):
        cross_validate_routing({"oracle": routers["perfect"]}, prompts, frame, cv=3, n_repeats=1)
    with pytest.raises(ValueError, match="NaN"):
        cross_validate_routing(routers, prompts, frame.where(frame > 1.5), cv=3, n_repeats=1)


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


def test_split_rater_cross_validate(toy):
    prompts, Q, frame, routers, c = toy
    rng = np.random.default_rng(11)
    ratings = Q[:, :, None] + rng.normal(scale=0.7, size=Q.shape + (3,))
    res = split_rater_cross_validate(
        routers["constant"], prompts, ratings, generator_names=["cheap", "mid", "best"], cv=3, random_state=0
    )
    s = res.scores
    assert sorted(s["rater"].unique()) == [0, 1, 2]
    assert len(s) == 3 * 3 * 7  # folds x raters x (3 singles, hull, router, 2 oracles)
    assert "apgr_indep" in res.metrics
    per = s.set_index(["fold", "rater", "method"])
    for fold, rater in {(f, r) for f, r, _ in per.index}:
        same = per.loc[(fold, rater, "oracle"), "auc"]
        indep = per.loc[(fold, rater, "oracle (other raters)"), "auc"]
        assert same >= indep - 1e-12  # routing on the held-out rater's own noise only helps
    rep = routing_report(res)
    assert rep.index[-2:].tolist() == ["oracle (other raters)", "oracle"]
    assert rep.loc["oracle (other raters)", "apgr_indep_mean"] == pytest.approx(1.0)
    np.testing.assert_allclose(res.true_quality, ratings.mean(axis=2))


def test_split_rater_without_noise_has_equal_oracles(toy):
    prompts, Q, frame, routers, c = toy
    ratings = np.repeat(Q[:, :, None], 3, axis=2)
    res = split_rater_cross_validate(routers["perfect"], prompts, ratings, cv=3, random_state=0)
    s = res.scores
    same = s[s["method"] == "oracle"]["auc"].to_numpy()
    indep = s[s["method"] == "oracle (other raters)"]["auc"].to_numpy()
    np.testing.assert_allclose(same, indep)
    with pytest.raises(ValueError, match="n_raters"):
        split_rater_cross_validate(routers["perfect"], prompts, Q, cv=3)
    bad = ratings.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        split_rater_cross_validate(routers["perfect"], prompts, bad, cv=3)


def test_plot_deferral_returns_axes(toy):
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    prompts, Q, frame, routers, c = toy
    res = cross_validate_routing(routers, prompts, frame, cv=3, n_repeats=1, random_state=0)
    ax = res.plot(title="toy")
    assert len(ax.lines) == 4
    assert ax.get_title() == "toy"
    assert {t.get_text() for t in ax.texts} == {"cheap", "mid", "best"}
    plt.close("all")
    ax = plot_deferral(oracle_curve(Q2, C2), single_model_points(Q2, C2))
    assert len(ax.lines) == 1
    plt.close("all")
    with pytest.raises(TypeError):
        plot_deferral({"x": (1, 2)})


def test_return_models(toy):
    prompts, Q, frame, routers, c = toy
    res = cross_validate_routing(routers, prompts, frame, cv=3, n_repeats=1, random_state=0, return_models=True)
    assert set(res.models) == {(0, 0), (0, 1), (0, 2)}
    assert all(set(m) == {"perfect", "constant"} for m in res.models.values())
    assert res.models[(0, 0)]["constant"].n_fit_ == 20
    assert cross_validate_routing(routers, prompts, frame, cv=3, n_repeats=1).models == {}


def test_pooled_scores(toy):
    prompts, Q, frame, routers, c = toy
    res = cross_validate_routing(routers, prompts, frame, cv=3, n_repeats=2, random_state=0)
    pooled = res.pooled_scores()
    assert len(pooled) == 2 * 7 and set(pooled["repeat"]) == {0, 1}
    per = pooled.set_index(["repeat", "method"])
    oracle = oracle_curve(Q, c)
    for rep in (0, 1):
        assert per.loc[(rep, "perfect"), "apgr"] == pytest.approx(1.0)
        assert per.loc[(rep, "oracle"), "auc"] == pytest.approx(oracle.auc())
        assert per.loc[(rep, "random mixture"), "auc"] == pytest.approx(hull_curve(Q, c).auc())
    rep = routing_report(res, pooled=True)
    assert (rep["n_folds"] == 2).all()
    assert rep.loc["perfect", "quality_mean"] == pytest.approx(oracle.qualities[0])
    with pytest.raises(ValueError, match="out-of-fold"):
        split_rater_cross_validate(
            routers["perfect"], prompts, np.repeat(Q[:, :, None], 2, axis=2), cv=3
        ).pooled_scores()


def test_report_cost_targets_average_over_reached_folds():
    scores = pd.DataFrame(
        {
            "repeat": 0,
            "fold": [0, 1, 2, 0, 1, 2],
            "method": ["a"] * 3 + ["b"] * 3,
            "kind": "router",
            "quality": 1.0,
            "cost_50": [0.2, 0.4, np.inf, np.inf, np.inf, np.inf],
        }
    )
    res = RoutingCVResult(scores, ("quality", "cost_50"), ["g"], np.ones(1), np.ones((1, 1)))
    rep = routing_report(res)
    assert rep.loc["a", "cost_50_mean"] == pytest.approx(0.3)
    assert rep.loc["a", "cost_50_reached"] == pytest.approx(2 / 3)
    assert rep.loc["b", "cost_50_mean"] == math.inf
    md = report_to_markdown(rep, ["cost_50"])
    assert "0.300 ± 0.141 (2/3)" in md and "| b | never |" in md
    assert "1.0e-04" in report_to_markdown(
        pd.DataFrame({"x_mean": [1e-4], "x_std": [np.nan], "n_folds": [1]}, index=["m"]), ["x"]
    )
