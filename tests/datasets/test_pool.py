"""pool(): generators matched by name, NaN where unrated, per-set standardisation, aliases, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.utils import Bunch

from costroute.datasets import pool


def dataset(prompts, columns, values, ids=None):
    ids = list(range(len(prompts))) if ids is None else ids
    quality = pd.DataFrame(
        np.asarray(values, dtype=float),
        index=pd.Index(ids, name="prompt_id"),
        columns=pd.Index(columns, name="generator"),
    )
    return Bunch(prompts=list(prompts), prompt_ids=ids, quality=quality, generators=None)


A = dataset(["a cat", "a dog"], ["x", "y"], [[1.0, 2.0], [3.0, 4.0]])
B = dataset(
    ["a kite", "a hill", "a wall"], ["y", "z"], [[10.0, 20.0], [30.0, 40.0], [50.0, np.nan]], ids=["p", "q", "r"]
)


def test_generators_matched_by_name_and_nan_where_unrated():
    data = pool(A, B, names=["a", "b"], standardize=False)
    assert list(data.quality.columns) == ["x", "y", "z"]
    assert data.prompts == ["a cat", "a dog", "a kite", "a hill", "a wall"]
    assert list(data.source) == ["a", "a", "b", "b", "b"] and data.prompt_ids == [0, 1, "p", "q", "r"]
    expected = [[1, 2, np.nan], [3, 4, np.nan], [np.nan, 10, 20], [np.nan, 30, 40], [np.nan, 50, np.nan]]
    np.testing.assert_array_equal(data.quality.to_numpy(), np.array(expected, dtype=float))
    assert data.quality.index[2] == ("b", "p")
    assert (data.scale["mean"] == 0).all() and (data.scale["std"] == 1).all()


def test_standardisation_per_set_is_stored_and_invertible():
    data = pool(A, B, names=["a", "b"])
    assert data.scale.loc["a", "mean"] == 2.5 and data.scale.loc["b", "mean"] == 30.0
    assert data.scale.loc["a", "std"] == pytest.approx(np.std([1, 2, 3, 4]))
    for label, original in (("a", A), ("b", B)):
        block = data.quality[data.source == label][list(original.quality.columns)]
        cells = block.to_numpy()[~np.isnan(block.to_numpy())]
        assert cells.mean() == pytest.approx(0, abs=1e-12) and cells.std() == pytest.approx(1)
        np.testing.assert_allclose(data.to_source_scale(block.to_numpy(), label), original.quality.to_numpy())
    with pytest.raises(ValueError, match="source must be one of"):
        data.to_source_scale([0.0], "c")


def test_aliases_merge_columns_across_sets():
    data = pool(A, B, names=["a", "b"], aliases={"x": "shared", "z": "shared"}, standardize=False)
    assert list(data.quality.columns) == ["shared", "y"]
    np.testing.assert_array_equal(data.quality["shared"].to_numpy(), [1, 3, 20, 40, np.nan])


def test_default_names():
    assert pool(A, B).names == ["set0", "set1"]


@settings(max_examples=25, deadline=None)
@given(values=st.lists(st.floats(-50, 50), min_size=4, max_size=4), shift=st.floats(-10, 10), factor=st.floats(0.5, 5))
def test_standardised_quality_ignores_affine_rescaling_of_a_set(values, shift, factor):
    if np.std(values) < 1e-3:
        return
    one = dataset(["p", "q"], ["x", "y"], np.reshape(values, (2, 2)))
    moved = dataset(["p", "q"], ["x", "y"], np.reshape(values, (2, 2)) * factor + shift)
    np.testing.assert_allclose(pool(one).quality.to_numpy(), pool(moved).quality.to_numpy(), atol=1e-9)


@pytest.mark.parametrize(
    "args, kwargs, error, message",
    [
        ((), {}, ValueError, "at least one data set"),
        ((A, "not a dataset"), {}, TypeError, r"datasets\[1\] must be a data set"),
        ((A, B), {"names": ["a"]}, ValueError, "names must be a list of 2 labels"),
        ((A, B), {"names": ["a", "a"]}, ValueError, "names must be distinct"),
        ((A, B), {"aliases": {"w": "x"}}, ValueError, r"aliases name generators no data set has: \['w'\]"),
        ((A, B), {"aliases": {"x": "y"}}, ValueError, "aliases map several of its generators"),
        ((A, B), {"aliases": ["x"]}, TypeError, "aliases must be a dict"),
        ((A,), {"standardize": "yes"}, TypeError, "standardize must be True or False"),
        ((dataset(["p"], ["x"], [[2.0]]),), {}, ValueError, "constant quality"),
        ((Bunch(prompts=["p"], quality=pd.DataFrame({"x": [1.0, 2.0]})),), {}, ValueError, "1 prompts but 2 rows"),
    ],
)
def test_bad_input(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        pool(*args, **kwargs)


def test_real_sets_share_no_generator_name(shared_data):
    """GenAI-Bench and AGIQA-3K rate disjoint generators: the pooled matrix is block-diagonal."""
    from costroute.datasets import load_agiqa3k, load_genai_bench

    genai, agiqa = load_genai_bench(cost_unit="usd"), load_agiqa3k()
    data = pool(genai, agiqa, names=["genai_bench", "agiqa3k"])
    assert data.quality.shape == (527 + 287, 6 + 10)
    assert not set(genai.quality.columns) & set(agiqa.quality.columns)
    rated = data.quality.notna().groupby(data.source).any()
    assert rated.sum(axis=0).max() == 1  # no generator rated by both


def test_the_same_data_set_twice_is_refused():
    with pytest.raises(
        ValueError,
        match=r"datasets\[0\] and datasets\[2\] are the same data set object; pooling it "
        r"twice would duplicate every prompt",
    ):
        pool(A, B, A)


def test_prompts_repeated_across_sets_warn_with_their_count():
    copy_of_a = dataset(["a cat", "a dog"], ["x", "y"], [[1.0, 2.5], [3.0, 4.0]])
    with pytest.warns(
        UserWarning,
        match=r"^2 prompt\(s\) appear in more than one data set \(e\.g\. 'a cat' in 'a' "
        r"and 'c'\)",
    ):
        data = pool(A, B, copy_of_a, names=["a", "b", "c"])
    assert len(data.prompts) == 7  # nothing dropped: each set keeps its rows
    overlap = dataset(["a kite", "a new one"], ["z"], [[1.0], [2.0]])
    with pytest.warns(UserWarning, match=r"^1 prompt\(s\) appear in more than one data set"):
        pool(A, B, overlap)


def test_distinct_prompts_pool_without_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pool(A, B)
        pool(dataset(["p", "p"], ["x"], [[1.0], [2.0]]))  # a repeat within one set is that set's own business
