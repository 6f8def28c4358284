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
