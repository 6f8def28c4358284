"""BatchRunner: given prompt indices on one generator with given seeds, one outcome per index."""

import pytest
from plan_helpers import Label, Recorder

from costroute.execution import BatchRunner, ImageOutcome, is_out_of_memory
from costroute.generators import CallableGenerator, GeneratorSpec

PROMPTS = {i: f"p{i}" for i in range(20)}
SEEDS = {i: 100 + i for i in range(20)}


def flat(steps):
    return [outcome for step in steps for outcome in step]


def test_runs_only_the_given_indices_with_their_seeds():
    rec = Recorder("a")
    runner = BatchRunner(CallableGenerator("a", rec, cost=1.0), batch_size=2)
    steps = list(runner.run([7, 3, 11], PROMPTS, SEEDS))
    assert rec.calls == [["p7", "p3"], ["p11"]]
    assert [[(o.index, str(o.image), o.batch_size) for o in step] for step in steps] == [
        [(7, "a|p7|107", 2), (3, "a|p3|103", 2)],
        [(11, "a|p11|111", 1)],
    ]
    assert all(o.ok and o.error is None and o.seconds >= 0 for o in flat(steps))


def test_a_failing_prompt_is_isolated_and_the_others_are_made():
    rec = Recorder("a", fail_on=lambda p: p == "p2")
    outcomes = flat(BatchRunner(CallableGenerator("a", rec, cost=1.0), batch_size=4).run(range(6), PROMPTS, SEEDS))
    assert sorted(o.index for o in outcomes) == list(range(6))
    [bad] = [o for o in outcomes if not o.ok]
    assert bad.index == 2 and bad.image is None and isinstance(bad.error, RuntimeError)
    assert rec.calls == [["p0", "p1", "p2", "p3"], ["p0", "p1"], ["p2", "p3"], ["p2"], ["p3"], ["p4", "p5"]]


def test_out_of_memory_keeps_the_halves_still_waiting_over_many_batches():
    """After a split, the first half runs out of memory: the waiting half must be retried, not dropped."""
    bad = {5, 13, 18}  # each in the second half of its batch of 8: that half waits while the first runs out of memory
    made = []

    def fragile(prompts, seeds):
        if any(int(p[1:]) in bad for p in prompts):
            raise RuntimeError("cannot draw")
        if len(prompts) > 2:
            raise MemoryError("simulated out of memory")
        made.extend(prompts)
        return [Label(p) for p in prompts]

    runner = BatchRunner(CallableGenerator("a", fragile, cost=1.0), batch_size=8)
    outcomes = flat(runner.run(range(20), PROMPTS, SEEDS))
    assert sorted(o.index for o in outcomes) == list(range(20))  # every index exactly once
    assert sorted(o.index for o in outcomes if not o.ok) == sorted(bad)
    assert made == [f"p{i}" for i in range(20) if i not in bad]  # each made once, in order
    assert runner.batch_size == 2  # and the lowered size stays for later runs
    list(runner.run([0, 1, 2], PROMPTS, SEEDS))
    assert made[-3:] == ["p0", "p1", "p2"]


def test_a_non_image_fails_its_prompt_without_calling_again():
    calls = []

    def api(prompts, seeds):
        calls.append(list(prompts))
        return [None if p == "p1" else Label(p) for p in prompts]

    [step] = BatchRunner(CallableGenerator("api", api, cost=1.0), batch_size=3).run([0, 1, 2], PROMPTS, SEEDS)
    assert [o.ok for o in step] == [True, False, True] and calls == [["p0", "p1", "p2"]]
    assert isinstance(step[1].error, TypeError) and "returned NoneType None instead of an image for prompt 1" in str(
        step[1].error
    )
    assert step[1].batch_size == 3


def test_stopping_early_leaves_the_rest_untried():
    rec = Recorder("a")
    steps = BatchRunner(CallableGenerator("a", rec, cost=1.0), batch_size=2).run(range(6), PROMPTS, SEEDS)
    next(steps)
    steps.close()
    assert rec.calls == [["p0", "p1"]]


def test_an_interrupt_propagates_after_the_outcomes_already_yielded():
    def api(prompts, seeds):
        if "p4" in prompts:
            raise KeyboardInterrupt
        return [Label(p) for p in prompts]

    seen = []
    with pytest.raises(KeyboardInterrupt):
        for step in BatchRunner(CallableGenerator("a", api, cost=1.0), batch_size=2).run(range(6), PROMPTS, SEEDS):
            seen.extend(o.index for o in step)
    assert seen == [0, 1, 2, 3]


def test_wrong_number_of_images_is_a_batch_error():
    def short(prompts, seeds):
        return [Label(p) for p in prompts[:1]]

    outcomes = flat(BatchRunner(CallableGenerator("s", short, cost=1.0), batch_size=2).run([0, 1], PROMPTS, SEEDS))
    assert [o.ok for o in outcomes] == [True, True]  # alone, each gets its one image
    assert [o.batch_size for o in outcomes] == [1, 1]


def test_is_out_of_memory():
    assert is_out_of_memory(MemoryError()) and is_out_of_memory(RuntimeError("CUDA out of memory. Tried"))
    assert not is_out_of_memory(RuntimeError("bad prompt"))


def test_outcome_defaults():
    assert ImageOutcome(3, error=ValueError("x")).ok is False and ImageOutcome(3, image=Label("x")).ok


def test_bad_arguments():
    gen = CallableGenerator("a", Recorder("a"), cost=1.0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        BatchRunner(gen, 0)
    with pytest.raises(TypeError, match="generator must be a BackendGenerator.*GeneratorSpec"):
        BatchRunner(GeneratorSpec("plain", 1.0), 2)
