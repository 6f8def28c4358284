"""Presets: real hub configurations, costed from the shipped published configs."""

import copy
import subprocess
import sys

import numpy as np
import pytest

from costroute.costs import pipeline_cost
from costroute.generators import DeepFloydIFGenerator, DiffusersGenerator, GeneratorRegistry, presets


@pytest.fixture(scope="module")
def pool():
    return presets.paper_pool()


def test_pool_spans_the_cost_range_cheapest_first(pool):
    assert isinstance(pool, GeneratorRegistry)
    assert len(pool) >= 9 and pool.names == presets.names()
    costs = pool.costs
    assert np.all(np.diff(costs) > 0), dict(zip(pool.names, costs))
    assert costs[-1] / costs[0] > 100  # turbo 1 step vs SDXL 100 steps
    assert pool.cost_unit == "flops"


def test_totals_match_the_cost_model(pool):
    assert pool["sdxl-turbo-1"].cost == pipeline_cost("sdxl", height=512, width=512, steps=1, guidance=False).total
    assert pool["sd15-50"].cost == pipeline_cost("sd15", height=512, width=512, steps=50, guidance=True).total
    assert pool["sdxl-base-50"].cost == pipeline_cost("sdxl", steps=50, guidance=True).total
    # LCM-distilled UNet: guidance is an input, no doubled batch
    assert pool["lcm-sdxl-4"].cost == pipeline_cost("sdxl", steps=4, guidance=False).total
    assert pool["deepfloyd-if"].cost == pipeline_cost("deepfloyd_if", steps=(100, 50), guidance=(True, True)).total
    # order of magnitude against the reference counts of DESIGN.md
    sd15_unet = pool["sd15-50"].cost_breakdown().components["unet"]
    assert sd15_unet.flops_per_call == pytest.approx(803e9, rel=0.01) and sd15_unet.calls == 100
    assert pool["sdxl-base-50"].cost / 1e12 == pytest.approx(50 * 2 * 6.76 + 10, rel=0.05)
    # twice the steps: (almost exactly) twice the denoiser FLOPs
    unet = {n: pool[n].cost_breakdown().components["unet"].flops for n in ("sdxl-base-50", "sdxl-base-100")}
    assert unet["sdxl-base-100"] == 2 * unet["sdxl-base-50"]


def test_pool_matches_genai_bench_cost_table(pool):
    from costroute.datasets._cost_tables import genai_bench_generators

    table, _ = genai_bench_generators("flops")
    pairs = {
        "SDXL_Base": "sdxl-base-50",
        "SDXL_Turbo": "sdxl-turbo-1",
        "SDXL_2_1": "sd21-50",
        "DeepFloyd_I_XL_v1": "deepfloyd-if",
    }
    for data_name, preset in pairs.items():
        assert pool[preset].cost == pytest.approx(table[data_name].cost, rel=1e-12), data_name


def test_get_returns_fresh_configurable_specs():
    spec = presets.get("sdxl-base-50")
    assert isinstance(spec, DiffusersGenerator)
    assert spec.model == "stabilityai/stable-diffusion-xl-base-1.0" and spec.steps == 50
    assert presets.get("sdxl-base-50") is not spec
    fast = presets.get("sdxl-base-50", name="SDXL_Base", dtype="float16")
    assert (fast.name, fast.dtype, fast.steps) == ("SDXL_Base", "float16", 50)
    assert isinstance(presets.get("deepfloyd-if"), DeepFloydIFGenerator)
    with pytest.raises(ValueError, match="valid presets are .*sdxl-turbo-1"):
        presets.get("sdxl-turbo-2")


def test_table_has_every_preset(pool):
    table = presets.table()
    assert table.index.tolist() == presets.names()
    assert np.allclose(table["tflops"].to_numpy() * 1e12, pool.costs)
    assert table.loc["sdxl-turbo-1", "resolution"] == "512x512"
    assert not table.loc["sdxl-turbo-1", "guidance_batch"]


def test_presets_are_cheap_to_copy_and_import_nothing_heavy():
    code = (
        "import sys, copy\n"
        "from costroute.generators import presets\n"
        "pool = presets.paper_pool()\n"
        "copy.deepcopy(pool); pool['sd15-25'].clone(steps=10); repr(pool['sd15-25'])\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_clone_recounts_only_when_the_cost_changes(pool):
    spec = pool["sd15-25"]
    cost = spec.cost
    same = spec.clone(name="renamed", negative_prompt="blurry")
    assert same._cost == cost  # carried over, no recount
    assert spec.clone(steps=50).cost == pool["sd15-50"].cost
    fixed = spec.clone(cost=1.0)
    assert fixed.cost == 1.0 and fixed.clone(steps=50).cost == 1.0
    assert copy.deepcopy(spec) == spec


@pytest.mark.parametrize(
    "name, repo", [("sdxl-turbo-1", "stabilityai/sdxl-turbo"), ("deepfloyd-if", "DeepFloyd/IF-I-XL-v1.0")]
)
def test_loading_offline_without_cache_says_how_to_get_the_weights(name, repo, monkeypatch, fresh_pipeline_cache):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError) as info:
        presets.get(name, device="cpu", dtype="float32").load()
    message = str(info.value)
    assert message.startswith(f"the weights of {repo!r} are not in the local Hugging Face cache")
    assert f"`hf download {repo}`" in message and "pass it as the model" in message
    assert "model_index.json" not in message
