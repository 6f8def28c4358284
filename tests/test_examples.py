"""The example scripts run as documented and write what they say they write."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
VERIFIED = EXAMPLES / "verified_generation.py"


def load_example(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_example(path: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run(
        [sys.executable, str(path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=str(path.parent.parent),
    )


@pytest.fixture(scope="module")
def verified_run(tmp_path_factory):
    """One tiny run of verified_generation.py (about 30 s on 2 CPU cores)."""
    out = tmp_path_factory.mktemp("verified")
    done = run_example(VERIFIED, "--tiny", "--n-train", "16", "--n-test", "4", "--no-progress", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done.stdout


def test_verified_generation_books_every_image_and_every_scoring(verified_run):
    out, _ = verified_run
    costs = pd.read_csv(out / "costs.csv")
    generators = costs[costs.role == "generator"].set_index("name").cost
    assert generators.index.tolist() == ["sdxl-turbo-1", "sd15-25", "sdxl-base-50"]
    assert generators.is_monotonic_increasing  # the real presets' costs, cheap / mid / expensive
    scoring = float(costs[costs.role == "scorer"].cost.iloc[0])
    assert 0 < scoring < generators.min()

    frame = pd.read_csv(out / "result.csv")
    assert len(frame) == 4 and frame.prompt.is_unique
    for _, row in frame.iterrows():
        tried = row.tried.split(" > ")
        assert len(set(tried)) == len(tried) and set(tried) <= set(generators.index)
        assert row.returned in tried and row.n_images == len(tried)
        scored = [g for g in generators.index if not np.isnan(row[f"score_{g}"])]
        assert set(scored) <= set(tried) and len(scored) == row.n_scores
        if len(tried) > 1:  # an escalation is only decided on a score, and every new image is scored
            assert set(scored) == set(tried)
        assert row.cost == pytest.approx(generators[tried].sum() + row.n_scores * scoring, rel=1e-12)
        assert row.normalized_cost == pytest.approx(row.cost / generators.max(), rel=1e-12)


def test_verified_generation_saves_every_candidate_and_a_contact_sheet(verified_run):
    out, _ = verified_run
    frame = pd.read_csv(out / "result.csv")
    expected = set()
    for i, row in frame.iterrows():
        for step, name in enumerate(row.tried.split(" > ")):
            expected.add(f"{i:02d}_{step + 1}_{name}{'_returned' if name == row.returned else ''}.png")
    assert {p.name for p in out.glob("[0-9]*.png")} == expected
    for name in expected:
        with Image.open(out / name) as image:
            assert image.size == (64, 64)  # the tiny pipelines' images, saved as made
    with Image.open(out / "contact_sheet.png") as sheet:
        sheet = sheet.convert("RGB")
        # one row per prompt, one tile per candidate: wide enough for the longest cascade
        assert sheet.height > len(frame) * 192 and sheet.width >= 240 + frame.n_images.max() * 192
        pixels = np.asarray(sheet)
        green = np.all(pixels == (17, 170, 17), axis=-1)  # the frame around each returned image
        assert green.any()


def test_verified_generation_prints_what_each_prompt_did(verified_run):
    out, stdout = verified_run
    frame = pd.read_csv(out / "result.csv")
    for i, row in frame.iterrows():
        assert f"#{i} " in stdout
        assert f"tried {row.tried}; returned {row.returned}; cost {row.cost / 1e12:.4g} TFLOPs" in stdout
    assert "mean nothing" in stdout  # the tiny run says its numbers are noise
    match = re.search(r"mean cost per prompt: cascade ([\d.e+]+) TFLOPs", stdout)
    assert match and float(match.group(1)) == pytest.approx(frame.cost.mean() / 1e12, rel=1e-3)
    assert "plain router" in stdout and str(out) in stdout


def test_verified_generation_rejects_a_training_set_too_small_for_the_router():
    done = run_example(VERIFIED, "--tiny", "--n-train", "5", timeout=120)
    assert done.returncode == 2
    assert "--n-train must be >= 10" in done.stderr and "got 5" in done.stderr


def test_verified_generation_falls_back_to_built_in_prompts_without_data(tmp_path, monkeypatch):
    example = load_example(VERIFIED)
    monkeypatch.setenv("COSTROUTE_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("COSTROUTE_DATA_HOME", str(tmp_path / "no-home"))
    prompts, source = example.choose_prompts(12, seed=3)
    assert "built-in" in source
    assert len(set(prompts)) == 12 and set(prompts) <= set(example.BUILTIN_PROMPTS)
    assert example.choose_prompts(12, seed=3)[0] == prompts  # the seed fixes the draw
    with pytest.raises(ValueError, match="holds only"):
        example.choose_prompts(len(example.BUILTIN_PROMPTS) + 1, seed=0)


@pytest.mark.parametrize("script", ["quickstart.py", "route_and_generate.py", "verified_generation.py"])
def test_every_example_answers_help_and_refuses_unknown_options_without_running(script):
    done = run_example(EXAMPLES / script, "--help", timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("usage:"), done.stderr[-2000:]
    assert "GenAI-Bench:" not in done.stdout  # the demo did not run
    done = run_example(EXAMPLES / script, "--bogus-flag", timeout=60)
    assert done.returncode == 2 and "unrecognized arguments: --bogus-flag" in done.stderr
    assert done.stdout == ""
