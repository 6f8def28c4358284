"""Split-rater cross-validation: train on the other raters, score on the held-out one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from costroute import CostAwareRouter
from costroute.evaluation import (
    cross_validate_routing,
    route_with_penalty,
    routing_report,
    split_rater_cross_validate,
)

from ._helpers import assert_folds_partition, varied_prompts


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


def _ratings(Q):
    rng = np.random.default_rng(11)
    return Q[:, :, None] + rng.normal(scale=0.7, size=Q.shape + (3,))


def test_split_rater_folds_partition_the_prompts_and_every_method_uses_them(toy):
    _, Q, _, _, c = toy
    prompts, ratings, names = varied_prompts(len(Q)), _ratings(Q), ["cheap", "mid", "best"]
    router = CostAwareRouter(dict(zip(names, [1.0, 3.0, 10.0])), features="complexity", quality_model="ridge")
    res = split_rater_cross_validate(
        {"ridge": router},
        prompts,
        ratings,
        generator_names=names,
        cv=3,
        n_repeats=2,
        random_state=0,
        progress=False,
    )
    assert_folds_partition(res.test_indices, len(Q), cv=3, n_repeats=2)
    for (rep, fold), test in res.test_indices.items():
        train = np.setdiff1d(np.arange(len(Q)), test)
        for r in range(3):
            rows = res.scores[
                (res.scores["repeat"] == rep) & (res.scores["fold"] == fold) & (res.scores["rater"] == r)
            ].set_index("method")
            held = ratings[test, :, r]
            for k, name in enumerate(names):
                assert rows.loc[name, "quality"] == pytest.approx(held[:, k].mean(), rel=1e-12)
            assert rows.loc["oracle", "quality"] == pytest.approx(held.max(axis=1).mean(), rel=1e-12)
            # the router learns the other raters' mean on every other prompt, is scored on rater r
            others = np.delete(ratings, r, axis=2).mean(axis=2)
            target = pd.DataFrame(others[train], columns=names)
            pred = clone(router).fit([prompts[i] for i in train], target).predict_quality([prompts[i] for i in test])
            chosen = route_with_penalty(pred, c, 0.0)
            assert rows.loc["ridge", "quality"] == pytest.approx(held[np.arange(len(test)), chosen].mean(), rel=1e-12)
    # the same folds as cross_validate_routing with the same settings
    cv_res = cross_validate_routing(
        {"ridge": router}, prompts, ratings.mean(axis=2), cv=3, n_repeats=2, random_state=0, progress=False
    )
    assert cv_res.test_indices.keys() == res.test_indices.keys()
    for key, test in res.test_indices.items():
        np.testing.assert_array_equal(cv_res.test_indices[key], test)


def test_split_rater_progress_bar_and_verbose_lines(toy, capfd):
    prompts, Q, frame, routers, c = toy
    ratings = _ratings(Q)
    split_rater_cross_validate(routers, prompts, ratings, cv=3, random_state=0, progress=False)
    assert capfd.readouterr() == ("", "")
    split_rater_cross_validate(routers, prompts, ratings, cv=3, random_state=0, verbose=1)
    out, err = capfd.readouterr()
    assert "split-rater cross-validating" in err and "18/18" in err  # 3 folds x 3 raters x 2 routers
    assert len(out.splitlines()) == 9 and out.startswith("[split_rater_cross_validate] repeat 0 fold 0 rater 0")
    with pytest.raises(TypeError, match="progress must be True or False"):
        split_rater_cross_validate(routers, prompts, ratings, cv=3, progress=None)
