"""load_genai_bench_teaser on the real file (needs COSTROUTE_DATA)."""

import json
import shutil

import numpy as np
import pytest

from costroute.datasets import ChecksumError, DataNotFoundError, _teaser, load_genai_bench, load_genai_bench_teaser
from costroute.generators import GeneratorRegistry

TEASER = ["DALLE_3", "DeepFloyd_I_XL_v1", "Midjourney_6", "SDXL_Base"]


def within_prompt_correlation(a, b):
    """Pearson correlation of the row-centred values of two (n, K) matrices, all cells pooled."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    da = (a - a.mean(axis=1, keepdims=True)).ravel()
    db = (b - b.mean(axis=1, keepdims=True)).ravel()
    return float(np.corrcoef(da, db)[0, 1])


@pytest.fixture(scope="module")
def usd(shared_data):
    return load_genai_bench_teaser(cost_unit="usd")


@pytest.mark.parametrize(
    "cost_unit, names",
    [
        ("usd", ["DALLE_3", "Midjourney_6", "DeepFloyd_I_XL_v1", "SDXL_Base"]),
        ("flops", ["DeepFloyd_I_XL_v1", "SDXL_Base"]),
    ],
)
def test_shapes_order_and_costs(cost_unit, names, shared_data, no_network):
    data = load_genai_bench_teaser(cost_unit=cost_unit)
    full = load_genai_bench(cost_unit=cost_unit)
    assert isinstance(data.generators, GeneratorRegistry)
    assert data.generators.names == names == [n for n in full.generators.names if n in TEASER]
    assert data.generators == full.generators.subset(names)  # the same cost tables
    np.testing.assert_array_equal(data.costs, [full.generators[n].cost for n in names])
    assert data.cost_unit == cost_unit == data.generators.cost_unit
    assert data.quality.shape == (55, len(names)) and list(data.quality.columns) == names
    assert list(data.quality.index) == data.prompt_ids and len(set(data.prompt_ids)) == 55
    assert len(data.prompts) == 55 and all(isinstance(p, str) and p for p in data.prompts)
    assert sorted(data.scores) == ["clipscore", "vqascore"]
    for frame in data.scores.values():
        assert frame.index.equals(data.quality.index) and frame.columns.equals(data.quality.columns)
        assert frame.notna().all().all()
    assert "Apache-2.0" in data.description and data.path.name == "genai_image_teaser.json"


def test_values_and_alignment_with_genai_bench(usd, shared_data):
    raw = json.loads(usd.path.read_text())
    first = usd.prompt_ids[0]
    assert first == "00024" and usd.prompts[0] == raw[first]["prompt"]
    record = raw[first]["models"]["SDXL_Base"]
    assert usd.quality.loc[first, "SDXL_Base"] == float(record["human"]) == 4.33
    assert usd.scores["vqascore"].loc[first, "SDXL_Base"] == float(record["clip_flant5"]) == 0.869
    assert usd.scores["clipscore"].loc[first, "SDXL_Base"] == float(record["clip"]) == 0.290
    # the human means are those of the full GenAI-Bench file, rounded to 2 decimals
    full = load_genai_bench(cost_unit="usd").quality.loc[usd.prompt_ids, usd.quality.columns]
    np.testing.assert_allclose(usd.quality.to_numpy(), full.to_numpy(), atol=0.005 + 1e-9)
    assert usd.scores["vqascore"].to_numpy().min() >= 0 and usd.scores["vqascore"].to_numpy().max() <= 1
    assert ((usd.quality >= 1) & (usd.quality <= 5)).all().all()


def test_within_prompt_correlation_with_humans(usd):
    """VQAScore follows human ratings within a prompt at r = 0.74, CLIPScore at 0.26."""
    vqa = within_prompt_correlation(usd.scores["vqascore"], usd.quality)
    clip = within_prompt_correlation(usd.scores["clipscore"], usd.quality)
    assert round(vqa, 2) == 0.74
    assert round(clip, 2) == 0.26


def test_bad_cost_unit(shared_data):
    with pytest.raises(ValueError, match="cost_unit must be one of"):
        load_genai_bench_teaser(cost_unit="eur")


def test_missing_and_corrupted_files(shared_data, data_home, no_shared_data, no_network):
    with pytest.raises(DataNotFoundError):
        load_genai_bench_teaser(download=False)
    target = data_home / "genai-bench" / "genai_image_teaser.json"
    target.parent.mkdir(parents=True)
    shutil.copyfile(shared_data / "genai-bench" / "genai_image_teaser.json", target)
    assert load_genai_bench_teaser(cost_unit="usd", download=False).quality.shape == (55, 4)
    target.write_bytes(target.read_bytes().replace(b'"0.875"', b'"0.876"', 1))
    with pytest.raises(ChecksumError):
        load_genai_bench_teaser(download=False)


def test_parse_rejects_a_non_number(tmp_path):
    path = tmp_path / "teaser.json"
    path.write_text(
        json.dumps(
            {"00001": {"prompt": "p", "models": {"SDXL_Base": {"human": "4.00", "clip_flant5": "n/a", "clip": "0.2"}}}}
        )
    )
    with pytest.raises(ValueError, match=r"prompt 00001, generator SDXL_Base: field 'clip_flant5' is not a number"):
        _teaser._parse(path, ["SDXL_Base"])
    with pytest.raises(ValueError, match=r"has no scores for generators \['DALLE_3'\]"):
        _teaser._parse(path, ["DALLE_3"])


def test_public_and_lazy():
    import subprocess
    import sys
    import textwrap

    import costroute.datasets as ds

    for name in ("load_genai_bench_teaser", "simulate_scores"):
        assert name in ds.__all__ and callable(getattr(ds, name))
    code = textwrap.dedent(
        """
        import os, sys
        opened = []
        sys.addaudithook(lambda event, args: opened.append(args[0]) if event == "open" and isinstance(args[0], str)
                         and os.path.basename(args[0]) == "genai_image_teaser.json" else None)
        import costroute.datasets
        assert not opened, opened
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
