"""RoutingPlan.generate: grouping, batching, seeding, order, retries, fallbacks, errors, interruption."""

import os

import numpy as np
import pandas as pd
import pytest
from plan_helpers import Label, texts

from costroute import CostAwareRouter, GeneratorSpec
from costroute.execution import GenerationError, GenerationResult, image_seed
from costroute.generators import CallableGenerator, DiffusersGenerator, pipeline_cache

PROMPTS = ["a red cat", "two dogs on a hill", "zzz", "a blue car", "x", "an old tree at dusk"]


def pixels(image):
    return np.asarray(image, dtype=np.int16)


# ------------------------------------------------------------------ real (tiny) pipelines
@pytest.fixture
def tiny_pool(tiny_sd, tiny_sdxl):
    sd = DiffusersGenerator("sd-2", tiny_sd, steps=2, guidance_scale=5.0, dtype="float64", device="cpu")
    return [
        sd,
        sd.clone(name="sd-3", steps=3),
        DiffusersGenerator("xl-2", tiny_sdxl, steps=2, guidance_scale=5.0, dtype="float64", device="cpu"),
    ]


def test_pixels_do_not_depend_on_batch_size_or_other_prompts(tiny_pool, make_plan):
    assignments = [0, 1, 2, 0, 0, 2]
    plan = make_plan(PROMPTS, assignments, tiny_pool)
    runs = {bs: plan.generate(seed=3, batch_size=bs, progress=False) for bs in (1, 4)}
    # two SD specs differing only in steps share one load; SDXL is the second
    assert pipeline_cache.loads == 2
    for i in range(len(PROMPTS)):
        assert np.array_equal(pixels(runs[1][i]), pixels(runs[4][i]))
    assert runs[4].batch_sizes == [3, 1, 2, 3, 3, 2]
    # other prompts and other routes around prompt 0: same pixels for prompt 0 (same seed, same index)
    other = make_plan([PROMPTS[0], "q", "w"], [0, 2, 0], tiny_pool).generate(seed=3, batch_size=8, progress=False)
    assert np.array_equal(pixels(other[0]), pixels(runs[1][0]))
    # a different run seed changes the image
    again = make_plan(PROMPTS[:1], [0], tiny_pool).generate(seed=4, progress=False)
    assert not np.array_equal(pixels(again[0]), pixels(runs[1][0]))


def test_end_to_end_route_then_generate(tiny_pool):
    quality = [[1.0, 2.0, 3.0], [3.0, 1.0, 1.0], [1.0, 3.0, 1.0], [3.0, 2.0, 1.0]]
    router = CostAwareRouter(tiny_pool, features="complexity", quality_model="knn").fit(PROMPTS[:4], quality)
    plan = router.route(PROMPTS[:4])
    result = plan.generate(seed=0, batch_size=2, progress=False)
    assert isinstance(result, GenerationResult) and result.complete
    assert result.generators == list(plan.generator_names)
    assert all(im.size == (64, 64) for im in result)
    frame = result.to_frame()
    assert frame["cost"].tolist() == pytest.approx(plan.costs.tolist())
    assert frame["seed"].tolist() == [image_seed(0, i) for i in range(4)]


# ------------------------------------------------------------------ bookkeeping with callables
def test_images_come_back_in_prompt_order(recorder_generators, make_plan):
    gens, recs = recorder_generators
    assignments = [2, 0, 1, 0, 2, 1]
    result = make_plan(PROMPTS, assignments, gens).generate(seed=5, batch_size=2, progress=False)
    for i, prompt in enumerate(PROMPTS):
        assert str(result[i]) == f"{'abc'[assignments[i]]}|{prompt}|{image_seed(5, i)}"
    # grouped per generator in registry order, batches of at most 2, each group loaded once
    assert recs["a"].calls == [[PROMPTS[1], PROMPTS[3]]]
    assert recs["c"].calls == [[PROMPTS[0], PROMPTS[4]]]
    frame = result.to_frame()
    assert list(frame.columns) == [
        "prompt",
        "planned_generator",
        "generator",
        "fell_back",
        "status",
        "seed",
        "cost",
        "seconds",
        "batch_size",
    ]
    assert (frame["status"] == "made").all()
    assert frame["cost"].tolist() == [3.0, 1.0, 2.0, 1.0, 3.0, 2.0]
    assert result.total_cost == 12.0 and not frame["fell_back"].any() and result.fallbacks == []
    assert (frame["seconds"] >= 0).all() and set(result.load_seconds) == {"a", "b", "c"}


