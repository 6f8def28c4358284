"""PromptComplexity: transparent statistics with known values on hand-made prompts."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costroute.features import COMPLEXITY_FEATURES, PromptComplexity


def stats(prompt):
    pc = PromptComplexity().fit([prompt])
    return dict(zip(pc.get_feature_names_out(), pc.transform([prompt])[0]))


def test_simple_prompt_has_low_counts():
    s = stats("a white wall")
    assert s["n_words"] == 3 and s["n_colour_words"] == 1
    assert s["n_numerals"] == s["n_spatial_relations"] == s["n_negations"] == s["n_commas"] == 0


def test_compositional_prompt_counts():
    s = stats('Two red kites to the left of three trees, without birds. A sign that says "Open", by Monet, 4k')
    assert s["n_numerals"] == 2  # two, three
    assert s["n_colour_words"] == 1  # red
    assert s["n_spatial_relations"] >= 1  # left
    assert s["n_negations"] == 1  # without
    assert s["n_quoted_text"] == 1
    assert s["n_text_markers"] >= 2  # sign, says
    assert s["n_proper_names"] == 2  # Open, Monet (sentence starts are not names)
    assert s["n_style_modifiers"] >= 2  # 4k, "by"
    assert s["n_sentences"] == 2 and s["n_commas"] == 3


def test_empty_prompt_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"X\[0\] is empty"):
        stats("")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=80).filter(str.strip), min_size=1, max_size=10))
def test_shape_order_and_finiteness(prompts):
    X = PromptComplexity().fit(prompts).transform(prompts)
    assert X.shape == (len(prompts), len(COMPLEXITY_FEATURES)) and np.isfinite(X).all()
    np.testing.assert_array_equal(PromptComplexity().fit(prompts).transform(prompts[::-1]), X[::-1])


def test_bad_input():
    with pytest.raises(TypeError, match=r"X\[1\] must be a str"):
        PromptComplexity().fit(["ok", None])
    with pytest.raises(ValueError, match="empty"):
        PromptComplexity().fit([])


def test_possessives_phrases_and_words_ending_in_est_are_not_miscounted():
    s = stats("the cat's toy and the dog's bone on top of a forest table")
    assert s["n_quoted_text"] == 0
    assert s["n_spatial_relations"] == 1  # "on top of" once, not also "top"
    assert s["n_comparatives"] == 0  # "forest" is no superlative
    assert stats("the tallest of three 'small' towers")["n_comparatives"] == 1
    assert stats("the tallest of three 'small' towers")["n_quoted_text"] == 1
