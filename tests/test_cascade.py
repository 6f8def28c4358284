"""CascadeRouter: exact decisions on constructed data, policy invariants, budgets, errors."""

import math
import warnings

import numpy as np
import pytest
from cascade._worlds import COSTS, NC, fitted, make_world, router  # tests/cascade: the worlds these tests share
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.neighbors import KNeighborsRegressor

from costroute import BudgetWarning, CascadeRouter, CostAwareRouter


# ---------------------------------------------------------------- exact decisions
def test_escalates_exactly_the_prompts_whose_cheap_image_scored_badly():
    X, Q, S = make_world()
    cascade = fitted(X, Q, S, cost_penalty=1.3, scoring_cost=0.05)
    out = cascade.simulate(X, Q, S)
    first = np.array([o[0] for o in out.order])
    assert (first == "cheap").all()  # the router's choice: cheap is best on average for its cost
    escalated = out.n_images > 1
    failed = Q[:, 0] < Q[:, 2] - 1.0
    # every failed cheap image is caught and replaced; good ones are kept
    assert escalated[failed].mean() > 0.95
    assert escalated[~failed].mean() < 0.05
    assert (out.returned[failed & escalated] != "cheap").all()
    assert out.mean_quality > Q[:, 0].mean() + 0.5


def test_huge_penalty_is_the_plain_router():
    X, Q, S = make_world()
    cascade = fitted(X, Q, S, cost_penalty=1e6, scoring_cost=0.1)
    out = cascade.simulate(X, Q, S)
    plan = cascade.router_.route(X, cost_penalty=1e6)
    assert out.returned.tolist() == plan.generator_names.tolist()
    assert (out.n_images == 1).all() and not out.scored.any()
    np.testing.assert_allclose(out.cost, plan.normalized_costs)


@pytest.mark.parametrize("lam", [0.0, 0.05, 0.5, 2.0])
def test_a_constant_scorer_is_the_plain_router(lam):
    X, Q, _ = make_world()
    S = np.full_like(Q, 0.5)
    cascade = fitted(X, Q, S, cost_penalty=lam, scoring_cost=0.01)
    out = cascade.simulate(X, Q, S)
    plan = cascade.router_.route(X, cost_penalty=lam)
    assert out.returned.tolist() == plan.generator_names.tolist()
    assert (out.n_images == 1).all() and not out.scored.any()


def test_max_steps_one_is_the_plain_router_and_two_caps_images():
    X, Q, S = make_world()
    one = fitted(X, Q, S, cost_penalty=0.2, max_steps=1).simulate(X, Q, S)
    assert (one.n_images == 1).all() and not one.scored.any()
    two = fitted(X, Q, S, cost_penalty=0.0, max_steps=2).simulate(X, Q, S)
    assert two.n_images.max() == 2


def test_better_scorer_buys_more_quality_at_a_fixed_penalty():
    X, Q, S_good = make_world(noise=0.2)
    _, _, S_bad = make_world(noise=3.0)
    good = fitted(X, Q, S_good, cost_penalty=1.0).simulate(X, Q, S_good)
    bad = fitted(X, Q, S_bad, cost_penalty=1.0).simulate(X, Q, S_bad)
    assert good.mean_quality > bad.mean_quality + 0.3


# ---------------------------------------------------------------- invariants
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    lam=st.floats(0, 3),
    score_cost=st.floats(0, 0.5),
    noise=st.floats(0.05, 5),
    max_steps=st.one_of(st.none(), st.integers(1, 3)),
    policy=st.sampled_from(["index", "myopic"]),
)
def test_no_prompt_lost_and_cost_accounting_exact(seed, lam, score_cost, noise, max_steps, policy):
    X, Q, S = make_world(n=60, seed=seed, noise=noise)
    cascade = fitted(
        X, Q, S, cost_penalty=lam, scoring_cost=score_cost * 10.0, max_steps=max_steps, cv=3, policy=policy
    )
    out = cascade.simulate(X, Q, S)
    names = cascade.generator_names_.tolist()
    plan = cascade.router_.route(X, cost_penalty=lam)
    assert len(out) == len(X)
    starts = [o[0] for o in out.order]
    assert starts == cascade.first_choices(X).generator_names.tolist()
    if policy == "myopic" or max_steps == 1:
        assert starts == plan.generator_names.tolist()  # starts with the router's choice
    for i, order in enumerate(out.order):
        assert len(set(order)) == len(order)  # never the same generator twice
        assert out.returned[i] in order
        assert len(order) <= (max_steps or 3)
        idx = [names.index(g) for g in order]
        scored = np.flatnonzero(out.scored[i])
        assert set(scored) <= set(idx)
        expected = NC[idx].sum() + len(scored) * score_cost
        assert out.cost[i] == pytest.approx(expected, rel=1e-12, abs=1e-12)
        assert out.quality[i] == Q[i, names.index(out.returned[i])]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), budget=st.floats(0.1, 1.0))
