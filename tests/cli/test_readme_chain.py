"""The README's chain, run verbatim: tiny models, collect, fit, route, generate, for a router and a cascade.

Every command of the README's bash block runs as it is written (``costroute`` is this
interpreter's ``python -m costroute.cli``), in a fresh folder that holds only the two prompt
files. The images it writes are then compared with those of the same steps through the Python
API, pixel for pixel.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from costroute import CascadeRouter, CostAwareRouter
from costroute.datasets import load_collection
from costroute.generators import DiffusersGenerator

README = Path(__file__).resolve().parents[2] / "README.md"
PROMPTS = [
    "a red apple on a table",
    "a white wall",
    "a crowded park at dusk with a red kite",
    "two cats on a sofa",
    "a lighthouse in a storm",
    "an astronaut riding a horse",
]
NEW_PROMPTS = ["a green pear", "a dog in the snow", "a mountain lake at sunrise"]


def readme_chain() -> list[str]:
    """The commands of the README's block under "Your own generators", continuation lines joined."""
    text = README.read_text()
    section = text[text.index("## Your own generators") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chain")
    (folder / "prompts.txt").write_text("\n".join(PROMPTS) + "\n")
    (folder / "new_prompts.txt").write_text("\n".join(NEW_PROMPTS) + "\n")
    commands = readme_chain()
    script = 'set -euo pipefail\ncostroute() { "$PYTHON" -m costroute.cli "$@"; }\n' + "\n".join(commands)
    run = subprocess.run(
        ["bash", "-c", script],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return folder, commands, run


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_the_readme_shows_the_whole_chain_for_routers_and_cascades():
    commands = readme_chain()
    verbs = [c.split()[1] for c in commands]
    assert verbs == ["tiny", "collect", "fit", "route", "generate", "fit", "route", "generate"]
    assert "--verify" in commands[5] and "cascade.skops" in commands[6] and "cascade.skops" in commands[7]


def test_the_router_chain_generates_what_the_python_api_generates(chain):
    folder, _, _ = chain
    data = load_collection(folder / "run.sqlite", scorer="judge")
    assert all(isinstance(g, DiffusersGenerator) for g in data.generators)
    router = CostAwareRouter(
        data.generators, features="minilm", quality_model="ridge", random_state=0, progress=False
    ).fit(data.prompts, data.quality)
    plan = router.route(NEW_PROMPTS, budget=0.5)
    result = plan.generate(seed=0, batch_size=8, progress=False)

    routes = pd.read_csv(folder / "routes.csv")
    assert routes["prompt"].tolist() == NEW_PROMPTS
    assert routes["generator"].tolist() == router.predict(NEW_PROMPTS).tolist()
    table = pd.read_csv(folder / "out" / "images.csv")
    assert table["generator"].tolist() == plan.to_frame()["generator"].tolist()
    for i, name in enumerate(table["file"]):
        assert np.array_equal(pixels(folder / "out" / name), np.asarray(result[i].convert("RGB"))), name


def test_the_cascade_chain_generates_what_the_python_api_generates(chain):
    folder, _, _ = chain
    data = load_collection(folder / "run.sqlite", scorer="judge")
    assert data.scorer_specs["fast"] is not None
    router = CostAwareRouter(data.generators, features="minilm", quality_model="ridge", random_state=0, progress=False)
    cascade = CascadeRouter(
        router, scorer=data.scorer_specs["fast"], scoring_cost=data.scorer_costs["fast"][0], random_state=0
    ).fit(data.prompts, data.quality, scores=data.scores["fast"])
    result = cascade.generate(NEW_PROMPTS, seed=0, batch_size=8, progress=False, budget=0.8)

    first = pd.read_csv(folder / "first_choices.csv")
    starts = [order[0] for order in result.order]  # what generate started each prompt with
    assert first["generator"].tolist() == starts
    assert cascade.first_choices(NEW_PROMPTS, budget=0.8).to_frame()["generator"].tolist() == starts
    table = pd.read_csv(folder / "out-cascade" / "images.csv", keep_default_na=False)
    assert table["returned"].tolist() == result.returned
    assert table["tried"].tolist() == [" > ".join(o) for o in result.order]
    for i, row in table.iterrows():
        assert np.array_equal(pixels(folder / "out-cascade" / row["file"]), np.asarray(result[i].convert("RGB"))), row[
            "file"
        ]
        candidates = [f for f in row["candidate_files"].split(";") if f]
        assert len(candidates) == len(result.candidates[i]) - 1
    scored = table[[f"score_{g}" for g in result.generator_names]].replace("", np.nan).astype(float).to_numpy()
    np.testing.assert_allclose(scored, result.scores.to_numpy(), rtol=1e-5)


# ---------------------------------------------------------------- what the chain relies on, and its errors
def cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "costroute.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_a_store_rebuilds_its_generators_and_scorers_with_their_keys(chain):
    from costroute.collect import generator_key, scorer_key
    from costroute.scoring import CLIPScorer

    folder, _, _ = chain
    data = load_collection(folder / "run.sqlite", scorer="judge")
    with __import__("sqlite3").connect(folder / "run.sqlite") as db:
        gen_keys = dict(db.execute("SELECT name, key FROM generators").fetchall())
        gen_costs = dict(db.execute("SELECT name, cost FROM generators").fetchall())
        scorer_keys = dict(db.execute("SELECT name, key FROM scorers").fetchall())
    assert [g.steps for g in data.generators] == [2, 8, 4]
    assert {g.name: generator_key(g) for g in data.generators} == gen_keys
    assert {g.name: g.cost for g in data.generators} == gen_costs
    assert all(isinstance(s, CLIPScorer) for s in data.scorer_specs.values())
    assert {n: scorer_key(s) for n, s in data.scorer_specs.items()} == scorer_keys
    assert data.unbuilt == {} and data.unbuilt_scorers == {}


def test_a_generator_that_cannot_be_rebuilt_is_named_at_fit_and_refused_at_generate(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from collect._helpers import Counting, brightness

    from costroute.collect import collect
    from costroute.generators import CallableGenerator
    from costroute.scoring import CallableScorer

    store = tmp_path / "callable.sqlite"
    collect(
        PROMPTS,
        [CallableGenerator("cheap", Counting(), cost=1.0), CallableGenerator("dear", Counting(), cost=4.0)],
        [CallableScorer("bright", brightness, cost=0.0)],
        store,
        progress=False,
    )
    with pytest.warns(UserWarning, match=r"\['cheap', 'dear'\].*CallableGenerator.*cannot make images"):
        data = load_collection(store)
    assert set(data.unbuilt) == {"cheap", "dear"} and data.scorer_specs == {"bright": None}
    assert "CallableScorer" in data.unbuilt_scorers["bright"]

    fit = cli("fit", "--dataset", str(store), "--quality-model", "ridge", "-o", str(tmp_path / "r.skops"))
    assert fit.returncode == 0, fit.stderr
    assert "warning: generator(s) ['cheap', 'dear'] of the store" in fit.stderr
    (tmp_path / "p.txt").write_text("a green pear\n")
    gen = cli("generate", str(tmp_path / "p.txt"), "--router", str(tmp_path / "r.skops"), "--out", str(tmp_path / "o"))
    assert gen.returncode == 2
    assert "['cheap', 'dear'] are plain GeneratorSpecs" in gen.stderr


def test_verify_needs_a_store_and_one_of_its_scorers(chain, tmp_path):
    folder, _, _ = chain
    shipped = cli("fit", "--dataset", "genai-bench", "--verify", "clip", "-o", str(tmp_path / "c.skops"))
    assert shipped.returncode == 2 and "--verify names a scorer of a collection store" in shipped.stderr
    unknown = cli(
        "fit",
        "--dataset",
        str(folder / "run.sqlite"),
        "--scorer",
        "judge",
        "--verify",
        "nope",
        "--quality-model",
        "ridge",
        "-o",
        str(tmp_path / "c.skops"),
    )
    assert unknown.returncode == 2
    assert "--verify 'nope' is not a scorer of the store; its scorers are ['fast', 'judge']" in unknown.stderr
    itself = cli(
        "fit",
        "--dataset",
        str(folder / "run.sqlite"),
        "--scorer",
        "judge",
        "--verify",
        "judge",
        "--quality-model",
        "ridge",
        "-o",
        str(tmp_path / "c.skops"),
    )
    assert itself.returncode == 2 and "is the quality scorer itself" in itself.stderr
    assert not (tmp_path / "c.skops").exists()


def test_route_says_a_cascade_gives_its_first_choices(chain):
    folder, _, _ = chain
    run = cli("route", "new_prompts.txt", "--router", "cascade.skops", "--budget", "0.8", cwd=folder)
    assert run.returncode == 0, run.stderr
    assert "holds a CascadeRouter: these are its first choices" in run.stderr
    assert run.stdout == (folder / "first_choices.csv").read_text()