def test_out_of_memory_halves_the_batch_down_to_what_fits(make_plan, Recorder):
    rec = Recorder("m", max_batch=2)
    gen = CallableGenerator("m", rec, cost=1.0)
    result = make_plan(PROMPTS, [0] * 6, [gen]).generate(batch_size=8, progress=False)
    assert result.complete and result.fallbacks == []
    # 6 fails, 3 fails, then batches of 2 for the rest of the group
    assert [len(c) for c in rec.calls] == [6, 3, 2, 2, 2]
    assert result.batch_sizes == [2] * 6
    assert [r.split("|")[1] for r in texts(result)] == PROMPTS


def test_a_bad_prompt_is_isolated_and_the_batch_size_comes_back(make_plan, Recorder):
    """A non-memory error splits the failing batch to find the bad prompt, then batching resumes."""
    prompts = [f"p{i}" for i in range(10)]
    rec = Recorder("a", fail_on=lambda p: p == "p1")
    gens = [CallableGenerator("a", rec, cost=1.0), CallableGenerator("b", Recorder("b"), cost=2.0)]
    result = make_plan(prompts, [0] * 10, gens).generate(batch_size=4, progress=False)
    assert result.complete and result.generators == ["a", "b"] + ["a"] * 8
    # [p0-p3] fails; halves: [p0,p1] fails -> [p0] ok, [p1] fails alone; [p2,p3] ok; then batches of 4 again
    assert rec.calls == [prompts[0:4], prompts[0:2], ["p0"], ["p1"], prompts[2:4], prompts[4:8], prompts[8:10]]
    assert result.batch_sizes == [1, 1, 2, 2, 4, 4, 4, 4, 2, 2]
    assert [(f.index, f.from_generator, f.to_generator) for f in result.fallbacks] == [(1, "a", "b")]


def test_out_of_memory_inside_a_split_batch_lowers_the_size_for_the_rest(make_plan, Recorder):
    prompts = [f"p{i}" for i in range(8)]
    rec = Recorder("m", fail_on=lambda p: p == "p0", max_batch=2)
    # "p0" fails alone; memory allows 2: 8 (OOM) -> 4 (OOM) -> 2 fails (bad prompt) -> 1, 1, then batches of 2
    gens = [CallableGenerator("m", rec, cost=1.0), CallableGenerator("b", Recorder("b"), cost=2.0)]
    result = make_plan(prompts, [0] * 8, gens).generate(batch_size=8, progress=False)
    assert [len(c) for c in rec.calls] == [8, 4, 2, 1, 1, 2, 2, 2]
    assert result.generators == ["b"] + ["m"] * 7 and result.batch_sizes == [1, 1, 2, 2, 2, 2, 2, 2]


def test_torch_cuda_oom_is_retried_too(make_plan):
    import torch

    sizes = []

    def fn(prompts, seeds):
        sizes.append(len(prompts))
        if len(prompts) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [Label(p.upper()) for p in prompts]

    result = make_plan(PROMPTS[:4], [0] * 4, [CallableGenerator("g", fn, cost=1.0)]).generate(
        batch_size=4, progress=False
    )
    assert texts(result) == [p.upper() for p in PROMPTS[:4]] and sizes == [4, 2, 1, 1, 1, 1]


