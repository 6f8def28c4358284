"""check_prompts: what counts as a list of prompts, and the errors for what does not."""

import numpy as np
import pytest

from costroute.features import PromptComplexity, check_prompts


def test_valid_text_passes_unchanged():
    prompts = [
        "a",
        " x ",
        "\tb\n",
        "a\x00b",
        "\u202eevil",
        "🐱 猫 قطة",
        "\ud83d\ude00".encode("utf-16", "surrogatepass").decode("utf-16"),
    ]
    assert check_prompts(prompts) == prompts
    assert check_prompts(np.array(prompts, dtype=object)[:, None]) == prompts


@pytest.mark.parametrize(
    "bad, char",
    [("\ud800", 0), ("a cat \udfff", 6), ("\ud83d\ude00 a pair kept as two code points", 0)],
    ids=["alone", "after-text", "unjoined-pair"],
)
def test_lone_surrogates_are_refused_for_every_feature(bad, char):
    prompts = ["fine", "also fine", bad]
    with pytest.raises(
        ValueError, match=rf"X\[2\] holds the lone surrogate .* at character {char} .*encode\('utf-8', 'replace'\)"
    ):
        check_prompts(prompts)
    with pytest.raises(ValueError, match=r"X\[2\] holds the lone surrogate"):
        PromptComplexity().fit_transform(prompts)


@pytest.mark.parametrize(
    "bad, what",
    [
        ("", "empty"),
        ("   ", r"whitespace only \('   '\)"),
        ("\t\n", r"whitespace only \('\\t\\n'\)"),
        ("\u3000", r"whitespace only \('\\u3000'\)"),
    ],
)
def test_empty_and_whitespace_only_prompts_are_refused_naming_the_index(bad, what):
    with pytest.raises(ValueError, match=rf"X\[1\] is {what}; every prompt must hold some text"):
        check_prompts(["a cat", bad, "a dog"])
    with pytest.raises(ValueError, match=rf"prompts\[1\] is {what}"):
        check_prompts(["a cat", bad], name="prompts")
    with pytest.raises(ValueError, match=r"X\[1\] is"):
        PromptComplexity().fit_transform(["a cat", bad])


def test_the_suggested_repair_works():
    repaired = "a cat \ud800 on a wall".encode("utf-8", "replace").decode("utf-8")
    assert check_prompts([repaired]) == ["a cat ? on a wall"]
