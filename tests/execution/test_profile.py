"""costroute.execution.profile: measured seconds per image, and routing on them (cost_unit="seconds")."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from costroute import CascadeRouter, CostAwareRouter, GeneratorRegistry, GeneratorSpec
from costroute.execution import DEFAULT_PROFILE_PROMPTS, CostProfile, profile
from costroute.generators import (
    BackendGenerator,
    CallableGenerator,
    DiffusersGenerator,
    build_tiny_pipeline,
    pipeline_cache,
)

# A sleep lasts at least what it asks for; on a busy shared machine it may overrun by a few milliseconds.
SLACK = 0.025


class Sleeper:
    """``fn(prompts, seeds)`` that sleeps ``per_call + per_image * len(prompts)`` (or the next scripted
    duration), records its batches, and has a ``load`` hook that sleeps ``load_seconds``."""

    def __init__(self, per_call=0.0, per_image=0.0, script=(), load_seconds=0.0):
        self.per_call, self.per_image, self.script = per_call, per_image, list(script)
        self.load_seconds, self.calls, self.loads = load_seconds, [], 0

    def load(self):
        self.loads += 1
        time.sleep(self.load_seconds)

    def __call__(self, prompts, seeds):
        self.calls.append((list(prompts), list(seeds)))
        time.sleep(self.script.pop(0) if self.script else self.per_call + self.per_image * len(prompts))
        return [Image.new("L", (4, 4), color=s % 256) for s in seeds]

    def __deepcopy__(self, memo):  # specs are copied (registry, clone): keep one recorder
        return self


def within(measured, expected):
    return expected - 1e-4 <= measured <= expected + SLACK


def test_sleeping_generators_are_measured_per_image_at_each_batch_size(capsys):
    per_image = CallableGenerator("per-image", Sleeper(per_image=0.03), cost=1.0)
    per_call = CallableGenerator("per-call", Sleeper(per_call=0.06), cost=2.0)
    measured = profile([per_image, per_call], batch_sizes=(1, 3), repeats=3, warmup=1, progress=False)
    assert isinstance(measured, CostProfile) and measured.batch_sizes == (1, 3) and measured.seconds.shape == (2, 2, 3)
    one, three = measured.seconds_per_image(1), measured.seconds_per_image(3)
    assert within(one[0], 0.03) and within(three[0], 0.03)  # 0.03 s per image whatever the batch
    assert within(one[1], 0.06) and within(three[1], 0.02)  # 0.06 s per call, shared by the batch
    np.testing.assert_array_equal(measured.seconds_per_image(), three)  # default: the largest batch size
    frame = measured.to_frame()
    assert frame.index.tolist() == [("per-image", 1), ("per-image", 3), ("per-call", 1), ("per-call", 3)]
    assert frame.loc[("per-call", 3), "seconds_per_image"] == three[1]
    assert frame.loc[("per-call", 3), "images_per_second"] == pytest.approx(1 / three[1])
    assert (frame["min_seconds"] <= frame["seconds_per_image"]).all()
    assert (frame["seconds_per_image"] <= frame["max_seconds"]).all()
    assert frame["device"].isna().all() and (frame["repeats"] == 3).all()
    assert capsys.readouterr().err == ""  # progress=False: silent


def test_warmup_and_load_are_not_timed_and_the_median_is_kept():
    fn = Sleeper(script=[0.3, 0.02, 0.2, 0.06], load_seconds=0.15)
    measured = profile(
        [CallableGenerator("g", fn, cost=1.0)], batch_sizes=1, repeats=3, warmup=1, prompts=["x", "y"], progress=False
    )
    times = measured.seconds[0, 0]
    assert within(times[0], 0.02) and within(times[1], 0.2) and within(times[2], 0.06)  # the 0.3 s warm-up is gone
    assert measured.seconds_per_image(1)[0] == np.median(times) and within(measured.seconds_per_image(1)[0], 0.06)
    assert fn.loads == 1 and measured.load_seconds[0] >= 0.15
    assert fn.calls == [(["x"], [0])] * 4  # 1 warm-up + 3 timed calls


def test_batches_cycle_the_prompts_and_count_the_calls():
    fn = Sleeper()
    profile(
        [CallableGenerator("g", fn, cost=1.0)],
        batch_sizes=(3, 1),
        repeats=2,
        warmup=2,
        prompts=["x", "y"],
        progress=False,
    )
    assert fn.calls == [(["x", "y", "x"], [0, 1, 2])] * 4 + [(["x"], [0])] * 4
    fn.calls.clear()
    profile([CallableGenerator("g", fn, cost=1.0)], batch_sizes=(10,), repeats=1, warmup=0, progress=False)
    assert fn.calls == [(list(DEFAULT_PROFILE_PROMPTS) + list(DEFAULT_PROFILE_PROMPTS[:2]), list(range(10)))]


def test_routing_on_measured_seconds_is_one_call_away():
    fast = CallableGenerator("fast", Sleeper(per_image=0.02), cost=5.0, cost_unit="usd")
    slow = CallableGenerator("slow", Sleeper(per_image=0.05), cost=1.0, cost_unit="usd")
    measured = profile(GeneratorRegistry([fast, slow]), batch_sizes=(1, 2), repeats=3, progress=False)
    registry = measured.registry(batch_size=2)
    assert registry.cost_unit == "seconds" and registry.names == ["fast", "slow"]
    np.testing.assert_array_equal(registry.costs, measured.seconds_per_image(2))
    assert registry.costs[0] < registry.costs[1]  # the measured order, not the dollar prices
    assert all(type(spec) is CallableGenerator for spec in registry)
    with pytest.raises(ValueError, match=r"batch_size 4 was not profiled; profiled batch sizes are \[1, 2\]"):
        measured.registry(batch_size=4)
    # slow is a little better everywhere: chosen at λ = 0, and not once seconds are charged
    prompts = ["a cat", "a white wall", "two kites at dusk"]
    router = CostAwareRouter(registry, features="complexity", quality_model="ridge").fit(prompts, [[1.0, 1.2]] * 3)
    assert router.predict(prompts).tolist() == ["slow"] * 3
    plan = router.route(prompts, cost_penalty=1.0)
    assert plan.generator_names.tolist() == ["fast"] * 3
    result = plan.generate(seed=0, batch_size=2, progress=False)  # the measured specs still make images
    assert result.complete and result.cost_unit == "seconds" and result.generators == ["fast"] * 3


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models gain nothing from threads on a shared machine
    yield build_tiny_pipeline(tmp_path_factory.mktemp("pipelines") / "tiny-sd", kind="sd", seed=0)
    torch.set_num_threads(threads)
    pipeline_cache.clear()


def test_tiny_pipelines_more_steps_take_longer(tiny_sd):
    one = DiffusersGenerator("one-step", tiny_sd, steps=1, guidance_scale=1.0)
    eight = DiffusersGenerator("eight-steps", tiny_sd, steps=8)  # 8 steps, guidance doubles the batch
    measured = profile([one, eight], batch_sizes=(1, 2), repeats=2, warmup=1, device="cpu", progress=False)
    for batch in (1, 2):
        quick, slow = measured.seconds_per_image(batch)
        assert 0 < quick < slow
    assert measured.devices == ["cpu", "cpu"] and measured.to_frame()["device"].tolist() == ["cpu"] * 4
    registry = measured.registry(1)
    assert [type(s) for s in registry] == [DiffusersGenerator] * 2 and registry.cost_unit == "seconds"
    assert [s.steps for s in registry] == [1, 8] and [s.device for s in registry] == ["cpu", "cpu"]
    assert one.device == "auto"  # the caller's specs are untouched
    image = registry["one-step"].generate_images(["a red kite"], [0])[0]
    assert image.size == (64, 64)


def test_progress_bar_on_stderr(capsys):
    profile([CallableGenerator("g", Sleeper(), cost=1.0)], batch_sizes=1, repeats=1, warmup=0)
    assert "profiling" in capsys.readouterr().err


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"generators": {"a": 1.0}}, TypeError, r"generator\(s\) \['a'\] cannot make images \(plain GeneratorSpecs"),
        ({"generators": "sdxl"}, TypeError, "generators must be a GeneratorRegistry"),
        ({"batch_sizes": 0}, ValueError, "every batch size must be an integer >= 1, got 0"),
        ({"batch_sizes": ()}, ValueError, "batch_sizes must be a positive integer or a non-empty sequence"),
        ({"batch_sizes": (2, 2)}, ValueError, r"batch_sizes must not repeat a size, got \[2, 2\]"),
        ({"batch_sizes": (True,)}, ValueError, "every batch size must be an integer >= 1, got True"),
        ({"repeats": 0}, ValueError, "repeats must be an integer >= 1, got 0"),
        ({"warmup": -1}, ValueError, "warmup must be an integer >= 0, got -1"),
        ({"prompts": []}, ValueError, "prompts must be None or a non-empty list of strings"),
        ({"prompts": "a cat"}, ValueError, "prompts must be None or a non-empty list of strings"),
        ({"prompts": ["a", 3]}, TypeError, "prompts must hold strings; prompt 1 is a int"),
        ({"device": ""}, ValueError, "device must be 'auto', 'cpu'"),
        ({"progress": "no"}, TypeError, "progress must be True or False"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    args = {"generators": [CallableGenerator("g", Sleeper(), cost=1.0)], "progress": False, **kwargs}
    with pytest.raises(error, match=message):
        profile(**args)


def test_a_failing_generator_is_named_with_its_batch_size():
    def fails_on_pairs(prompts, seeds):
        if len(prompts) == 2:
            raise MemoryError("out of memory")
        return [Image.new("L", (4, 4))] * len(prompts)

    with pytest.raises(RuntimeError, match="generator 'g' failed at batch size 2 while profiled: MemoryError") as err:
        profile([CallableGenerator("g", fails_on_pairs, cost=1.0)], batch_sizes=(1, 2), progress=False)
    assert isinstance(err.value.__cause__, MemoryError)
    with pytest.raises(
        RuntimeError,
        match="generator 'short' failed at batch size 2 while profiled: ValueError: "
        "fn of generator 'short' returned 1 images for 2 prompts",
    ):
        profile(
            [CallableGenerator("short", lambda p, s: [Image.new("L", (4, 4))], cost=1.0)], batch_sizes=2, progress=False
        )

    class OneImage(BackendGenerator):
        """A backend of its own that does not check its output."""

        def generate_images(self, prompts, seeds):
            return [Image.new("L", (4, 4))]

    with pytest.raises(ValueError, match="generator 'own' returned 1 images for 3 prompts"):
        profile([OneImage("own", 1.0)], batch_sizes=3, progress=False)


# ---------------------------------------------------------------- "seconds" as a cost unit, everywhere
def test_seconds_is_a_cost_unit_of_specs_but_not_of_the_shipped_cost_tables():
    from costroute.datasets import load_agiqa3k, load_genai_bench

    assert GeneratorSpec("a", 0.5, cost_unit="seconds").cost_unit == "seconds"
    with pytest.raises(ValueError, match="all generators of a registry must share one cost_unit"):
        GeneratorRegistry([GeneratorSpec("a", 0.5, cost_unit="seconds"), GeneratorSpec("b", 1e12)])
    for loader in (load_genai_bench, load_agiqa3k):  # nothing in the shipped tables was timed
        for unit in ("seconds", "eur"):
            with pytest.raises(ValueError, match=rf"cost_unit must be one of \['flops', 'usd'\], got '{unit}'"):
                loader(cost_unit=unit)


def test_cascade_over_measured_seconds_needs_a_scoring_cost_in_seconds():
    from costroute.scoring import CallableScorer

    rng = np.random.default_rng(0)
    X, Q = rng.normal(size=(60, 2)), rng.normal(size=(60, 2))
    registry = GeneratorRegistry(
        [GeneratorSpec("fast", 0.5, cost_unit="seconds"), GeneratorSpec("slow", 2.0, cost_unit="seconds")]
    )
    router = CostAwareRouter(registry, features=None, quality_model="ridge")
    priced = CallableScorer("judge", lambda prompts, images: [0.0] * len(prompts), cost=0.001)  # USD
    with pytest.raises(
        ValueError,
        match=r"scorer 'judge' has an explicit cost of 0.001 usd per image, which has no "
        r"seconds equivalent; give the cost in seconds \(cost_unit='seconds'\)",
    ):
        CascadeRouter(router, scorer=priced, cv=2).fit(X, Q, scores=Q)
    timed = CallableScorer("judge", lambda prompts, images: [0.0] * len(prompts), cost=0.1, cost_unit="seconds")
    cascade = CascadeRouter(router, scorer=timed, cv=2).fit(X, Q, scores=Q)
    assert cascade.normalized_scoring_cost_ == pytest.approx(0.1 / 2.0)
    assert (
        CascadeRouter(router, scorer=priced, scoring_cost=0.2, cv=2).fit(X, Q, scores=Q).normalized_scoring_cost_ == 0.1
    )
    for unit in ("usd", "flops"):
        with pytest.raises(ValueError, match=f"0.1 seconds per image, which has no {unit} equivalent"):
            timed.cost_in(unit)


def test_a_counted_scorer_cost_has_no_seconds_equivalent():
    from costroute.scoring import Scorer

    class Counted(Scorer):
        def _counted_flops(self):
            return 2e9

    scorer = Counted("counted")
    assert scorer.cost_in("flops") == 2e9
    with pytest.raises(
        ValueError,
        match="scorer 'counted' has a counted cost in FLOPs, which has no seconds "
        "equivalent; give it cost=<seconds per image, measured>",
    ):
        scorer.cost_in("seconds")