def test_budget_hard_guard_never_overspends(seed, budget):
    X, Q, S = make_world(n=80, seed=seed)
    cascade = fitted(X, Q, S, budget=budget, scoring_cost=0.2, cv=3, n_draws=4)
    out = cascade.simulate(X, Q, S)
    assert out.cost.sum() <= budget * len(X) + 1e-9
    assert out.budget == budget and out.cost_penalty >= 0


def test_budget_calibration_uses_most_of_the_budget_and_meets_it_in_expectation():
    X, Q, S = make_world(n=300, seed=1)
    cascade = fitted(X, Q, S, scoring_cost=0.2, n_draws=8)  # 2,400 simulated prompts: plain bisection
    pred = cascade.router_.predict_quality(X)
    for budget in (0.2, 0.4, 0.8):
        lam = cascade.penalty_for_budget(pred, budget)
        assert cascade.expected_cost(pred, lam) <= budget + 1e-9
        assert cascade.expected_cost(pred, lam * 0.9) > budget * 0.9 or lam == 0.0


def test_expected_cost_falls_as_the_penalty_grows():
    X, Q, S = make_world(n=300, seed=2)
    cascade = fitted(X, Q, S, scoring_cost=0.2)
    pred = cascade.router_.predict_quality(X)
    costs = [cascade.expected_cost(pred, lam) for lam in (0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 50.0)]
    assert all(b <= a + 1e-9 for a, b in zip(costs, costs[1:])), costs
    assert costs[-1] == pytest.approx(NC.min())


def test_budget_below_the_cheapest_generator_warns_and_routes_to_it():
    X, Q, S = make_world(n=100)
    cascade = fitted(X, Q, S, scoring_cost=0.2)
    with pytest.warns(BudgetWarning, match="below the cheapest"):
        out = cascade.simulate(X, Q, S, budget=0.05)
    assert (out.returned == "cheap").all() and not out.scored.any()
    # no finite λ meets it: the λ reported is inf, not a search ceiling
    assert out.cost_penalty == math.inf
    assert out.cost == pytest.approx(np.full(len(X), NC.min()))
    with pytest.warns(BudgetWarning):
        assert cascade.penalty_for_budget(cascade.router_.predict_quality(X), 0.0) == math.inf


def test_unmeetable_budget_picks_the_best_predicted_of_equally_cheap_generators():
    X, Q, S = make_world(n=100)
    costs = {"cheap": 1.0, "cheap2": 1.0, "big": 10.0}
    Q3 = np.c_[Q[:, 0], Q[:, 0] + 1.0, Q[:, 2]]  # cheap2 is always better than cheap, same cost
    cascade = CascadeRouter(
        CostAwareRouter(costs, features=None, quality_model="ridge"), scoring_cost=0.2, random_state=0
    ).fit(X, Q3, scores=Q3)
    with pytest.warns(BudgetWarning):
        out = cascade.simulate(X, Q3, Q3, budget=0.0)
    assert out.cost_penalty == math.inf and (out.returned == "cheap2").all() and not out.scored.any()


@pytest.mark.parametrize("budget", [None, 0.3, 0.0])
def test_first_choices_are_where_the_cascade_starts(budget):
    X, Q, S = make_world(n=100)
    costs = {"cheap": 1.0, "cheap2": 1.0, "big": 10.0}
    cascade = CascadeRouter(
        CostAwareRouter(costs, features=None, quality_model="ridge"), scoring_cost=0.2, random_state=0
    ).fit(X, Q, scores=S)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BudgetWarning)
        warnings.simplefilter("error", RuntimeWarning)  # no inf * 0 at an unmeetable budget
        plan = cascade.first_choices(X, budget=budget)
        out = cascade.simulate(X, Q, S, budget=budget)
    assert plan.to_frame()["generator"].tolist() == [order[0] for order in out.order]
    assert plan.cost_penalty == out.cost_penalty


# ---------------------------------------------------------------- estimator contract, errors
def test_clone_and_params():
    cascade = CascadeRouter(router(), cost_penalty=0.2, max_steps=2)
    params = clone(cascade).get_params()
    assert params["cost_penalty"] == 0.2 and params["max_steps"] == 2
    assert isinstance(params["router"], CostAwareRouter)


