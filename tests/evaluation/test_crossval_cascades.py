"""Cross-validation of cascades beside routers: same folds, same metrics, scores on training folds only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from costroute import CascadeRouter, CostAwareRouter
from costroute.cascade import ThresholdCascade
from costroute.evaluation import (
    DeferralCurve,
    auc,
    cost_saving,
    cross_validate_routing,
    hull_curve,
    routing_report,
    split_rater_cross_validate,
)

from ._helpers import varied_prompts

COSTS = {"cheap": 1.0, "mid": 3.0, "big": 10.0}
NAMES = list(COSTS)
METRICS = ["quality", "gain", "cost", "auc", "apgr", "saving", "cost_50", "cost_80", "reached_best"]


def one_best_world(n=90, seed=0):
    """Prompts whose best generator is drawn at random (+2 over the others): the prompt text
    cannot tell which one, an image's true quality can."""
    rng = np.random.default_rng(seed)
    best = rng.integers(0, 3, size=n)
    Q = rng.normal(3.0, 0.3, size=(n, 1)) + 0.1 * rng.normal(size=(n, 3)) + 2.0 * np.eye(3)[best]
    return varied_prompts(n), pd.DataFrame(Q, columns=NAMES)


def router():
    return CostAwareRouter(COSTS, features="complexity", quality_model="ridge")


def by_fold(res, method):
    return res.scores[res.scores["method"] == method].set_index(["repeat", "fold"]).sort_index()


def test_a_perfect_scorer_reaches_the_one_image_oracle_at_lambda_zero():
    prompts, Q = one_best_world()
    methods = {"router": router(), "cascade": CascadeRouter(router(), scoring_cost=0.1, random_state=0)}
    res = cross_validate_routing(methods, prompts, Q, cv=3, n_repeats=2, random_state=0, scores=Q, progress=False)
    cascade, oracle, rout = by_fold(res, "cascade"), by_fold(res, "oracle"), by_fold(res, "router")
    assert (cascade["kind"] == "cascade").all() and len(cascade) == 6
    # every prompt gets its best image: the one-image oracle's quality, on every fold
    np.testing.assert_allclose(cascade["quality"], oracle["quality"], rtol=0, atol=1e-12)
    assert (cascade["quality"] > rout["quality"] + 1.0).all()
    assert (cascade["cost"] > 1.0).all()  # at λ = 0 it generates and scores every image


def test_a_constant_scorer_gives_its_routers_row():
    prompts, Q = one_best_world(seed=1)
    S = pd.DataFrame(np.full(Q.shape, 0.5), columns=NAMES)
    methods = {"router": router(), "cascade": CascadeRouter(router(), scoring_cost=0.1, random_state=0)}
    grid = np.r_[0.0, np.geomspace(1e-3, 100.0, 60)]
    res = cross_validate_routing(
        methods, prompts, Q, cv=3, n_repeats=2, random_state=1, scores=S, lambdas=grid, progress=False
    )
    r, c = by_fold(res, "router"), by_fold(res, "cascade")
    # on the same λ grid the cascade never scores, never escalates: the router's routing
    pd.testing.assert_frame_equal(r[METRICS], c[METRICS], check_exact=True)
    for curves in res.cascade_curves.values():
        np.testing.assert_array_equal(curves["cascade"].lambdas, grid)
    # with the cascade's own λ grid (routers: exact curves) the λ = 0 point is still the router's
    exact = cross_validate_routing(methods, prompts, Q, cv=3, n_repeats=2, random_state=1, scores=S, progress=False)
    r, c = by_fold(exact, "router"), by_fold(exact, "cascade")
    np.testing.assert_array_equal(r["quality"], c["quality"])
    np.testing.assert_array_equal(r["cost"], c["cost"])


def test_cascades_are_fitted_and_evaluated_on_the_routers_folds():
    prompts, Q = one_best_world(n=60, seed=2)
    S = Q + np.random.default_rng(5).normal(scale=0.5, size=Q.shape)
    threshold = ThresholdCascade(COSTS, scoring_cost=0.2)
    cascade = CascadeRouter(router(), scoring_cost=0.2, random_state=0)
    methods = {"router": router(), "threshold": threshold, "cascade": cascade}
    res = cross_validate_routing(
        methods, prompts, Q, cv=3, n_repeats=2, random_state=4, scores=S, return_models=True, progress=False
    )
    assert sorted(res.cascade_curves) == sorted(res.test_indices)
    everything = np.arange(len(prompts))
    for (rep, fold), test in res.test_indices.items():
        train = np.setdiff1d(everything, test)
        p_train, p_test = [prompts[i] for i in train], [prompts[i] for i in test]
        # the router's out-of-fold predictions come from a router fitted on these prompts
        ref_router = clone(methods["router"]).fit(p_train, Q.iloc[train])
        np.testing.assert_array_equal(res.oof_predictions["router"][rep][test], ref_router.predict_quality(p_test))
        for name in ("threshold", "cascade"):
            ref = clone(methods[name]).fit(p_train, Q.iloc[train], scores=S.iloc[train])
            sweep, costs, quals = ref.deferral_points(p_test, Q.iloc[test], S.iloc[test])
            curve = res.cascade_curves[(rep, fold)][name]
            np.testing.assert_array_equal(curve.lambdas, sweep)
            np.testing.assert_array_equal(curve.costs, costs)
            np.testing.assert_array_equal(curve.qualities, quals)
            row = res.scores.set_index(["repeat", "fold", "method"]).loc[(rep, fold, name)]
            assert row["quality"] == quals[0] and row["cost"] == costs[0]
    # the threshold cascade's first point always escalates: the strong generator's quality
    Qv = Q.to_numpy()
    for (rep, fold), test in res.test_indices.items():
        fitted = res.models[(rep, fold)]["threshold"]
        strong = int(np.argmax(Qv[np.setdiff1d(everything, test)].mean(axis=0)))  # best on the training fold
        assert fitted.strong_ == NAMES[strong] and fitted.cheap_ == "cheap"
        row = res.scores.set_index(["repeat", "fold", "method"]).loc[(rep, fold, "threshold")]
        assert row["quality"] == pytest.approx(Qv[test, strong].mean(), rel=1e-12)
        if strong != 0:
            assert row["cost"] == pytest.approx(0.1 + 0.02 + [0.1, 0.3, 1.0][strong])


