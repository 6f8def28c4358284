"""load_prompts on the real files."""

import dataclasses
import shutil

import pytest

from costroute.datasets import PROMPT_SETS, DataNotFoundError, _prompts, load_prompts

EXPECTED = {"partiprompts": 1632, "diffusiondb": 10_000, "coco": 2000, "drawbench": 161}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_load_prompts(name, shared_data, no_network):
    data = load_prompts(name)
    assert len(data.prompts) == EXPECTED[name] == len(data.frame)
    assert all(isinstance(p, str) and p for p in data.prompts)
    assert data.frame.notna().all().all()
    assert data.name == name
    assert shared_data in data.path.parents
    assert "License" in data.description


def test_names_listed():
    assert set(PROMPT_SETS) == set(EXPECTED)


def test_partiprompts_metadata(shared_data):
    data = load_prompts("partiprompts")
    assert list(data.frame.columns) == ["Prompt", "Category", "Challenge", "Note"]
    assert data.frame["Prompt"].tolist() == data.prompts
    assert data.frame["Category"].nunique() == 12
    assert data.frame["Challenge"].nunique() == 11
    assert data.prompts[0] == "bond"
    # Read literally: the quotation marks of this prompt are part of it.
    assert any(p.startswith('"G I G G L E"') for p in data.prompts)


def test_diffusiondb(shared_data):
    data = load_prompts("diffusiondb")
    assert list(data.frame.columns) == ["text", "image"]
    assert data.prompts[0].startswith("brittle, abstract emotion")


def test_tifa_subsets_by_id_prefix(shared_data):
    coco = load_prompts("coco")
    draw = load_prompts("drawbench")
    assert coco.frame["id"].str.startswith("coco_").all()
    assert list(coco.frame.columns) == ["id", "caption", "coco_val_id"]
    assert coco.prompts[0] == "On a gray day a surfer carrying a white board walks on a beach."
    assert draw.frame["id"].tolist() == [f"drawbench_{i}" for i in range(161)]
    assert draw.prompts[0] == "A red colored car."


@pytest.mark.parametrize("bad", ["parti", "DrawBench", "", None, 3])
def test_unknown_name(bad):
    with pytest.raises(ValueError, match="valid names are.*partiprompts.*diffusiondb.*coco.*drawbench"):
        load_prompts(bad)


def test_download_through_file_url(shared_data, tmp_path, data_home, monkeypatch, no_shared_data):
    source = shared_data / _prompts.TIFA.relpath
    copy = tmp_path / "server" / "tifa.json"
    copy.parent.mkdir()
    shutil.copyfile(source, copy)
    spec = _prompts._SETS["drawbench"]
    remote = dataclasses.replace(spec.remote, url=copy.as_uri())
    monkeypatch.setitem(_prompts._SETS, "drawbench", dataclasses.replace(spec, remote=remote))
    with pytest.raises(DataNotFoundError):
        load_prompts("drawbench", data_home=data_home, download=False)
    data = load_prompts("drawbench", data_home=data_home)
    assert data.path == data_home / "prompts" / "coco-tifa" / "tifa_v1.0_text_inputs.json"
    assert len(data.prompts) == 161
    copy.unlink()  # second load is served from the data home
    assert load_prompts("drawbench", data_home=data_home).prompts == data.prompts
