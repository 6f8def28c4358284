"""noise_ceiling, interaction_r and the report's interaction columns."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costroute.evaluation import cross_validate_routing, interaction_r, noise_ceiling, routing_report
from costroute.evaluation._noise_ceiling import _double_centre


def orthogonal_interactions(m: int, n: int = 50, k: int = 4, seed: int = 0) -> list[np.ndarray]:
    """m double-centred (n, k) matrices, orthogonal to each other, of unit Frobenius norm."""
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    while len(out) < m:
        v = _double_centre(rng.normal(size=(n, k)))
        for u in out:
            v = v - np.sum(u * v) * u
        out.append(v / np.linalg.norm(v))
    return out


def test_identical_raters_are_perfectly_reliable():
    truth = np.random.default_rng(1).normal(size=(40, 5))
    res = noise_ceiling(np.stack([truth] * 3, axis=2))
    assert res.single_rater_r == pytest.approx(1.0)
    assert res.reliability == pytest.approx(1.0)
    assert res.ceiling_r == pytest.approx(1.0)
    assert (res.n_raters, res.n_prompts) == (3, 40)
    np.testing.assert_allclose(res.pairwise_r, np.ones((3, 3)))


def test_independent_noise_has_no_reliability():
    rng = np.random.default_rng(2)
    res = noise_ceiling(rng.normal(size=(4000, 4, 3)))
    assert abs(res.single_rater_r) < 0.02
    assert abs(res.reliability) < 0.06
    assert res.ceiling_r < 0.25


@pytest.mark.parametrize("n_raters", [2, 3, 5])
def test_spearman_brown_on_exact_correlations(n_raters):
    # rater j = a + e_j with a, e_1..e_R orthonormal: every pair correlates at exactly 1/2,
    # and adding a prompt effect and a generator effect changes nothing
    a, *noise = orthogonal_interactions(1 + n_raters)
    rng = np.random.default_rng(3)
    rows, cols = rng.normal(size=(50, 1)), rng.normal(size=(1, 4))
    ratings = np.stack([a + e + rows + cols + 3.0 for e in noise], axis=2)
    res = noise_ceiling(ratings)
    expected = n_raters * 0.5 / (1 + (n_raters - 1) * 0.5)  # 2/3, 3/4, 5/6
    assert res.single_rater_r == pytest.approx(0.5, abs=1e-12)
    assert res.reliability == pytest.approx(expected, abs=1e-12)
    assert res.ceiling_r == pytest.approx(math.sqrt(expected), abs=1e-12)


def test_ceiling_is_the_correlation_of_the_truth_with_the_rater_mean():
    # the noise-free interaction correlates with the R-rater mean at exactly sqrt(reliability)
    a, *noise = orthogonal_interactions(4)
    ratings = np.stack([a + e for e in noise], axis=2)
    res = noise_ceiling(ratings)
    assert interaction_r(a, ratings.mean(axis=2)) == pytest.approx(res.ceiling_r, abs=1e-12)


def test_prompts_with_a_missing_rating_are_left_out():
    rng = np.random.default_rng(4)
    ratings = rng.normal(size=(30, 3, 2)) + rng.normal(size=(30, 3, 1))
    holed = ratings.copy()
    holed[[2, 7], 1, 0] = np.nan
    res = noise_ceiling(holed)
    keep = np.setdiff1d(np.arange(30), [2, 7])
    assert res.n_prompts == 28
    assert res.reliability == pytest.approx(noise_ceiling(ratings[keep]).reliability, abs=1e-12)
    assert res.to_dict()["n_prompts"] == 28


@pytest.mark.parametrize(
    "ratings, match",
    [
        (np.ones((5, 3)), r"ratings must be 3-d \(n_prompts, n_generators, n_raters\), got shape \(5, 3\)"),
        (np.ones((5, 3, 1)), r"at least 2 raters.*n_raters=1"),
        (np.ones((5, 1, 3)), r"at least 2 generators"),
        (np.full((5, 3, 2), np.inf), r"infinite"),
        (np.full((5, 3, 2), np.nan), r"0 prompt\(s\) with every rating"),
        ([["a"]], r"numeric"),
    ],
)
def test_noise_ceiling_bad_input(ratings, match):
    with pytest.raises(ValueError, match=match):
        noise_ceiling(ratings)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 15), k=st.integers(2, 6), seed=st.integers(0, 2**32 - 1))
def test_interaction_r_ignores_prompt_and_generator_effects(n, k, seed):
    rng = np.random.default_rng(seed)
    true = rng.normal(size=(n, k))
    pred = 2.5 * true + rng.normal(size=(n, 1)) + rng.normal(size=(1, k))
    r = interaction_r(pred, true)
    if np.allclose(_double_centre(true), 0):
        assert np.isnan(r)
    else:
        assert r == pytest.approx(1.0, abs=1e-9)
        assert interaction_r(-pred, true) == pytest.approx(-1.0, abs=1e-9)
        assert -1.0 <= interaction_r(rng.normal(size=(n, k)), true) <= 1.0


def test_interaction_r_of_additive_prediction_is_nan_and_bad_input():
    true = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    additive = np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 1.0]])  # prompt effect + generator effect
    assert np.isnan(interaction_r(additive, true))
    with pytest.raises(ValueError, match=r"pred has shape \(3, 1\) but true has shape \(3, 2\)"):
        interaction_r(true[:, :1], true)
    with pytest.raises(ValueError, match="pred holds 1 NaN"):
        interaction_r(np.array([[np.nan, 1.0], [1.0, 2.0], [2.0, 1.0]]), true)
    with pytest.raises(ValueError, match="2-d"):
        interaction_r(np.ones(3), np.ones(3))


def test_report_has_interaction_r_and_the_ceiling(toy):
    prompts, Q, _, routers, _ = toy
    rng = np.random.default_rng(5)
    ratings = Q[:, :, None] + rng.normal(scale=0.5, size=(len(Q), 3, 3))
    plain = cross_validate_routing(routers, prompts, Q, cv=3, n_repeats=2, random_state=0, progress=False)
    rated = cross_validate_routing(
        routers, prompts, Q, cv=3, n_repeats=2, random_state=0, progress=False, ratings=ratings
    )
    rep_plain, rep = routing_report(plain), routing_report(rated)
    # the new columns sit after the metrics, before fit_time_mean; nothing else changes
    assert list(rep_plain.columns[-3:]) == ["interaction_r_mean", "interaction_r_std", "fit_time_mean"]
    assert list(rep.columns) == list(rep_plain.columns[:-1]) + ["interaction_ceiling_mean", "fit_time_mean"]
    assert rep.loc["perfect", "interaction_r_mean"] == pytest.approx(1.0)
    # per repeat over all prompts (out of fold), then mean and std over the repeats
    values = [interaction_r(p, Q) for p in rated.oof_predictions["constant"]]
    assert rep.loc["constant", "interaction_r_mean"] == pytest.approx(np.mean(values))
    assert rep.loc["constant", "interaction_r_std"] == pytest.approx(np.std(values, ddof=1))
    expected = noise_ceiling(ratings).ceiling_r
    assert rep.loc["perfect", "interaction_ceiling_mean"] == pytest.approx(expected)
    assert (
        rep.loc[["random mixture", "oracle", "cheap"], ["interaction_r_mean", "interaction_ceiling_mean"]]
        .isna()
        .all()
        .all()
    )
    pooled = routing_report(rated, pooled=True)
    assert pooled.loc["perfect", "interaction_r_mean"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"ratings must have shape .* = \(30, 3, R\)"):
        cross_validate_routing(routers, prompts, Q, cv=3, n_repeats=1, progress=False, ratings=ratings[:10])