def test_failing_prompts_fall_back_by_utility(make_plan, Recorder):
    fails = lambda p: "x" == p or "zzz" == p  # noqa: E731
    recs = {"a": Recorder("a", fail_on=fails), "b": Recorder("b"), "c": Recorder("c", fail_on=lambda p: p == "x")}
    gens = [CallableGenerator(n, recs[n], cost=c, cost_unit="flops") for n, c in zip("abc", (1.0, 2.0, 4.0))]
    # every prompt to "a"; after "a", "x" prefers c then b, "zzz" prefers b
    quality = np.array([[3.0, 2.0, 1.0]] * 6)
    quality[4] = [3.0, 1.0, 2.5]
    plan = make_plan(PROMPTS, [0] * 6, gens, quality=quality)
    assert np.argsort(-plan.utilities()[4]).tolist() == [0, 2, 1]
    result = plan.generate(seed=1, batch_size=8, progress=False)
    assert result.complete
    assert result.generators == ["a", "a", "b", "a", "b", "a"]
    moves = [(f.index, f.from_generator, f.to_generator) for f in result.fallbacks]
    assert moves == [(2, "a", "b"), (4, "a", "c"), (4, "c", "b")]
    assert all("RuntimeError" in f.error for f in result.fallbacks)
    # a fallen-back image keeps its seed and is costed at its maker's price
    assert str(result[4]) == f"b|x|{image_seed(1, 4)}"
    frame = result.to_frame()
    assert frame["fell_back"].tolist() == [False, False, True, False, True, False]
    assert frame["cost"].tolist() == [1.0, 1.0, 2.0, 1.0, 2.0, 1.0]
    assert frame["planned_generator"].tolist() == ["a"] * 6


def test_on_error_raise_carries_the_partial_result(make_plan, Recorder):
    gens = [
        CallableGenerator("a", Recorder("a", fail_on=lambda p: p == "zzz"), cost=1.0),
        CallableGenerator("b", Recorder("b"), cost=2.0),
    ]
    plan = make_plan(PROMPTS, [0, 1, 0, 0, 0, 1], gens)
    with pytest.raises(GenerationError, match="1 of 6 images failed") as info:
        plan.generate(batch_size=1, on_error="raise", progress=False)
    partial = info.value.result
    # "a" runs first (registry order): prompt 0, then "zzz" (prompt 2) fails and stops the run
    assert texts(partial.images) == [f"a|{PROMPTS[0]}|{image_seed(0, 0)}"] + [None] * 5
    assert partial.generators == ["a"] + [None] * 5 and partial.missing == [1, 2, 3, 4, 5]
    assert partial.fallbacks == [] and list(info.value.failures) == [2]
    assert isinstance(info.value.failures[2], RuntimeError)
    assert partial.failed == [2] and partial.not_attempted == [1, 3, 4, 5]


def test_when_every_generator_fails_nothing_is_silently_dropped(make_plan, Recorder):
    gens = [
        CallableGenerator(n, Recorder(n, fail_on=lambda p: p == "x"), cost=float(i + 1)) for i, n in enumerate("ab")
    ]
    with pytest.raises(GenerationError) as info:
        make_plan(PROMPTS, [0, 1, 0, 1, 0, 1], gens).generate(progress=False)
    partial = info.value.result
    assert partial.missing == [4]
    assert [p.split("|")[1] for i, p in enumerate(texts(partial)) if i != 4] == [p for p in PROMPTS if p != "x"]
    assert partial.fallbacks[-1].to_generator is None and set(info.value.failures) == {4}


def test_a_model_that_cannot_load_falls_back(make_plan, Recorder, tiny_sd, tmp_path):
    import shutil

    folder = shutil.copytree(tiny_sd, tmp_path / "doomed")
    doomed = DiffusersGenerator("doomed", folder, steps=2)
    doomed.cost  # counted while the folder exists
    shutil.rmtree(folder)
    backup = CallableGenerator("backup", Recorder("backup"), cost=1.0, cost_unit="flops")
    result = make_plan(PROMPTS[:3], [0, 0, 0], [doomed, backup]).generate(progress=False)
    assert result.generators == ["backup"] * 3
    assert {f.to_generator for f in result.fallbacks} == {"backup"}
    assert "could not load" in result.fallbacks[0].error
    assert list(result.failed_loads) == ["doomed"] and "could not load" in result.failed_loads["doomed"]


