"""``costroute fit --dataset STORE.sqlite --missing nan``: a service's sparse store fits a low-rank router (and a
cascade); without the flag, or with a quality model that needs every cell, it is refused clearly."""

import warnings

import numpy as np
import pytest

from costroute.cli import main
from costroute.collect import collect
from costroute.datasets import load_collection
from costroute.generators import CallableGenerator
from costroute.io import load
from costroute.scoring import CallableScorer

pytestmark = pytest.mark.filterwarnings(r"ignore:generator\(s\) .* of the store:UserWarning")

PROMPTS = [f"prompt {i}: {' '.join(['red', 'blue', 'tall', 'dark', 'wide'][: 1 + i % 5])} things" for i in range(40)]
NAMES = ["small", "medium", "large"]


def images(shade):
    from PIL import Image

    return lambda prompts, seeds: [Image.new("RGB", (4, 4), ((len(p) * 7 + shade) % 256, shade, 0)) for p in prompts]


@pytest.fixture(scope="module")
def sparse_store(tmp_path_factory):
    """Each prompt served by one generator, every third by two (real collect, one run per generator)."""
    gens = [CallableGenerator(name, images(40 * k), cost=cost) for k, (name, cost) in enumerate(zip(NAMES, [1, 3, 9]))]
    bright = CallableScorer("bright", lambda p, ims: [float(np.asarray(im).mean()) for im in ims], cost=0.01)
    red = CallableScorer("red", lambda p, ims: [float(np.asarray(im)[..., 0].mean()) for im in ims], cost=0.02)
    path = tmp_path_factory.mktemp("sparse") / "service.sqlite"
    served = {k: [p for i, p in enumerate(PROMPTS) if i % 3 == k or (i % 3 == (k + 1) % 3 and i % 2)] for k in range(3)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, gen in enumerate(gens):
            collect(served[k], [gen], [bright, red], path, progress=False)
    return str(path)


FAST = ["--features", "complexity", "--quality-model", "lowrank", "--scorer", "bright"]


def test_fit_on_a_sparse_store_with_missing_nan(sparse_store, tmp_path, capsys):
    out = str(tmp_path / "router.skops")
    args = ["fit", "--dataset", sparse_store, "-o", out, *FAST, "--missing", "nan", "--cost-penalty", "0.1"]
    assert main(args) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    data = load_collection(sparse_store, scorer="bright", missing="nan")
    nan = int(data.quality.isna().to_numpy().sum())
    assert 0 < nan < data.quality.size
    assert f"--missing nan: {nan} of {data.quality.size} quality cells are NaN" in err
    router = load(out)
    assert router.quality_model == "lowrank" and list(router.generator_names_) == NAMES
    assert router.predict_quality(PROMPTS).shape == (40, 3) and set(router.predict(PROMPTS)) <= set(NAMES)
    assert router.cost_penalty == 0.1


def test_fit_a_cascade_on_a_sparse_store(sparse_store, tmp_path, capsys):
    out = str(tmp_path / "cascade.skops")
    assert main(["fit", "--dataset", sparse_store, "-o", out, *FAST, "--missing", "nan", "--verify", "red", "-q"]) == 0
    cascade = load(out)
    assert len(cascade.scorer_names_) == 1 and cascade.posterior_.covariance_.shape == (6, 6)
    assert np.isnan(load_collection(sparse_store, scorer="bright", missing="nan").scores["red"].to_numpy()).any()
    plan = cascade.first_choices(PROMPTS[:5])
    assert len(plan) == 5


def test_a_sparse_store_is_refused_clearly_without_the_flag(sparse_store, tmp_path, capsys):
    out = str(tmp_path / "router.skops")
    assert main(["fit", "--dataset", sparse_store, "-o", out, *FAST]) == 2
    err = capsys.readouterr().err
    assert "lacks" in err and "`--missing nan`" in err and 'quality_model="lowrank" fits such a matrix' in err
    knn = [a if a != "lowrank" else "knn" for a in FAST]
    assert main(["fit", "--dataset", sparse_store, "-o", out, *knn, "--missing", "nan"]) == 2
    assert "only --quality-model lowrank fits such a matrix (--quality-model knn needs every cell)" in (
        capsys.readouterr().err
    )
    assert main(["fit", "--dataset", sparse_store, "-o", out, *FAST, "--missing", "nan", "--drop-incomplete"]) == 2
    assert "--drop-incomplete is --missing drop; it contradicts --missing nan" in capsys.readouterr().err
    assert main(["fit", "-o", out, "--missing", "nan"]) == 2  # a shipped dataset has no missing cells to keep
    assert "--missing apply to a collection store STORE.sqlite" in capsys.readouterr().err
    assert not (tmp_path / "router.skops").exists()