def test_bad_input():
    X, Q, S = make_world(n=80)
    with pytest.raises(ValueError, match="scores is required"):
        CascadeRouter(router()).fit(X, Q)
    with pytest.raises(ValueError, match="router is required"):
        CascadeRouter().fit(X, Q, scores=S)
    with pytest.raises(TypeError, match="router must be a CostAwareRouter"):
        CascadeRouter(KNeighborsRegressor()).fit(X, Q, scores=S)
    with pytest.raises(ValueError, match=r"scores must have shape"):
        CascadeRouter(router()).fit(X, Q, scores=S[:, :2])
    with pytest.raises(ValueError, match="scores contains inf"):  # NaN marks an unscored image; inf is an error
        CascadeRouter(router()).fit(X, Q, scores=np.where(S > 3, np.inf, S))
    with pytest.raises(ValueError, match=r"y contains NaN or inf .* use quality_model=\"lowrank\""):
        CascadeRouter(router()).fit(X, np.where(S > 3, np.nan, Q), scores=S)
    with pytest.raises(ValueError, match="max_steps must be an integer >= 1"):
        CascadeRouter(router(), max_steps=0).fit(X, Q, scores=S)
    with pytest.raises(ValueError, match="cost_penalty must be finite"):
        CascadeRouter(router(), cost_penalty=-1).fit(X, Q, scores=S)
    cascade = CascadeRouter(router(), cv=2).fit(X, Q, scores=S)
    with pytest.raises(ValueError, match="scores is required"):
        cascade.simulate(X, Q)


@pytest.mark.parametrize("cv", [1, 0, -3, True, 2.0, "5"])
def test_cv_below_two_or_not_an_int_is_refused(cv):
    """cv=1 used to give in-sample router predictions silently; CostAwareRouterCV refuses it too."""
    X, Q, S = make_world(n=40)
    with pytest.raises(ValueError, match=r"cv must be an int >= 2.*got cv="):
        CascadeRouter(router(), cv=cv).fit(X, Q, scores=S)


def test_cv_above_the_number_of_prompts_is_refused():
    X, Q, S = make_world(n=40)
    small = CostAwareRouter(COSTS, features=None, quality_model="ridge")
    with pytest.raises(ValueError, match=r"cv=41 folds need at least 41 training prompts, got 40; lower cv"):
        CascadeRouter(small, cv=41).fit(X, Q, scores=S)
    CascadeRouter(small, cv=40).fit(X, Q, scores=S)  # leave-one-out is fine


def test_simulate_reads_only_the_score_cells_the_policy_asks_for():
    X, Q, S = make_world(n=120)
    cascade = fitted(X, Q, S, cost_penalty=1.3, scoring_cost=0.05)
    o = cascade.simulate(X, Q, S)
    assert o.scored.any() and not o.scored.all()
    S2 = S.copy()
    S2[~o.scored] = np.nan
    o2 = cascade.simulate(X, Q, S2)
    assert o2.order == o.order
    np.testing.assert_array_equal(o2.returned, o.returned)
    np.testing.assert_array_equal(o2.scored, o.scored)
    np.testing.assert_array_equal(o2.cost, o.cost)
    np.testing.assert_array_equal(o2.quality, o.quality)
    # a NaN in a cell the policy reads names the prompt and the generator
    i, k = np.argwhere(o.scored)[0]
    S3 = S.copy()
    S3[i, k] = np.nan
    with pytest.raises(ValueError, match=rf"scores is NaN for prompt {i} and generator '{list(COSTS)[k]}'"):
        cascade.simulate(X, Q, S3)
    # infinities are still refused up front
    with pytest.raises(ValueError, match="scores contains inf"):
        cascade.simulate(X, Q, np.where(np.isnan(S2), np.inf, S2))


def test_scorer_cost_unit_must_match_the_generators():
    class Scorer:
        cost = 3.0
        cost_unit = "usd"

    X, Q, S = make_world(n=80)
    with pytest.raises(ValueError, match="cost_unit"):
        CascadeRouter(router(), scorer=Scorer(), cv=2).fit(X, Q, scores=S)
    Scorer.cost_unit = "flops"
    cascade = CascadeRouter(router(), scorer=Scorer(), cv=2).fit(X, Q, scores=S)
    assert cascade.normalized_scoring_cost_ == pytest.approx(0.3)


def test_deferral_points_span_router_to_full_escalation():
    X, Q, S = make_world(n=200)
    cascade = fitted(X, Q, S, scoring_cost=0.1)
    lams, costs, quals = cascade.deferral_points(X, Q, S)
    assert lams[0] == 0.0 and np.all(np.diff(lams) > 0)
    assert costs[-1] == pytest.approx(NC.min())  # the largest λ: everything on the cheapest, unscored
    assert costs[0] > 1.0  # λ = 0 tries several generators per prompt
    assert quals[0] == pytest.approx(Q.max(axis=1).mean(), abs=0.15)
    out = cascade.simulate(X, Q, S, cost_penalty=lams[5])
    assert (costs[5], quals[5]) == (out.mean_cost, out.mean_quality)


def test_a_costroute_scorer_converts_its_cost_to_the_generators_unit():
    from costroute.scoring import CallableScorer

    X, Q, S = make_world(n=80)
    scorer = CallableScorer("s", lambda prompts, images: [0.0] * len(prompts), cost=2.0, cost_unit="flops")
    cascade = CascadeRouter(router(), scorer=scorer, cv=2).fit(X, Q, scores=S)
    assert cascade.normalized_scoring_cost_ == pytest.approx(0.2)
