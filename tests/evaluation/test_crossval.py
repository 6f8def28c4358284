"""Repeated K-fold cross-validation of routers against the baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from costroute.evaluation import (
    RoutingCVResult,
    cross_validate_routing,
    hull_curve,
    oracle_curve,
    routing_report,
    split_rater_cross_validate,
)


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