class Unloadable:
    """fn whose ``load()`` always fails, counting the attempts in a list shared by its copies."""

    def __init__(self, attempts):
        self.attempts = attempts

    def load(self):
        self.attempts.append(1)
        raise OSError("weights not found")

    def __call__(self, prompts, seeds):  # pragma: no cover - never reached
        raise AssertionError("called without a successful load")


def test_a_failed_load_is_remembered_for_the_run(make_plan, Recorder):
    attempts = []
    gens = [
        CallableGenerator("a", Unloadable(attempts), cost=1.0),
        CallableGenerator("b", Recorder("b", fail_on=lambda p: p == "x"), cost=2.0),
        CallableGenerator("c", Recorder("c"), cost=3.0),
    ]
    # prompt 0 goes to "a" (cannot load) and falls back to "b"; prompt 1 ("x") fails on "b" and would
    # next prefer "a": "a" is skipped (its load already failed) and "c" makes it
    quality = np.array([[3.0, 2.0, 1.0], [2.0, 3.0, 1.0]])
    result = make_plan(["ok", "x"], [0, 1], gens, quality=quality).generate(progress=False)
    assert len(attempts) == 1
    assert result.complete and result.generators == ["b", "c"]
    assert [(f.index, f.from_generator, f.to_generator) for f in result.fallbacks] == [(0, "a", "b"), (1, "b", "c")]
    assert result.failed_loads == {"a": "OSError: weights not found"}


def test_plain_specs_cannot_generate(make_plan, recorder_generators):
    gens, _ = recorder_generators
    plain = [GeneratorSpec("dalle", 0.04, cost_unit="flops"), GeneratorSpec("mj", 0.05, cost_unit="flops")]
    with pytest.raises(TypeError, match=r"\['dalle', 'mj'\].*plain GeneratorSpec"):
        make_plan(PROMPTS[:2], [0, 1], plain + gens).generate(progress=False)
    # an unused plain spec is fine: it is only skipped as a fallback target
    assert make_plan(PROMPTS[:2], [2, 3], plain + gens).generate(progress=False).complete


@pytest.mark.parametrize(
    "kwargs, match", [({"seed": -1}, "seed"), ({"batch_size": 0}, "batch_size"), ({"on_error": "ignore"}, "on_error")]
)
def test_bad_arguments(kwargs, match, make_plan, recorder_generators):
    gens, _ = recorder_generators
    with pytest.raises(ValueError, match=match):
        make_plan(PROMPTS[:1], [0], gens).generate(progress=False, **kwargs)


def test_progress_bar_and_empty_plan(make_plan, recorder_generators, capsys):
    gens, _ = recorder_generators
    make_plan(PROMPTS[:3], [0, 1, 2], gens).generate(progress=True)
    assert "3/3" in capsys.readouterr().err
    empty = make_plan([], np.zeros(0, dtype=int), gens, quality=np.zeros((0, 3))).generate(progress=False)
    assert len(empty) == 0 and empty.complete and isinstance(empty.to_frame(), pd.DataFrame)


