"""The Scorer interface through CallableScorer, and the package's import hygiene."""

import subprocess
import sys

import numpy as np
import pytest

from costroute.costs import DEFAULT_PRICE_MODEL
from costroute.scoring import CallableScorer, Scorer


class Lengths:
    """fn(prompts, images) -> len(prompt) + image, recording the batch sizes it is called with."""

    def __init__(self):
        self.calls = []
        self.loaded = 0

    def load(self):
        self.loaded += 1

    def __call__(self, prompts, images):
        self.calls.append(len(prompts))
        return [len(p) + im for p, im in zip(prompts, images)]


def test_import_does_not_import_heavy_modules():
    code = (
        "import sys, costroute.scoring; "
        "print(*[m in sys.modules for m in ('torch', 'transformers', 'diffusers', 'PIL')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False", "False"]


def test_callable_scorer_batches_and_keeps_order():
    fn = Lengths()
    scorer = CallableScorer("len", fn, cost=0.001)
    scores = scorer.score(["a", "bbb", "cc", "dddd", "e"], [10, 20, 30, 40, 50], batch_size=2, progress=False)
    np.testing.assert_array_equal(scores, [11.0, 23.0, 32.0, 44.0, 51.0])
    assert fn.calls == [2, 2, 1] and fn.loaded == 1
    scorer.score(["a"] * 7, [0] * 7, progress=False)
    assert fn.calls[-1] == 7  # batch_size=None: one call
    assert CallableScorer("len", fn, cost=0.0, batch_size=3).score(["a"] * 7, [0] * 7, progress=False).shape == (7,)
    assert fn.calls[-3:] == [3, 3, 1]
    assert scorer.score([], [], progress=False).shape == (0,) and fn.calls[-1] == 1  # fn not called for nothing


@pytest.mark.parametrize(
    "returned, error, message",
    [
        ([1.0], ValueError, r"returned scores of shape \(1,\) for 2 images"),
        ([1.0, 2.0, 3.0], ValueError, r"shape \(3,\) for 2 images"),
        ([[1.0], [2.0]], ValueError, r"shape \(2, 1\)"),
        ([1.0, float("nan")], ValueError, r"non-finite scores \[nan\] at batch positions \[1\]"),
        ([float("inf"), 1.0], ValueError, r"non-finite scores \[inf\] at batch positions \[0\]"),
        (["good", "bad"], TypeError, "must return numbers"),
        (None, ValueError, r"shape \(\)"),
    ],
)
def test_callable_output_is_validated(returned, error, message):
    scorer = CallableScorer("judge", lambda prompts, images: returned, cost=0.01)
    with pytest.raises(error, match=message) as info:
        scorer.score(["a", "b"], ["x", "y"], progress=False)
    assert "'judge'" in str(info.value)


def test_callable_scorer_arguments():
    with pytest.raises(TypeError, match="fn of scorer 'j' must be callable"):
        CallableScorer("j", "not callable", cost=1.0)
    with pytest.raises(TypeError, match="cost of scorer 'j' must be a real number"):
        CallableScorer("j", len, cost=None)
    with pytest.raises(ValueError, match="cost of scorer 'j' must be finite and >= 0"):
        CallableScorer("j", len, cost=-1.0)
    with pytest.raises(ValueError, match="cost_unit must be one of"):
        CallableScorer("j", len, cost=1.0, cost_unit="eur")
    with pytest.raises(TypeError, match="scorer name must be a str"):
        CallableScorer(3, len, cost=1.0)
    with pytest.raises(ValueError, match="scorer name must be a non-empty string"):
        CallableScorer(" ", len, cost=1.0)
    with pytest.raises(ValueError, match="got 2 prompts but 1 images"):
        CallableScorer("j", len, cost=1.0).score(["a", "b"], ["x"])


def test_costs_in_both_units():
    usd = CallableScorer("api", len, cost=0.002)
    assert usd.cost == 0.002 and usd.cost_unit == "usd" and usd.cost_in("usd") == 0.002
    with pytest.raises(ValueError, match="has no FLOPs equivalent"):
        usd.cost_in("flops")
    flops = CallableScorer("local", len, cost=1e12, cost_unit="flops")
    assert flops.cost_in("flops") == 1e12
    assert flops.cost_in("usd") == pytest.approx(DEFAULT_PRICE_MODEL.usd_per_image(1e12))
    with pytest.raises(ValueError, match="unit must be one of"):
        flops.cost_in("joules")


def test_base_class_has_no_counted_cost_and_no_backend():
    scorer = Scorer("abstract")
    with pytest.raises(ValueError, match="has no counted cost; give it an explicit cost="):
        scorer.cost
    with pytest.raises(NotImplementedError):
        scorer.score(["a"], ["x"], progress=False)


def test_copies_are_cheap_and_equal():
    import copy

    fn = Lengths()
    scorer = CallableScorer("len", fn, cost=0.5, batch_size=4)
    assert copy.copy(scorer) == scorer
    assert scorer != CallableScorer("len", fn, cost=0.6, batch_size=4)
    assert "CallableScorer(name='len', cost=0.5, cost_unit='usd', batch_size=4" in repr(scorer)
