"""simulate_scores: the within-prompt correlation it promises, and its invariants (hypothesis)."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costroute.datasets import simulate_scores


def within_prompt_correlation(a, b):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    da = (a - a.mean(axis=1, keepdims=True)).ravel()
    db = (b - b.mean(axis=1, keepdims=True)).ravel()
    return float(np.corrcoef(da, db)[0, 1])


def make_quality(seed, n, k, spread=1.0):
    """Prompt effects (row offsets, larger than the within-prompt spread) plus generator effects and noise."""
    rng = np.random.default_rng(seed)
    return 3.0 + 2.0 * rng.normal(size=(n, 1)) + rng.normal(size=(1, k)) + spread * rng.normal(size=(n, k))


@settings(max_examples=25, deadline=None)
@given(r=st.floats(0.05, 1.0), k=st.integers(2, 6), seed=st.integers(0, 2**16), spread=st.floats(0.1, 3.0))
def test_realised_correlation_is_close_to_r_on_a_large_matrix(r, k, seed, spread):
    quality = make_quality(seed, 4000, k, spread)
    scores = simulate_scores(quality, r, random_state=seed + 1)
    # 8,000+ cells: the sampling error of r is below 0.012, so 0.05 is over 4 standard errors
    assert abs(within_prompt_correlation(scores, quality) - r) < 0.05


@settings(max_examples=20, deadline=None)
@given(k=st.integers(2, 5), seed=st.integers(0, 2**16))
def test_r_equal_one_gives_the_quality_deviations(k, seed):
    quality = make_quality(seed, 30, k)
    scores = simulate_scores(quality, 1.0, random_state=seed)
    np.testing.assert_allclose(
        scores - scores.mean(axis=1, keepdims=True), quality - quality.mean(axis=1, keepdims=True), atol=1e-12
    )
    assert within_prompt_correlation(scores, quality) == pytest.approx(1.0)


@settings(max_examples=20, deadline=None)
@given(r=st.floats(0.1, 0.99), seed=st.integers(0, 2**16), shift=st.floats(-5, 5), scale=st.floats(0.1, 10))
def test_reproducible_and_equivariant(r, seed, shift, scale):
    quality = make_quality(seed, 20, 3)
    first = simulate_scores(quality, r, random_state=seed)
    np.testing.assert_array_equal(simulate_scores(quality, r, random_state=seed), first)
    assert not np.allclose(simulate_scores(quality, r, random_state=seed + 1), first)
    # per-prompt offsets do not change the noise; a rescaled quality gives rescaled scores
    offsets = shift * np.arange(20.0)[:, None]
    np.testing.assert_allclose(simulate_scores(quality + offsets, r, random_state=seed), first + offsets, atol=1e-9)
    np.testing.assert_allclose(
        simulate_scores(scale * quality, r, random_state=seed), scale * first, rtol=1e-9, atol=1e-9
    )


def test_noise_variance_follows_the_derivation():
    """sigma^2 = v (1/r^2 - 1) / (1 - 1/K): checked on the realised noise of a big matrix."""
    quality = make_quality(0, 50000, 4)
    deviations = quality - quality.mean(axis=1, keepdims=True)
    v = np.mean(deviations**2)
    noise = simulate_scores(quality, 0.5, random_state=1) - quality
    assert np.var(noise) == pytest.approx(v * (1 / 0.25 - 1) / (1 - 1 / 4), rel=0.02)


def test_types_in_and_out():
    quality = pd.DataFrame(
        make_quality(1, 5, 3),
        index=pd.Index(list("abcde"), name="prompt_id"),
        columns=pd.Index(["x", "y", "z"], name="generator"),
    )
    scores = simulate_scores(quality, 0.8, random_state=0)
    assert isinstance(scores, pd.DataFrame)
    assert scores.index.equals(quality.index) and scores.columns.equals(quality.columns)
    assert scores.index.name == "prompt_id" and scores.columns.name == "generator"
    array = simulate_scores(quality.to_numpy(), 0.8, random_state=0)
    assert isinstance(array, np.ndarray) and array.shape == (5, 3)
    np.testing.assert_array_equal(array, scores.to_numpy())
    listed = simulate_scores(quality.to_numpy().tolist(), 0.8, random_state=0)
    np.testing.assert_array_equal(listed, array)
    assert quality.equals(pd.DataFrame(make_quality(1, 5, 3), index=quality.index, columns=quality.columns))


def test_missing_cells_stay_missing():
    quality = make_quality(2, 2000, 4)
    quality[::7, 1] = np.nan
    quality[3, :3] = np.nan  # a row with one value has no within-prompt deviation
    scores = simulate_scores(quality, 0.6, random_state=0)
    assert np.array_equal(np.isnan(scores), np.isnan(quality))


@pytest.mark.parametrize("bad", [0, 0.0, -0.3, 1.0000001, 2, math.nan, math.inf, -math.inf])
def test_bad_correlation_is_a_value_error(bad):
    with pytest.raises(ValueError, match=r"correlation must be in \(0, 1\]"):
        simulate_scores(make_quality(0, 5, 3), bad)


@given(bad=st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0, exclude_min=True), st.just(math.nan)))
def test_any_out_of_range_correlation_is_a_value_error(bad):
    with pytest.raises(ValueError, match="correlation must be in"):
        simulate_scores(np.array([[1.0, 2.0], [3.0, 5.0]]), bad)


@pytest.mark.parametrize("bad", [True, "0.5", None])
def test_non_number_correlation_is_a_type_error(bad):
    with pytest.raises(TypeError, match="correlation must be a real number"):
        simulate_scores(make_quality(0, 5, 3), bad)


def test_bad_quality():
    with pytest.raises(ValueError, match="2-D"):
        simulate_scores(np.arange(5.0), 0.5)
    with pytest.raises(ValueError, match="no within-prompt variation"):
        simulate_scores(np.ones((4, 3)), 0.5)
    with pytest.raises(ValueError, match="no within-prompt variation"):
        simulate_scores(np.arange(4.0)[:, None], 0.5)
    with pytest.raises(ValueError, match="infinite"):
        simulate_scores(np.array([[1.0, np.inf], [2.0, 3.0]]), 0.5)
    with pytest.raises(TypeError, match="numeric"):
        simulate_scores([["a", "b"], ["c", "d"]], 0.5)