def test_cascade_curves_go_through_the_routers_metrics():
    prompts, Q = one_best_world(n=60, seed=3)
    S = Q + np.random.default_rng(6).normal(scale=0.3, size=Q.shape)
    res = cross_validate_routing(
        {"cascade": CascadeRouter(router(), scoring_cost=0.1, random_state=0)},
        prompts,
        Q,
        cv=3,
        n_repeats=1,
        random_state=0,
        scores=S,
        progress=False,
    )
    Qv = Q.to_numpy()
    c = np.array([0.1, 0.3, 1.0])
    for (rep, fold), test in res.test_indices.items():
        curve = res.cascade_curves[(rep, fold)]["cascade"]
        assert isinstance(curve, DeferralCurve) and curve.c_min == pytest.approx(0.1)
        assert curve.costs.max() > 1.0  # points beyond cost 1 exist and add no area
        row = res.scores.set_index(["repeat", "fold", "method"]).loc[(rep, fold, "cascade")]
        assert row["auc"] == auc(curve.costs, curve.qualities, 0.1)
        hull = hull_curve(Qv[test], c)
        assert row["saving"] == cost_saving(curve, hull, float(Qv[test].mean(axis=0).max()))
    report = routing_report(res)
    assert report.index.tolist() == ["cheap", "mid", "big", "random mixture", "cascade", "oracle"]
    assert report.loc["cascade", "kind"] == "cascade" and report.loc["cascade", "n_folds"] == 3


def test_router_rows_are_unchanged_by_an_added_cascade():
    prompts, Q = one_best_world(n=60, seed=4)
    S = Q + np.random.default_rng(7).normal(scale=0.3, size=Q.shape)
    alone = cross_validate_routing({"router": router()}, prompts, Q, cv=3, n_repeats=2, random_state=2, progress=False)
    both = cross_validate_routing(
        {"router": router(), "threshold": ThresholdCascade(COSTS)},
        prompts,
        Q,
        cv=3,
        n_repeats=2,
        random_state=2,
        scores=S,
        progress=False,
    )
    keep = both.scores["method"] != "threshold"
    pd.testing.assert_frame_equal(
        alone.scores[METRICS + ["method", "kind"]].reset_index(drop=True),
        both.scores.loc[keep, METRICS + ["method", "kind"]].reset_index(drop=True),
        check_exact=True,
    )
    assert list(both.oof_predictions) == ["router"] and alone.cascade_curves == {}


def test_errors():
    prompts, Q = one_best_world(n=30)
    cascade = CascadeRouter(router(), random_state=0)
    with pytest.raises(ValueError, match=r"\['cascade'\] are cascades .* pass scores=, an \(30, 3\) matrix"):
        cross_validate_routing({"router": router(), "cascade": cascade}, prompts, Q, cv=3, progress=False)
    with pytest.raises(ValueError, match=r"pass scores="):
        cross_validate_routing(ThresholdCascade(COSTS), prompts, Q, cv=3, progress=False)
    with pytest.raises(ValueError, match=r"scores must have the shape of quality, .* = \(30, 3\), got \(30, 2\)"):
        cross_validate_routing(cascade, prompts, Q, cv=3, scores=Q.iloc[:, :2].to_numpy(), progress=False)
    with pytest.raises(ValueError, match=r"scores columns must be the generator names .* differ in \['huge', 'mid'\]"):
        cross_validate_routing(cascade, prompts, Q, cv=3, scores=Q.rename(columns={"mid": "huge"}), progress=False)
    with pytest.raises(ValueError, match="scores must be finite"):
        cross_validate_routing(cascade, prompts, Q, cv=3, scores=Q.where(Q > 3), progress=False)
    with pytest.raises(TypeError, match=r"must have fit and predict_quality \(a router\) or fit and deferral_points"):
        cross_validate_routing({"x": object()}, prompts, Q, cv=3, progress=False)
    ratings = np.stack([Q.to_numpy()] * 3, axis=2)
    with pytest.raises(ValueError, match=r"split_rater_cross_validate does not evaluate cascades, got \['cascade'\]"):
        split_rater_cross_validate({"cascade": cascade}, prompts, ratings, cv=3, progress=False)


def test_a_single_cascade_is_named_cascade_and_scores_columns_follow_names():
    prompts, Q = one_best_world(n=45, seed=5)
    S = Q + np.random.default_rng(8).normal(scale=0.3, size=Q.shape)
    a = cross_validate_routing(
        ThresholdCascade(COSTS), prompts, Q, cv=3, n_repeats=1, random_state=0, scores=S, progress=False
    )
    # the same scores with their columns in another order, and quality's too
    b = cross_validate_routing(
        ThresholdCascade(COSTS),
        prompts,
        Q[["mid", "big", "cheap"]],
        cv=3,
        n_repeats=1,
        random_state=0,
        scores=S[["big", "cheap", "mid"]],
        progress=False,
    )
    assert "cascade" in set(a.scores["method"])
    pd.testing.assert_frame_equal(a.scores[METRICS], b.scores[METRICS], check_exact=True)
