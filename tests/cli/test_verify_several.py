"""``costroute fit --verify A B``: a cascade with two scorers of a store, generated from the command line.

The chain runs on tiny random-weight models (``costroute tiny``); the images and decisions
``costroute generate`` writes are compared with the Python API's, which scores with the same
two scorers rebuilt from the store.
"""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from costroute import CascadeRouter, CostAwareRouter
from costroute.cli import main
from costroute.datasets import load_collection
from costroute.io import load

PROMPTS = ["a red apple", "a white wall", "a park at dusk", "two cats", "a lighthouse", "a horse", "a boat"]
NEW = ["a green pear", "a dog in the snow"]


def cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "costroute.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Tiny models and a store with three scorers, written by the CLI's own code in this process
    (``costroute.cli.main``; the commands under test below run as real subprocesses)."""
    folder = tmp_path_factory.mktemp("several")
    (folder / "prompts.txt").write_text("\n".join(PROMPTS) + "\n")
    (folder / "new.txt").write_text("\n".join(NEW) + "\n")
    here = os.getcwd()
    os.chdir(folder)
    try:
        assert main(["tiny", "models"]) == 0
        status = main(
            [
                "collect",
                "prompts.txt",
                "--generators",
                "small=diffusers:models/sd:2",
                "large=diffusers:models/sd:6",
                "--scorer",
                "judge=clip:models/judge",
                "fast=clip:models/clip",
                "strict=clip:models/judge",
                "--store",
                "run.sqlite",
                "--seeds",
                "2",
                "--quiet",
            ]
        )
        assert status == 0
    finally:
        os.chdir(here)
    return folder


def test_fit_verify_with_two_scorers_saves_and_generates_a_two_scorer_cascade(store):
    fit = cli(
        "fit",
        "--dataset",
        "run.sqlite",
        "--scorer",
        "judge",
        "--verify",
        "fast",
        "strict",
        "--quality-model",
        "ridge",
        "--cost-penalty",
        "0",
        "-o",
        "cascade.skops",
        cwd=store,
    )
    assert fit.returncode == 0, fit.stderr
    assert "verified by 'fast', 'strict'" in fit.stderr
    cascade = load(store / "cascade.skops")
    assert cascade.scorer_names_ == ["fast", "strict"] and cascade.policy == "index"
    assert cascade.normalized_scoring_costs_.shape == (2,)

    gen = cli("generate", "new.txt", "--router", "cascade.skops", "--out", "out", cwd=store)
    assert gen.returncode == 0, gen.stderr
    table = pd.read_csv(store / "out" / "images.csv", keep_default_na=False)
    columns = [f"score_{s}_{g}" for s in ("fast", "strict") for g in ("small", "large")]
    assert set(columns) <= set(table.columns)

    data = load_collection(store / "run.sqlite", scorer="judge")
    router = CostAwareRouter(data.generators, features="minilm", quality_model="ridge", random_state=0, progress=False)
    api = CascadeRouter(
        router,
        scorer={name: data.scorer_specs[name] for name in ("fast", "strict")},
        scoring_cost=[data.scorer_costs[name][0] for name in ("fast", "strict")],
        random_state=0,
    ).fit(data.prompts, data.quality, scores={name: data.scores[name] for name in ("fast", "strict")})
    result = api.generate(NEW, seed=0, batch_size=8, progress=False)
    assert table["tried"].tolist() == [" > ".join(o) for o in result.order]
    assert table["returned"].tolist() == result.returned
    assert (~np.isnan(result.score_cube)).any(axis=(0, 1)).all()  # each scorer ran on some image
    frame = result.to_frame()
    np.testing.assert_allclose(
        table[columns].replace("", np.nan).astype(float).to_numpy(), frame[columns].to_numpy(dtype=float), rtol=1e-5
    )
    for i, row in table.iterrows():
        image = np.asarray(Image.open(store / "out" / row["file"]).convert("RGB"))
        assert np.array_equal(image, np.asarray(result[i].convert("RGB")))


def test_verify_refuses_a_scorer_named_twice(store, tmp_path):
    run = cli(
        "fit",
        "--dataset",
        "run.sqlite",
        "--scorer",
        "judge",
        "--verify",
        "fast",
        "fast",
        "-o",
        str(tmp_path / "c.skops"),
        cwd=store,
    )
    assert run.returncode == 2 and "--verify names a scorer twice" in run.stderr