# ------------------------------------------------------------------ errors: failed versus not attempted
def test_raise_counts_failed_and_not_attempted_prompts_apart(make_plan, Recorder):
    """One prompt fails; the seven after it were never tried: the message and the result say so."""
    prompts = [f"p{i}" for i in range(10)]
    gen = CallableGenerator("a", Recorder("a", fail_on=lambda p: p == "p2"), cost=1.0)
    with pytest.raises(GenerationError) as info:
        make_plan(prompts, [0] * 10, [gen]).generate(batch_size=4, on_error="raise", progress=False)
    message = str(info.value)
    # [p0-p3] fails -> [p0, p1] made -> [p2, p3] fails -> [p2] fails alone: the run stops there
    assert message.startswith(
        "1 of 10 images failed (prompts 2), 7 were not attempted because "
        "on_error='raise' stops the run at the first failure (prompts 3-9), 2 were made."
    )
    assert "prompt 2 (tried a): RuntimeError: a cannot draw ['p2']" in message
    partial = info.value.result
    assert partial.failed == [2] and partial.not_attempted == [3, 4, 5, 6, 7, 8, 9]
    assert partial.errors == {2: "RuntimeError: a cannot draw ['p2']"}
    assert partial.status() == ["made", "made", "failed"] + ["not attempted"] * 7
    assert partial.to_frame()["status"].tolist() == partial.status()
    assert "missing=8 (failed=1, not_attempted=7)" in repr(partial)


def test_fallback_exhausted_reports_only_failures(make_plan, Recorder):
    gens = [
        CallableGenerator(n, Recorder(n, fail_on=lambda p: p in ("x", "zzz")), cost=float(i + 1))
        for i, n in enumerate("ab")
    ]
    with pytest.raises(GenerationError) as info:
        make_plan(PROMPTS, [0] * 6, gens).generate(progress=False)
    assert str(info.value).startswith("2 of 6 images failed (prompts 2, 4), 4 were made.")
    assert info.value.result.failed == [2, 4] and info.value.result.not_attempted == []


# ------------------------------------------------------------------ what counts as an image
def filtering_api(tag, blocked, calls):
    """An API that returns None for the prompts its content filter blocks (and records its calls)."""

    def fn(prompts, seeds):
        calls.append(list(prompts))
        return [None if p in blocked else Label(f"{tag}|{p}|{s}") for p, s in zip(prompts, seeds)]

    return fn


def test_a_none_image_is_a_failure_that_falls_back(make_plan, Recorder):
    calls = []
    api = CallableGenerator("api", filtering_api("api", {"zzz"}, calls), cost=1.0, cost_unit="flops")
    backup = CallableGenerator("backup", Recorder("backup"), cost=5.0, cost_unit="flops")
    result = make_plan(PROMPTS, [0] * 6, [api, backup]).generate(seed=2, batch_size=4, progress=False)
    assert result.complete and result.missing == []
    assert result.generators == ["api", "api", "backup", "api", "api", "api"]
    assert str(result[2]) == f"backup|zzz|{image_seed(2, 2)}"
    # the filtered prompt is charged at the generator that made it, and the API was not called again for it
    assert result.costs.tolist() == [1.0, 1.0, 5.0, 1.0, 1.0, 1.0]
    assert calls == [PROMPTS[:4], PROMPTS[4:]]
    [move] = result.fallbacks
    assert (move.index, move.from_generator, move.to_generator) == (2, "api", "backup")
    assert move.error.startswith("TypeError: generator 'api' returned NoneType None instead of an image for prompt 2")


def test_a_none_image_with_on_error_raise(make_plan):
    api = CallableGenerator("api", filtering_api("api", {"zzz"}, []), cost=1.0)
    with pytest.raises(GenerationError, match=r"1 of 6 images failed \(prompts 2\)") as info:
        make_plan(PROMPTS, [0] * 6, [api]).generate(batch_size=8, on_error="raise", progress=False)
    partial = info.value.result
    # the run stops, but the images the same call returned for the other prompts are kept
    assert partial.generators == ["api", "api", None, "api", "api", "api"]
    assert partial.failed == [2] and partial.not_attempted == [] and np.isnan(partial.costs[2])
    assert isinstance(info.value.failures[2], TypeError)
    with pytest.raises(ValueError, match="1 of 6 prompts have no image"):
        partial.save("never-written")
    assert not os.path.exists("never-written")


