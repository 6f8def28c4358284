"""Tests of the GenAI-Bench and AGIQA-3K cost tables."""

import pytest

pytest.importorskip("torch")

from costroute.costs import DEFAULT_PRICE_MODEL  # noqa: E402
from costroute.datasets._cost_tables import agiqa3k_generators, genai_bench_generators  # noqa: E402
from costroute.generators import GeneratorRegistry  # noqa: E402

GENAI_OPEN = ["DeepFloyd_I_XL_v1", "SDXL_Base", "SDXL_Turbo", "SDXL_2_1"]
GENAI_ALL = ["DALLE_3", "Midjourney_6"] + GENAI_OPEN
AGIQA_ALL = [
    "AttnGAN_normal",
    "glide_normal",
    "DALLE2_normal",
    "xl2.2_normal",
    "sd1.5_normal",
    "sd1.5_lowstep",
    "sd1.5_highcorr",
    "sd1.5_lowcorr",
    "midjourney_normal",
    "midjourney_lowstep",
]
AGIQA_SD15 = ["sd1.5_normal", "sd1.5_lowstep", "sd1.5_highcorr", "sd1.5_lowcorr"]


def test_genai_bench_flops():
    registry, text = genai_bench_generators("flops")
    assert isinstance(registry, GeneratorRegistry)
    assert registry.names == GENAI_OPEN and registry.cost_unit == "flops"
    c = dict(zip(registry.names, registry.costs))
    assert all(v > 0 for v in c.values())
    assert c["SDXL_Turbo"] < c["SDXL_2_1"] < c["SDXL_Base"]
    assert registry["SDXL_Turbo"].settings["steps"] == 1 and registry["SDXL_Turbo"].settings["guidance"] is False
    assert registry["SDXL_Base"].settings["height"] == 1024 and registry["SDXL_2_1"].settings["height"] == 768
    assert registry["DeepFloyd_I_XL_v1"].settings["steps"] == (100, 50)
    for name in GENAI_OPEN:
        assert name in text
    assert genai_bench_generators() == (registry, text)


def test_genai_bench_usd():
    registry, text = genai_bench_generators("usd")
    assert registry.names == GENAI_ALL and registry.cost_unit == "usd"
    assert registry["DALLE_3"].cost == 0.04 and registry["Midjourney_6"].cost == 0.05
    flops, _ = genai_bench_generators("flops")
    for name in GENAI_OPEN:
        assert registry[name].cost == pytest.approx(DEFAULT_PRICE_MODEL.usd_per_image(flops[name].cost))
        assert registry[name].settings["flops"] == flops[name].cost
    assert all(c > 0 for c in registry.costs)
    assert "Basic plan" in text and "H100" in text and "0.040" in text


def test_agiqa3k_usd():
    registry, text = agiqa3k_generators("usd")
    assert registry.names == AGIQA_ALL and registry.cost_unit == "usd"
    c = dict(zip(registry.names, registry.costs))
    assert all(v > 0 for v in c.values())
    assert c["sd1.5_lowstep"] < c["sd1.5_normal"] == c["sd1.5_highcorr"] == c["sd1.5_lowcorr"]
    assert c["midjourney_lowstep"] < c["midjourney_normal"]
    assert c["AttnGAN_normal"] == min(c.values())
    assert c["DALLE2_normal"] == 0.02
    for word in ("assum", "GLIDE", "AttnGAN", "lowstep", "placeholder"):
        assert word in text
    assert agiqa3k_generators() == (registry, text)


def test_agiqa3k_flops():
    registry, text = agiqa3k_generators("flops")
    assert registry.names == AGIQA_SD15 and registry.cost_unit == "flops"
    c = dict(zip(registry.names, registry.costs))
    assert c["sd1.5_lowstep"] < c["sd1.5_normal"]
    assert registry["sd1.5_lowstep"].settings["steps"] < registry["sd1.5_normal"].settings["steps"]
    assert "Only these four" in text


@pytest.mark.parametrize("fn", [genai_bench_generators, agiqa3k_generators])
def test_bad_unit(fn):
    with pytest.raises(ValueError, match=r"cost_unit must be one of \['flops', 'usd'\], got 'eur'"):
        fn("eur")
