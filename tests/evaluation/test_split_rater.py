"""Split-rater cross-validation: train on the other raters, score on the held-out one."""

from __future__ import annotations

import numpy as np
import pytest

from costroute.evaluation import routing_report, split_rater_cross_validate


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