@pytest.mark.parametrize(
    "item", [7, "an image", b"\x89PNG", np.zeros((4, 4, 3), dtype=np.uint8)], ids=["int", "str", "bytes", "array"]
)
def test_every_non_image_item_fails_its_prompt(item, make_plan, Recorder):
    odd = CallableGenerator("odd", lambda prompts, seeds: [item for _ in prompts], cost=1.0)
    backup = CallableGenerator("backup", Recorder("backup"), cost=2.0)
    result = make_plan(PROMPTS[:3], [0, 0, 0], [odd, backup]).generate(progress=False)
    assert result.complete and result.generators == ["backup"] * 3
    assert all(f"returned {type(item).__name__}" in f.error for f in result.fallbacks)


def test_a_string_returned_for_the_batch_is_not_split_into_images(make_plan, Recorder):
    """fn returning "abc" for three prompts used to give each prompt one character as its image."""
    chars = CallableGenerator("chars", lambda prompts, seeds: "abc"[: len(prompts)], cost=1.0)
    backup = CallableGenerator("backup", Recorder("backup"), cost=2.0)
    result = make_plan(["p", "q", "r"], [0, 0, 0], [chars, backup]).generate(progress=False)
    assert result.complete and result.generators == ["backup"] * 3
    assert all("returned a str" in f.error for f in result.fallbacks)


# ------------------------------------------------------------------ fallback order: utility, not quality
def test_fallback_follows_utility_when_cost_matters(make_plan, Recorder):
    """With cost_penalty > 0 the next generator by utility (q - lambda * c) is not the next by quality."""
    recs = {"a": Recorder("a", fail_on=lambda p: p == "x"), "b": Recorder("b"), "c": Recorder("c")}
    costs = {"a": 1.0, "b": 10.0, "c": 2.0}
    gens = [CallableGenerator(n, recs[n], cost=costs[n], cost_unit="flops") for n in "abc"]
    quality = np.array([[3.0, 2.0, 1.9], [3.0, 2.0, 1.9]])
    plan = make_plan(["ok", "x"], [0, 0], gens, quality=quality, cost_penalty=1.0)
    # utilities: a 3 - 0.1, b 2 - 1.0, c 1.9 - 0.2: c before b, whereas by quality b comes before c
    assert np.argsort(-plan.utilities()[1]).tolist() == [0, 2, 1]
    assert np.argsort(-plan.predicted_quality[1]).tolist() == [0, 1, 2]
    result = plan.generate(progress=False)
    assert result.generators == ["a", "c"] and recs["b"].calls == []
    assert [(f.index, f.from_generator, f.to_generator) for f in result.fallbacks] == [(1, "a", "c")]


# ------------------------------------------------------------------ out of memory, split halves waiting
def test_out_of_memory_after_a_split_keeps_every_waiting_half(make_plan, Recorder):
    """A bad prompt splits a batch; the first half then runs out of memory. The halves still waiting
    must be retried too: every prompt is made exactly once, in order, over many batches."""
    prompts = [f"p{i:02d}" for i in range(40)]
    bad = {"p05", "p13", "p22", "p38"}

    made_by_a = []

    def fragile(batch, seeds):
        if bad & set(batch):
            raise RuntimeError(f"cannot draw {sorted(bad & set(batch))}")
        if len(batch) > 2:
            raise MemoryError(f"simulated out of memory at batch size {len(batch)}")
        made_by_a.extend(batch)
        return [Label(f"a|{p}|{s}") for p, s in zip(batch, seeds)]

    backup = Recorder("b")
    gens = [CallableGenerator("a", fragile, cost=1.0), CallableGenerator("b", backup, cost=2.0)]
    result = make_plan(prompts, [0] * 40, gens).generate(seed=1, batch_size=8, progress=False)
    assert result.complete
    assert sorted(made_by_a + backup.made) == prompts  # each exactly once
    assert sorted(backup.made) == sorted(bad)
    assert texts(result) == [f"{'b' if p in bad else 'a'}|{p}|{image_seed(1, i)}" for i, p in enumerate(prompts)]
    assert max(size for size, g in zip(result.batch_sizes, result.generators) if g == "a") == 2


