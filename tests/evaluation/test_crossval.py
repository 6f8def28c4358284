"""Repeated K-fold cross-validation of routers against the baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import KFold

from costroute import CostAwareRouter
from costroute.evaluation import (
    RoutingCVResult,
    cross_validate_routing,
    hull_curve,
    oracle_curve,
    route_with_penalty,
    routing_report,
    split_rater_cross_validate,
)

from ._helpers import assert_folds_partition, varied_prompts


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


# --------------------------------------------------------------------------------------
# folds: a partition per repeat, shared by every method
# --------------------------------------------------------------------------------------
def _real_routers():
    gens = {"cheap": 1.0, "mid": 3.0, "best": 10.0}
    return {q: CostAwareRouter(gens, features="complexity", quality_model=q, random_state=0) for q in ("knn", "ridge")}


def test_folds_partition_the_prompts_and_every_method_uses_them(toy):
    _, Q, frame, _, c = toy
    prompts = varied_prompts(len(Q))
    routers = _real_routers()
    res = cross_validate_routing(routers, prompts, frame, cv=3, n_repeats=2, random_state=0, progress=False)
    assert_folds_partition(res.test_indices, len(Q), cv=3, n_repeats=2)
    for (rep, fold), test in res.test_indices.items():
        train = np.setdiff1d(np.arange(len(Q)), test)
        rows = res.scores[(res.scores["repeat"] == rep) & (res.scores["fold"] == fold)].set_index("method")
        # the baselines are scored on exactly the test fold's prompts ...
        for k, name in enumerate(["cheap", "mid", "best"]):
            assert rows.loc[name, "quality"] == pytest.approx(Q[test, k].mean(), rel=1e-12)
        assert rows.loc["oracle", "quality"] == pytest.approx(Q[test].max(axis=1).mean(), rel=1e-12)
        for name, router in routers.items():
            # ... and each router is fitted on all the other prompts and scored on the same ones
            refit = clone(router).fit([prompts[i] for i in train], frame.iloc[train].reset_index(drop=True))
            pred = refit.predict_quality([prompts[i] for i in test])
            np.testing.assert_allclose(res.oof_predictions[name][rep][test], pred, rtol=1e-12, atol=1e-12)
            chosen = route_with_penalty(pred, c, 0.0)
            assert rows.loc[name, "quality"] == pytest.approx(Q[test, chosen].mean(), rel=1e-12)
    # the same seed gives the same folds; another seed other folds
    again = cross_validate_routing(routers["knn"], prompts, frame, cv=3, n_repeats=2, random_state=0, progress=False)
    other = cross_validate_routing(routers["knn"], prompts, frame, cv=3, n_repeats=2, random_state=1, progress=False)
    for key, test in res.test_indices.items():
        np.testing.assert_array_equal(again.test_indices[key], test)
    assert any(not np.array_equal(other.test_indices[k], res.test_indices[k]) for k in res.test_indices)


def test_folds_of_a_splitter_are_recorded_as_repeat_0(toy):
    prompts, Q, frame, routers, c = toy
    splitter = KFold(n_splits=3, shuffle=True, random_state=5)
    res = cross_validate_routing(routers, prompts, frame, cv=splitter, progress=False)
    assert_folds_partition(res.test_indices, len(Q), cv=3, n_repeats=1)
    for f, (_, test) in enumerate(splitter.split(np.arange(len(Q)))):
        np.testing.assert_array_equal(res.test_indices[(0, f)], test)


# --------------------------------------------------------------------------------------
# progress and verbose output
# --------------------------------------------------------------------------------------
def test_progress_bar_on_stderr_by_default_and_silent_when_off(toy, capfd):
    prompts, Q, frame, routers, c = toy
    quiet = cross_validate_routing(routers, prompts, frame, cv=3, n_repeats=2, random_state=0, progress=False)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    shown = cross_validate_routing(routers, prompts, frame, cv=3, n_repeats=2, random_state=0)
    out, err = capfd.readouterr()
    assert out == ""
    assert "cross-validating" in err and "12/12" in err  # 3 folds x 2 repeats x 2 routers
    timing = ["fit_time", "predict_time"]
    pd.testing.assert_frame_equal(quiet.scores.drop(columns=timing), shown.scores.drop(columns=timing))
    # routing_report passes the choice through
    routing_report(routers, prompts, frame, cv=3, n_repeats=1, random_state=0, progress=False)
    assert capfd.readouterr() == ("", "")


def test_verbose_prints_one_line_per_fold_to_stdout(toy, capfd):
    prompts, Q, frame, routers, c = toy
    cross_validate_routing(routers, prompts, frame, cv=3, n_repeats=2, random_state=0, verbose=1, progress=False)
    out, err = capfd.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert len(lines) == 6
    assert lines[0].startswith("[cross_validate_routing] repeat 0 fold 0: perfect fit")
    cross_validate_routing(routers, prompts, frame, cv=3, n_repeats=1, random_state=0, verbose=1)
    out, err = capfd.readouterr()
    assert len(out.splitlines()) == 3 and "6/6" in err


def test_progress_must_be_a_bool(toy):
    prompts, Q, frame, routers, c = toy
    with pytest.raises(TypeError, match="progress must be True or False, got str: 'yes'"):
        cross_validate_routing(routers, prompts, frame, cv=3, progress="yes")
