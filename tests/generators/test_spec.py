"""GeneratorSpec and GeneratorRegistry: descriptions, order, lookups and errors."""

import copy

import numpy as np
import pytest

from costroute import GeneratorRegistry, GeneratorSpec


def test_registry_order_costs_and_lookup():
    reg = GeneratorRegistry.from_costs({"turbo": 2.0, "base": 8.0, "mid": 4.0})
    assert reg.names == ["turbo", "base", "mid"] and len(reg) == 3
    np.testing.assert_allclose(reg.normalized_costs(), [0.25, 1.0, 0.5])
    assert reg["mid"].cost == 4.0 and reg[0].name == "turbo" and reg.index("base") == 1
    assert "base" in reg and "dalle" not in reg
    assert reg.subset(["mid", "turbo"]).names == ["mid", "turbo"]


def test_spec_clone_is_independent():
    spec = GeneratorSpec("sdxl-50", 6.9e14, steps=50, guidance_scale=5.0)
    twin = spec.clone(steps=25, name="sdxl-25")
    assert twin.settings["steps"] == 25 and spec.settings["steps"] == 50 and twin.name == "sdxl-25"
    assert copy.deepcopy(spec) == spec and hash(copy.deepcopy(spec)) == hash(spec)
    assert "steps=50" in repr(spec)


def test_coerce_accepts_registry_list_and_dict():
    specs = [GeneratorSpec("a", 1.0), GeneratorSpec("b", 2.0)]
    assert GeneratorRegistry.coerce(specs).names == ["a", "b"]
    assert GeneratorRegistry.coerce({"a": 1.0, "b": 2.0}) == GeneratorRegistry(specs)


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: GeneratorSpec("a", -1.0), ValueError, "must be finite and >= 0"),
        (lambda: GeneratorSpec("a", float("nan")), ValueError, "must be finite"),
        (lambda: GeneratorSpec("a", "cheap"), TypeError, "must be a real number"),
        (lambda: GeneratorSpec("", 1.0), ValueError, "non-empty"),
        (lambda: GeneratorSpec(3, 1.0), TypeError, "name must be a str"),
        (
            lambda: GeneratorSpec("a", 1.0, cost_unit="eur"),
            ValueError,
            r"cost_unit must be one of \('flops', 'usd', 'seconds'\)",
        ),
        (lambda: GeneratorRegistry([]), ValueError, "at least one"),
        (lambda: GeneratorRegistry([GeneratorSpec("a", 1), GeneratorSpec("a", 2)]), ValueError, r"duplicated: \['a'\]"),
        (
            lambda: GeneratorRegistry([GeneratorSpec("a", 1), GeneratorSpec("b", 2, cost_unit="usd")]),
            ValueError,
            "one cost_unit",
        ),
        (lambda: GeneratorRegistry(["a"]), TypeError, "must be a GeneratorSpec"),
        (lambda: GeneratorRegistry.from_costs({"a": 0.0}).normalized_costs(), ValueError, "every generator costs 0"),
        (
            lambda: GeneratorRegistry.from_costs({"a": 1.0})["b"],
            ValueError,
            r"unknown generator 'b'; valid names are \['a'\]",
        ),
    ],
)
def test_errors_name_the_problem(build, error, match):
    with pytest.raises(error, match=match):
        build()