# ------------------------------------------------------------------ interruption
@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_interrupting_the_run_keeps_every_finished_image(stop, make_plan, capsys):
    """Ctrl-C during the 4th batch: the interrupt propagates, carrying the 6 images already made."""
    calls = []

    def slow_api(prompts, seeds):
        calls.append(list(prompts))
        if len(calls) == 4:
            raise stop()
        return [Label(f"api|{p}") for p in prompts]

    prompts = [f"p{i}" for i in range(10)]
    gen = CallableGenerator("api", slow_api, cost=0.5)
    with pytest.raises(stop) as info:
        make_plan(prompts, [0] * 10, [gen]).generate(batch_size=2, progress=True)
    partial = info.value.result
    assert isinstance(partial, GenerationResult)
    assert texts(partial.images) == [f"api|p{i}" for i in range(6)] + [None] * 4
    assert partial.generators == ["api"] * 6 + [None] * 4 and partial.total_cost == 3.0
    assert partial.failed == [] and partial.not_attempted == [6, 7, 8, 9]
    err = capsys.readouterr().err
    assert "6/10" in err and err.endswith("\n")  # the bar was closed, on its own line


def test_the_partial_result_of_an_interrupted_run_saves_what_was_made(make_plan, tmp_path):
    def api(prompts, seeds):
        if "p3" in prompts:
            raise KeyboardInterrupt
        return [Label(p) for p in prompts]

    gen = CallableGenerator("api", api, cost=1.0)
    with pytest.raises(KeyboardInterrupt) as info:
        make_plan([f"p{i}" for i in range(5)], [0] * 5, [gen]).generate(batch_size=1, progress=False)
    paths = info.value.result.save(tmp_path, fmt="txt", missing="skip")
    assert [os.path.basename(p) for p in paths] == [f"image_{i:04d}_api.txt" for i in range(3)]


# ------------------------------------------------------------------ progress
def test_the_final_progress_line_is_printed_once(make_plan, capsys):
    import time

    def slow(prompts, seeds):
        time.sleep(0.12)  # longer than tqdm's refresh interval: every update draws
        return [Label(p) for p in prompts]

    gen = CallableGenerator("slow", slow, cost=1.0)
    make_plan(["a", "b", "c"], [0, 0, 0], [gen]).generate(batch_size=1, progress=True)
    err = capsys.readouterr().err
    assert err.count("3/3") == 1 and err.count("100%") == 1 and "generating" in err


def test_only_the_outer_bar_shows_with_real_pipelines(tiny_sd, make_plan, capsys):
    """diffusers' per-step bars and its loading bars stay off; costroute's bar is the only one."""
    spec = DiffusersGenerator("sd", tiny_sd, steps=2, guidance_scale=5.0, device="cpu", dtype="float32")
    make_plan(["a cat", "a dog"], [0, 0], [spec]).generate(batch_size=1, progress=True)
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    assert lines and all(line.startswith("generating") for line in lines), lines
    assert sum("2/2" in line for line in lines) == 1


def test_an_uncached_preset_offline_falls_back_with_the_reason(make_plan, Recorder, monkeypatch):
    from costroute.generators import presets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    turbo = presets.get("sdxl-turbo-1", device="cpu", dtype="float32", cost=1.0)
    backup = CallableGenerator("backup", Recorder("backup"), cost=2.0, cost_unit="flops")
    result = make_plan(["a", "b"], [0, 0], [turbo, backup]).generate(progress=False)
    assert result.complete and result.generators == ["backup", "backup"]
    assert result.failed_loads["sdxl-turbo-1"].startswith(
        "OSError: the weights of 'stabilityai/sdxl-turbo' are not in the local Hugging Face cache"
    )
