"""load_genai_bench on the real file (needs COSTROUTE_DATA)."""

import dataclasses
import json
import shutil

import numpy as np
import pytest

from costroute.datasets import DataNotFoundError, _genai_bench, load_genai_bench
from costroute.datasets._cost_tables import genai_bench_generators
from costroute.generators import GeneratorRegistry

OPEN = {"DeepFloyd_I_XL_v1", "SDXL_Base", "SDXL_Turbo", "SDXL_2_1"}
MEANS = {
    "DALLE_3": 3.72,
    "Midjourney_6": 3.49,
    "DeepFloyd_I_XL_v1": 3.23,
    "SDXL_Base": 3.11,
    "SDXL_Turbo": 3.08,
    "SDXL_2_1": 2.85,
}


@pytest.fixture(scope="module")
def usd(shared_data):
    return load_genai_bench(cost_unit="usd")


@pytest.mark.parametrize("cost_unit, k", [("flops", 4), ("usd", 6)])
def test_shapes_and_order(cost_unit, k, shared_data, no_network):
    data = load_genai_bench(cost_unit=cost_unit)
    registry, assumptions = genai_bench_generators(cost_unit)
    assert isinstance(data.generators, GeneratorRegistry)
    assert data.generators.names == registry.names
    assert list(data.quality.columns) == registry.names
    assert data.quality.shape == (527, k)
    assert data.ratings.shape == (527, k, 3)
    assert data.quality.notna().all().all()
    np.testing.assert_allclose(data.quality.to_numpy(), data.ratings.mean(axis=2))
    np.testing.assert_array_equal(data.costs, registry.costs)
    assert data.cost_unit == cost_unit == data.generators.cost_unit
    assert list(data.quality.index) == data.prompt_ids
    assert len(data.prompts) == 527 and all(isinstance(p, str) and p for p in data.prompts)
    assert len(set(data.prompt_ids)) == 527
    assert assumptions.strip() in data.description
    assert "Apache-2.0" in data.description
    if cost_unit == "flops":
        assert set(data.generators.names) == OPEN


def test_sanity_means(usd):
    assert set(usd.generators.names) == set(MEANS)
    means = usd.quality.mean()
    for name, expected in MEANS.items():
        assert round(means[name], 2) == expected, name
    assert round(usd.quality.max(axis=1).mean(), 2) == 4.30


def test_flops_is_the_open_subset(usd, shared_data):
    flops = load_genai_bench()
    assert flops.cost_unit == "flops"
    np.testing.assert_array_equal(flops.quality, usd.quality[flops.generators.names])


def test_matches_raw_file(usd, shared_data):
    with open(shared_data / "genai-bench" / "genai_image.json", encoding="utf-8") as f:
        raw = json.load(f)
    assert usd.prompt_ids == list(raw)
    assert usd.prompt_ids[0] == "00001" and usd.prompt_ids[-1] == "00527"
    record = raw["00300"]
    i = usd.prompt_ids.index("00300")
    assert usd.prompts[i] == record["prompt"]
    for k, name in enumerate(usd.generators.names):
        assert usd.ratings[i, k].tolist() == record["models"][name]


@pytest.mark.parametrize("bad", ["FLOPs", "dollars", None])
def test_bad_cost_unit(bad):
    with pytest.raises(ValueError, match="flops.*usd"):
        load_genai_bench(cost_unit=bad)


def test_download_through_file_url(shared_data, tmp_path, data_home, monkeypatch, no_shared_data, usd):
    copy = tmp_path / "server" / "genai_image.json"
    copy.parent.mkdir()
    shutil.copyfile(shared_data / _genai_bench.GENAI_BENCH.relpath, copy)
    remote = dataclasses.replace(_genai_bench.GENAI_BENCH, url=copy.as_uri())
    monkeypatch.setattr(_genai_bench, "GENAI_BENCH", remote)
    with pytest.raises(DataNotFoundError, match="genai_image.json"):
        load_genai_bench(cost_unit="usd", data_home=data_home, download=False)
    data = load_genai_bench(cost_unit="usd", data_home=data_home)
    assert data.path == data_home / "genai-bench" / "genai_image.json"
    assert data.quality.equals(usd.quality)
