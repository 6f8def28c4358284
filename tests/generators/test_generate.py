"""RoutingPlan.generate: grouping, batching, seeding, order, retries, fallbacks, errors."""

import os

import numpy as np
import pandas as pd
import pytest

from costroute import CostAwareRouter, GeneratorSpec
from costroute.generators import (
    CallableGenerator,
    DiffusersGenerator,
    GenerationError,
    GenerationResult,
    image_seed,
    pipeline_cache,
)

PROMPTS = ["a red cat", "two dogs on a hill", "zzz", "a blue car", "x", "an old tree at dusk"]


def pixels(image):
    return np.asarray(image, dtype=np.int16)


# ------------------------------------------------------------------ real (tiny) pipelines
@pytest.fixture
def tiny_pool(tiny_sd, tiny_sdxl):
    sd = DiffusersGenerator("sd-2", tiny_sd, steps=2, guidance_scale=5.0, dtype="float64", device="cpu")
    return [sd, sd.clone(name="sd-3", steps=3),
            DiffusersGenerator("xl-2", tiny_sdxl, steps=2, guidance_scale=5.0, dtype="float64", device="cpu")]


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
        assert result[i] == f"{'abc'[assignments[i]]}|{prompt}|{image_seed(5, i)}"
    # grouped per generator in registry order, batches of at most 2, each group loaded once
    assert recs["a"].calls == [[PROMPTS[1], PROMPTS[3]]]
    assert recs["c"].calls == [[PROMPTS[0], PROMPTS[4]]]
    frame = result.to_frame()
    assert list(frame.columns) == ["prompt", "planned_generator", "generator", "fell_back", "seed", "cost",
                                   "seconds", "batch_size"]
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
    assert [r.split("|")[1] for r in result] == PROMPTS


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
        return [p.upper() for p in prompts]

    result = make_plan(PROMPTS[:4], [0] * 4, [CallableGenerator("g", fn, cost=1.0)]).generate(
        batch_size=4, progress=False)
    assert list(result) == [p.upper() for p in PROMPTS[:4]] and sizes == [4, 2, 1, 1, 1, 1]


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
    assert result[4] == f"b|x|{image_seed(1, 4)}"
    frame = result.to_frame()
    assert frame["fell_back"].tolist() == [False, False, True, False, True, False]
    assert frame["cost"].tolist() == [1.0, 1.0, 2.0, 1.0, 2.0, 1.0]
    assert frame["planned_generator"].tolist() == ["a"] * 6


def test_on_error_raise_carries_the_partial_result(make_plan, Recorder):
    gens = [CallableGenerator("a", Recorder("a", fail_on=lambda p: p == "zzz"), cost=1.0),
            CallableGenerator("b", Recorder("b"), cost=2.0)]
    plan = make_plan(PROMPTS, [0, 1, 0, 0, 0, 1], gens)
    with pytest.raises(GenerationError, match="could not be made") as info:
        plan.generate(batch_size=1, on_error="raise", progress=False)
    partial = info.value.result
    # "a" runs first (registry order): prompt 0, then "zzz" (prompt 2) fails and stops the run
    assert partial.images == [f"a|{PROMPTS[0]}|{image_seed(0, 0)}"] + [None] * 5
    assert partial.generators == ["a"] + [None] * 5 and partial.missing == [1, 2, 3, 4, 5]
    assert partial.fallbacks == [] and list(info.value.failures) == [2]
    assert isinstance(info.value.failures[2], RuntimeError)


def test_when_every_generator_fails_nothing_is_silently_dropped(make_plan, Recorder):
    gens = [CallableGenerator(n, Recorder(n, fail_on=lambda p: p == "x"), cost=float(i + 1))
            for i, n in enumerate("ab")]
    with pytest.raises(GenerationError) as info:
        make_plan(PROMPTS, [0, 1, 0, 1, 0, 1], gens).generate(progress=False)
    partial = info.value.result
    assert partial.missing == [4]
    assert [p.split("|")[1] for i, p in enumerate(partial) if i != 4] == [p for p in PROMPTS if p != "x"]
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
    gens = [CallableGenerator("a", Unloadable(attempts), cost=1.0),
            CallableGenerator("b", Recorder("b", fail_on=lambda p: p == "x"), cost=2.0),
            CallableGenerator("c", Recorder("c"), cost=3.0)]
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


@pytest.mark.parametrize("kwargs, match", [({"seed": -1}, "seed"), ({"batch_size": 0}, "batch_size"),
                                           ({"on_error": "ignore"}, "on_error")])
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


def test_save_writes_one_file_per_image(tiny_pool, make_plan, tmp_path):
    result = make_plan(PROMPTS[:2], [0, 2], tiny_pool).generate(progress=False)
    paths = result.save(tmp_path / "out")
    assert [p.rsplit("/", 1)[1] for p in paths] == ["image_0000_sd-2.png", "image_0001_xl-2.png"]


class Saveable:
    def save(self, path):
        with open(path, "w") as f:
            f.write("image")


@pytest.mark.parametrize("name, part", [("org/model", "org_model"), ("../../escape", "._._escape"),
                                        ("..", "."), ("a\\b:c d", "a_b_c_d"), ("sd15-dpm++_v1.5", "sd15-dpm++_v1.5")])
def test_save_keeps_unsafe_generator_names_inside_the_folder(name, part, make_plan, tmp_path):
    gen = CallableGenerator(name, lambda prompts, seeds: [Saveable() for _ in prompts], cost=1.0)
    folder = tmp_path / "out"
    paths = make_plan(["a", "b"], [0, 0], [gen]).generate(progress=False).save(folder, fmt="txt")
    assert [os.path.basename(p) for p in paths] == [f"image_0000_{part}.txt", f"image_0001_{part}.txt"]
    assert sorted(os.listdir(folder)) == sorted(os.path.basename(p) for p in paths)
    assert all(os.path.dirname(os.path.abspath(p)) == str(folder) for p in paths)
