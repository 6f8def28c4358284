"""load_agiqa3k on the real file (needs COSTROUTE_DATA)."""

import numpy as np
import pandas as pd
import pytest

from costroute.datasets import load_agiqa3k
from costroute.datasets._cost_tables import agiqa3k_generators

CONFIGS = {
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
}


@pytest.fixture(scope="module")
def raw(shared_data):
    return pd.read_csv(shared_data / "agiqa-3k" / "data.csv", keep_default_na=False)


def test_default_load(shared_data, no_network):
    data = load_agiqa3k()
    registry, assumptions = agiqa3k_generators("usd")
    assert data.target == "alignment" and data.cost_unit == "usd"
    assert list(data.quality.columns) == registry.names == data.generators.names
    assert set(registry.names) == CONFIGS
    assert data.quality.shape == data.std.shape == (287, 10)
    assert data.quality.notna().all().all() and data.std.notna().all().all()
    assert data.quality.index.equals(data.std.index) and data.quality.index.equals(data.frame.index)
    assert data.quality.index.is_monotonic_increasing
    assert data.prompt_ids == data.quality.index.tolist()
    assert list(data.frame.columns) == ["prompt", "adj1", "adj2", "style"]
    assert data.prompts == data.frame["prompt"].tolist()
    assert all(isinstance(p, str) and p for p in data.prompts)
    np.testing.assert_array_equal(data.costs, registry.costs)
    assert assumptions.strip() in data.description and "MIT" in data.description


@pytest.mark.parametrize("target, column", [("alignment", "mos_align"), ("quality", "mos_quality")])
def test_values_match_file(target, column, raw, shared_data):
    data = load_agiqa3k(target=target)
    std_column = column.replace("mos", "std")
    for name in ["AttnGAN_normal_000.jpg", "sd1.5_lowstep_123.jpg", "midjourney_normal_299.jpg"]:
        row = raw[raw["name"] == name].iloc[0]
        config, idx = name[: -len("_000.jpg")], int(name[-7:-4])
        assert data.quality.loc[idx, config] == row[column]
        assert data.std.loc[idx, config] == row[std_column]
        assert data.frame.loc[idx, "prompt"] == row["prompt"]


def test_incomplete_prompts_are_nan(shared_data):
    full = load_agiqa3k(complete_only=False)
    assert full.quality.shape == (300, 10)
    assert full.quality.index.tolist() == list(range(300))
    missing = full.quality.isna().sum()
    assert missing["DALLE2_normal"] == 10
    assert missing["midjourney_normal"] == missing["midjourney_lowstep"] == 4
    assert missing.sum() == 18
    assert full.std.isna().equals(full.quality.isna())
    complete = load_agiqa3k(complete_only=True)
    assert full.quality.dropna().equals(complete.quality)


@pytest.mark.parametrize("bad", ["align", "mos_align", "", None])
def test_bad_target(bad):
    with pytest.raises(ValueError, match="alignment.*quality"):
        load_agiqa3k(target=bad)


def test_bad_cost_unit():
    with pytest.raises(ValueError, match="flops.*usd"):
        load_agiqa3k(cost_unit="eur")


def test_flops_registry_keeps_its_columns(shared_data):
    registry, _ = agiqa3k_generators("flops")
    data = load_agiqa3k(cost_unit="flops")
    assert list(data.quality.columns) == registry.names
    assert data.cost_unit == "flops"
    # The SD 1.5 configurations rendered every prompt: nothing to drop.
    assert data.quality.shape == (300, len(registry))
    assert data.quality.notna().all().all()
    usd = load_agiqa3k(complete_only=False)
    assert data.quality.equals(usd.quality[registry.names])
