"""ThresholdCascade: exact decisions on constructed data, cost accounting, sweeps, errors."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from costroute.cascade import ThresholdCascade, ThresholdOutcome

COSTS = {"cheap": 1.0, "mid": 4.0, "big": 10.0}
NC = np.array([0.1, 0.4, 1.0])
PROMPTS = [f"prompt {i}" for i in range(6)]

# 6 prompts x (cheap, mid, big). Mean quality: cheap 2.5, mid 3.0, big 3.5 -> big is the strong one.
Q = np.array(
    [
        [4.0, 3.0, 3.0],
        [1.0, 3.0, 5.0],
        [3.0, 3.0, 3.0],
        [2.0, 3.0, 4.0],
        [4.0, 3.0, 2.0],
        [1.0, 3.0, 4.0],
    ]
)
# the scorer's view of every image; only the cheap column drives the decisions
S = np.array(
    [
        [0.9, 0.0, 0.0],
        [0.1, 0.0, 0.0],
        [0.5, 0.0, 0.0],
        [0.3, 0.0, 0.0],
        [0.7, 0.0, 0.0],
        [0.2, 0.0, 0.0],
    ]
)


def test_fit_picks_the_cheapest_and_the_best_generator_and_the_median_threshold():
    cascade = ThresholdCascade(COSTS).fit(PROMPTS, Q, scores=S)
    assert (cascade.cheap_, cascade.strong_) == ("cheap", "big")
    assert (cascade.cheap_index_, cascade.strong_index_) == (0, 2)
    assert cascade.threshold_ == pytest.approx(0.4)  # median of 0.1, 0.2, 0.3, 0.5, 0.7, 0.9
    np.testing.assert_allclose(cascade.normalized_costs_, NC)
    assert cascade.score_quantiles_.shape == (41,)
    assert cascade.score_quantiles_[0] == 0.1 and cascade.score_quantiles_[-1] == 0.9
    assert cascade.score_quantiles_[20] == pytest.approx(0.4)


def test_exact_decisions_returned_images_and_costs():
    cascade = ThresholdCascade(COSTS, threshold=0.5, scoring_cost=0.5).fit(PROMPTS, Q, scores=S)
    out = cascade.simulate(PROMPTS, Q, S)
    assert isinstance(out, ThresholdOutcome)
    # scores 0.1, 0.3, 0.2 are below 0.5; 0.5 itself is not (strictly below escalates)
    assert out.escalated.tolist() == [False, True, False, True, False, True]
    assert out.returned.tolist() == ["cheap", "big", "cheap", "big", "cheap", "big"]
    assert out.returned_index.tolist() == [0, 2, 0, 2, 0, 2]
    # cheap 0.1 + scoring 0.05, plus big 1.0 when escalated
    np.testing.assert_allclose(out.cost, [0.15, 1.15, 0.15, 1.15, 0.15, 1.15])
    np.testing.assert_array_equal(out.quality, [4.0, 5.0, 3.0, 4.0, 4.0, 4.0])
    assert out.mean_quality == pytest.approx(24.0 / 6)
    assert out.mean_cost == pytest.approx(0.65)
    assert out.n_images.tolist() == [1, 2, 1, 2, 1, 2]
    frame = out.to_frame()
    assert frame.columns.tolist() == ["escalated", "returned", "n_images", "cost", "quality"]
    assert len(out) == 6


def test_threshold_minus_inf_is_always_cheap_plus_scoring_and_inf_always_both():
    cascade = ThresholdCascade(COSTS, scoring_cost=0.3).fit(PROMPTS, Q, scores=S)
    never = cascade.simulate(PROMPTS, Q, S, threshold=-np.inf)
    assert not never.escalated.any()
    np.testing.assert_allclose(never.cost, 0.1 + 0.03)
    np.testing.assert_array_equal(never.quality, Q[:, 0])
    always = cascade.simulate(PROMPTS, Q, S, threshold=np.inf)
    assert always.escalated.all()
    np.testing.assert_allclose(always.cost, 0.1 + 0.03 + 1.0)
    np.testing.assert_array_equal(always.quality, Q[:, 2])


def test_explicit_generators_and_dataframe_columns_in_any_order():
    cascade = ThresholdCascade(COSTS, cheap="mid", strong="big", threshold=0.5).fit(PROMPTS, Q, scores=S)
    out = cascade.simulate(PROMPTS, Q, S)
    # the mid generator's images all score 0.0 < 0.5: every prompt escalates from mid to big
    assert out.escalated.all() and (out.returned == "big").all()
    np.testing.assert_allclose(out.cost, 0.4 + 1.0)
    # the cheap generator is the second one here: a high threshold on its scores decides
    other = ThresholdCascade(COSTS, cheap="cheap", strong="mid", threshold=0.25).fit(PROMPTS, Q, scores=S)
    assert other.simulate(PROMPTS, Q, S).returned.tolist() == ["cheap", "mid", "cheap", "cheap", "cheap", "mid"]
    names = list(COSTS)
    Qf = pd.DataFrame(Q, columns=names)[["big", "cheap", "mid"]]
    Sf = pd.DataFrame(S, columns=names)[["mid", "big", "cheap"]]
    framed = ThresholdCascade(COSTS, cheap="mid", strong="big", threshold=0.5).fit(PROMPTS, Qf, scores=Sf)
    out_f = framed.simulate(PROMPTS, Qf, Sf)
    np.testing.assert_array_equal(out_f.quality, out.quality)
    np.testing.assert_array_equal(out_f.cost, out.cost)


def test_cheapest_generator_that_is_also_the_best_is_used_alone_unscored():
    Qc = Q[:, [2, 1, 0]]  # big's qualities on the cheapest generator
    cascade = ThresholdCascade(COSTS, scoring_cost=0.3).fit(PROMPTS, Qc, scores=S)
    assert cascade.cheap_ == cascade.strong_ == "cheap"
    for t in (-np.inf, 0.5, np.inf):
        out = cascade.simulate(PROMPTS, Qc, S, threshold=t)
        assert not out.escalated.any()
        np.testing.assert_allclose(out.cost, 0.1)  # no scoring: nothing could follow from it
        np.testing.assert_array_equal(out.quality, Qc[:, 0])


def test_ties_among_the_cheapest_and_the_best_are_broken_by_quality_then_cost():
    costs = {"a": 1.0, "b": 1.0, "c": 5.0, "d": 10.0}
    Qt = np.array([[1.0, 2.0, 4.0, 4.0], [1.0, 2.0, 4.0, 4.0]])
    cascade = ThresholdCascade(costs).fit(["x", "y"], Qt, scores=Qt)
    assert cascade.cheap_ == "b"  # equally cheap, better on the training data
    assert cascade.strong_ == "c"  # equally good, cheaper


def test_deferral_points_sweep_from_always_both_to_never():
    cascade = ThresholdCascade(COSTS, scoring_cost=0.5).fit(PROMPTS, Q, scores=S)
    thresholds, costs, quals = cascade.deferral_points(PROMPTS, Q, S)
    assert thresholds.shape == costs.shape == quals.shape == (43,)
    assert thresholds[0] == np.inf and thresholds[-1] == -np.inf
    np.testing.assert_array_equal(thresholds[1:-1], cascade.score_quantiles_[::-1])
    assert np.all(np.diff(thresholds) <= 0) and np.all(np.diff(costs) <= 1e-12)
    assert costs[0] == pytest.approx(0.1 + 0.05 + 1.0) and quals[0] == Q[:, 2].mean()
    assert costs[-1] == pytest.approx(0.1 + 0.05) and quals[-1] == Q[:, 0].mean()
    for i in (0, 7, 20, 42):
        out = cascade.simulate(PROMPTS, Q, S, threshold=thresholds[i])
        assert (costs[i], quals[i]) == (out.mean_cost, out.mean_quality)
    given_t, c2, q2 = cascade.deferral_points(PROMPTS, Q, S, thresholds=[0.25, 0.45])
    np.testing.assert_allclose(c2, [0.15 + 2 / 6, 0.15 + 3 / 6])
    np.testing.assert_allclose(q2, [(4 + 5 + 3 + 2 + 4 + 4) / 6, (4 + 5 + 3 + 4 + 4 + 4) / 6])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 30),
    k=st.integers(2, 5),
    scoring=st.floats(0, 5),
    threshold=st.floats(-3, 3),
)
def test_cost_and_quality_accounting(seed, n, k, scoring, threshold):
    rng = np.random.default_rng(seed)
    costs = {f"g{j}": float(c) for j, c in enumerate(rng.uniform(0.5, 10.0, size=k))}
    Qr = rng.normal(size=(n, k))
    Sr = Qr + rng.normal(size=(n, k))
    cascade = ThresholdCascade(costs, threshold=threshold, scoring_cost=scoring).fit(np.zeros((n, 1)), Qr, scores=Sr)
    c = np.array(list(costs.values())) / max(costs.values())
    a, b = cascade.cheap_index_, cascade.strong_index_
    assert c[a] == c.min() and b == int(np.argmax(Qr.mean(axis=0)))
    out = cascade.simulate(np.zeros((n, 1)), Qr, Sr)
    if a == b:
        assert not out.escalated.any()
        np.testing.assert_allclose(out.cost, c[a])
    else:
        np.testing.assert_array_equal(out.escalated, Sr[:, a] < threshold)
        np.testing.assert_allclose(out.cost, c[a] + scoring / max(costs.values()) + out.escalated * c[b], rtol=1e-12)
    np.testing.assert_array_equal(out.quality, Qr[np.arange(n), out.returned_index])
    assert set(out.returned_index) <= {a, b}


def test_estimator_contract():
    cascade = ThresholdCascade(COSTS, cheap="cheap", threshold=0.2, scoring_cost=1.5)
    params = clone(cascade).get_params()
    assert params == {"generators": COSTS, "cheap": "cheap", "strong": None, "threshold": 0.2, "scoring_cost": 1.5}
    cascade.fit(PROMPTS, Q, scores=S)
    assert cascade.threshold == 0.2 and cascade.strong is None  # parameters untouched by fit
    assert cascade.normalized_scoring_cost_ == pytest.approx(0.15)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ThresholdCascade(COSTS).simulate(PROMPTS, Q, S)


def test_bad_input():
    with pytest.raises(ValueError, match="scores is required"):
        ThresholdCascade(COSTS).fit(PROMPTS, Q)
    with pytest.raises(ValueError, match=r"cheap must be one of the generator names \['cheap', 'mid', 'big'\]"):
        ThresholdCascade(COSTS, cheap="tiny").fit(PROMPTS, Q, scores=S)
    with pytest.raises(ValueError, match="strong must be one of"):
        ThresholdCascade(COSTS, strong=2).fit(PROMPTS, Q, scores=S)
    with pytest.raises(ValueError, match="cheap and strong must be different generators, got 'mid'"):
        ThresholdCascade(COSTS, cheap="mid", strong="mid").fit(PROMPTS, Q, scores=S)
    with pytest.raises(ValueError, match="threshold must not be NaN"):
        ThresholdCascade(COSTS, threshold=float("nan")).fit(PROMPTS, Q, scores=S)
    with pytest.raises(TypeError, match="threshold must be a real number"):
        ThresholdCascade(COSTS, threshold="0.5").fit(PROMPTS, Q, scores=S)
    with pytest.raises(ValueError, match="scoring_cost must be finite and >= 0, got -1.0"):
        ThresholdCascade(COSTS, scoring_cost=-1).fit(PROMPTS, Q, scores=S)
    with pytest.raises(
        ValueError, match=r"scores must have shape \(n_prompts, n_generators\) = \(6, 3\).*got shape \(6, 2\)"
    ):
        ThresholdCascade(COSTS).fit(PROMPTS, Q, scores=S[:, :2])
    with pytest.raises(ValueError, match=r"y contains NaN or inf at 1 cell\(s\), e.g. \(row 0, cheap\)"):
        ThresholdCascade(COSTS).fit(PROMPTS, _with_nan(Q), scores=S)
    with pytest.raises(
        ValueError, match=r"the columns of scores must be exactly the generator names.*missing: \['big'\]"
    ):
        ThresholdCascade(COSTS).fit(PROMPTS, Q, scores=pd.DataFrame(S, columns=["cheap", "mid", "huge"]))
    with pytest.raises(TypeError, match="single str"):
        ThresholdCascade(COSTS).fit("one prompt", Q, scores=S)
    fitted = ThresholdCascade(COSTS).fit(PROMPTS, Q, scores=S)
    with pytest.raises(ValueError, match="scores is required"):
        fitted.simulate(PROMPTS, Q)
    with pytest.raises(ValueError, match="thresholds must be a non-empty 1-d array without NaN"):
        fitted.deferral_points(PROMPTS, Q, S, thresholds=[0.1, float("nan")])


def _with_nan(M):
    M = M.copy()
    M[0, 0] = np.nan
    return M
