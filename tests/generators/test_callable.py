"""CallableGenerator and DeepFloydIFGenerator specs (no weights needed)."""

import copy

import pytest

from costroute.costs import pipeline_cost
from costroute.generators import BackendGenerator, CallableGenerator, DeepFloydIFGenerator, GeneratorSpec


def labels(prompts, seeds):
    return [f"{p}#{s}" for p, s in zip(prompts, seeds)]


def test_callable_generator_wraps_any_function():
    gen = CallableGenerator("api", labels, cost=0.04, model="some-api")
    assert isinstance(gen, (BackendGenerator, GeneratorSpec))
    assert (gen.cost, gen.cost_unit, gen.settings) == (0.04, "usd", {"model": "some-api"})
    assert gen.generate_images(["a", "b"], [1, 2]) == ["a#1", "b#2"]
    assert copy.deepcopy(gen) == gen and gen.clone(cost=0.05).cost == 0.05
    assert gen != CallableGenerator("api", lambda p, s: p, cost=0.04, model="some-api")
    assert "fn=labels" in repr(gen)


def test_callable_generator_checks_what_comes_back():
    with pytest.raises(TypeError, match="callable"):
        CallableGenerator("x", "not a function", cost=1.0)
    short = CallableGenerator("short", lambda prompts, seeds: prompts[:-1], cost=1.0)
    with pytest.raises(ValueError, match="returned 1 images for 2 prompts"):
        short.generate_images(["a", "b"], [1, 2])
    with pytest.raises(TypeError, match="sequence of images"):
        CallableGenerator("none", lambda prompts, seeds: None, cost=1.0).generate_images(["a"], [1])


@pytest.mark.parametrize(
    "returned", ["abc", b"abc", bytearray(b"abc"), {"a": 1, "b": 2, "c": 3}], ids=["str", "bytes", "bytearray", "dict"]
)
def test_callable_generator_rejects_a_string_instead_of_a_list(returned):
    """A str of n characters for n prompts used to become n one-character "images"."""
    gen = CallableGenerator("chars", lambda prompts, seeds: returned, cost=1.0)
    with pytest.raises(
        TypeError,
        match=rf"fn of generator 'chars' returned a {type(returned).__name__} for 3 "
        r"prompts; it must return a list with one image per prompt",
    ):
        gen.generate_images(["a", "b", "c"], [1, 2, 3])


def test_callable_generator_passes_items_through_for_the_runner_to_check():
    """Items are checked against the image contract where a plan runs (one failure per prompt, no re-call)."""
    gen = CallableGenerator("api", lambda prompts, seeds: [None] * len(prompts), cost=1.0)
    assert gen.generate_images(["a", "b"], [1, 2]) == [None, None]


def test_deepfloyd_if_spec_costs_both_stages_and_clones_cheaply():
    spec = DeepFloydIFGenerator("if", dtype="float16", device="cuda")
    assert spec._cost is None and "not counted" in repr(spec)
    assert spec.cost == pipeline_cost("deepfloyd_if", steps=(100, 50), guidance=(True, True)).total
    fewer = spec.clone(name="if-fast", steps=(50, 25))
    assert fewer.cost < spec.cost and fewer.settings["steps"] == (50, 25)
    no_guidance_2 = spec.clone(guidance_scale=(7.0, 1.0))
    parts = no_guidance_2.cost_breakdown().components
    assert parts["unet_stage2"].calls == 50 and parts["unet_stage1"].calls == 200
    first, second = spec._load_keys()
    assert first[:3] == ("DeepFloyd/IF-I-XL-v1.0", "float16", "cuda") and second[0] == "DeepFloyd/IF-II-L-v1.0"
    assert copy.deepcopy(spec) == spec
    with pytest.raises(ValueError, match="pair"):
        DeepFloydIFGenerator("bad", steps=100)


def test_every_backend_checks_one_seed_per_prompt():
    class Echo(BackendGenerator):
        def generate_images(self, prompts, seeds):
            prompts, seeds = self._check_batch(prompts, seeds)
            return [f"{p}#{s}" for p, s in zip(prompts, seeds)]

    assert Echo("echo", 1.0).generate_images(("a", "b"), [1.0, 2]) == ["a#1", "b#2"]
    for gen in (Echo("echo", 1.0), CallableGenerator("api", labels, cost=0.04), DeepFloydIFGenerator("if")):
        with pytest.raises(ValueError, match=rf"generator '{gen.name}' got 2 prompts but 1 seeds"):
            gen.generate_images(["a", "b"], [1])


@pytest.fixture
def fake_if_loads(monkeypatch):
    """Replace the IF stage loader with a recorder of (model, dtype, device) that loads nothing."""
    from costroute.generators import _deepfloyd

    loads = []

    def fake(model, dtype, device, load_kwargs):
        loads.append(model)
        return f"pipeline {model}"

    monkeypatch.setattr(_deepfloyd, "_load_any_pipeline", fake)
    return loads


def test_deepfloyd_if_holds_both_stages_in_the_cache(fake_if_loads, fresh_pipeline_cache):
    spec = DeepFloydIFGenerator("if", dtype="float32", device="cpu")
    other = DeepFloydIFGenerator("other", stage_1="org/other-I", dtype="float32", device="cpu")
    fresh_pipeline_cache.max_loaded = 2
    assert spec.load() == ("pipeline DeepFloyd/IF-I-XL-v1.0", "pipeline DeepFloyd/IF-II-L-v1.0")
    spec.load()
    assert fake_if_loads == ["DeepFloyd/IF-I-XL-v1.0", "DeepFloyd/IF-II-L-v1.0"]  # each stage once
    other.load()  # its stage I evicts spec's (least recently used); stage II is shared: a hit
    assert fake_if_loads[2:] == ["org/other-I"] and other._load_keys()[1] == spec._load_keys()[1]
    assert fresh_pipeline_cache.keys() == list(other._load_keys())
    spec.unload()
    assert fresh_pipeline_cache.keys() == [other._load_keys()[0]]


def test_deepfloyd_if_refuses_a_one_pipeline_cache(fake_if_loads, fresh_pipeline_cache):
    fresh_pipeline_cache.max_loaded = 1
    spec = DeepFloydIFGenerator("if", dtype="float32", device="cpu")
    for _ in range(2):
        with pytest.raises(ValueError, match=r"'if' holds two pipelines.*max_loaded is 1.*max_loaded = 2"):
            spec.load()
    assert fake_if_loads == [] and len(fresh_pipeline_cache) == 0
