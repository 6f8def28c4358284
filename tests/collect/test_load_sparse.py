"""load_collection(missing=...): a service's store, one or two generators per prompt, loads with NaN cells."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from costroute.collect import collect, image_seed_for
from costroute.datasets import load_collection
from costroute.generators import CallableGenerator

from ._helpers import PROMPTS, Counting, brightness, draw, redness

pytestmark = pytest.mark.filterwarnings(r"ignore:generator\(s\) .* of the store:UserWarning")

#: Which generators each prompt of PROMPTS was sent to (what a routing service records).
SERVED = {0: ["g0"], 1: ["g1"], 2: ["g2", "g0"], 3: ["g1", "g2"], 4: ["g0"]}
NAMES = ["g0", "g1", "g2"]


def value(scorer, prompt: str, generator: str, seed_index: int) -> float:
    return scorer([prompt], draw([prompt], [image_seed_for(seed_index, prompt, generator)]))[0]


@pytest.fixture
def service_store(tmp_path, bright, red):
    """PROMPTS served by one or two of three generators (2 seeds, scorers bright and red), one 'red' score
    deleted through SQL, and a prompt served only by a generator that is not loaded."""
    gens = {name: CallableGenerator(name, Counting(), cost=cost) for name, cost in zip(NAMES, [1.0, 2.0, 4.0])}
    path = tmp_path / "service.sqlite"
    for i, names in SERVED.items():
        collect([PROMPTS[i]], [gens[g] for g in names], [bright, red], path, seeds=2, progress=False)
    other = CallableGenerator("other", Counting(), cost=1.0)
    collect(["a lonely prompt"], [other], [bright], path, progress=False)
    with sqlite3.connect(path) as conn:  # the red score of (prompt 1, g1, seed 1) was never written
        conn.execute(
            "DELETE FROM scores WHERE scorer_id = (SELECT id FROM scorers WHERE name = 'red') AND image_id = "
            "(SELECT i.id FROM images i JOIN generators g ON g.id = i.generator_id "
            "WHERE i.prompt_id = 2 AND g.name = 'g1' AND i.seed_index = 1)"
        )
    return path


def test_a_service_store_loads_with_nan_where_nothing_was_made(service_store):
    data = load_collection(service_store, scorer="bright", generators=NAMES, missing="nan")
    assert data.prompts == PROMPTS and data.dropped == ["a lonely prompt"]
    made = np.array([[g in SERVED[i] for g in NAMES] for i in range(len(PROMPTS))])
    expected = np.array(
        [
            [
                np.mean([value(brightness, p, g, s) for s in (0, 1)]) if made[i, k] else np.nan
                for k, g in enumerate(NAMES)
            ]
            for i, p in enumerate(PROMPTS)
        ]
    )
    assert isinstance(data.quality, pd.DataFrame) and list(data.quality.columns) == NAMES
    np.testing.assert_array_equal(np.isnan(data.quality.to_numpy()), ~made)
    np.testing.assert_allclose(data.quality.to_numpy(), expected, rtol=0, atol=1e-15)
    pd.testing.assert_frame_equal(data.scores["bright"], data.quality)
    # every scores matrix has NaN where nothing was scored; a cell aggregates the seeds it has
    red = data.scores["red"].to_numpy()
    np.testing.assert_array_equal(np.isnan(red), ~made)
    assert red[1, 1] == value(redness, PROMPTS[1], "g1", 0)  # seed 1's red score was deleted
    assert red[3, 1] == pytest.approx(np.mean([value(redness, PROMPTS[3], "g1", s) for s in (0, 1)]), abs=1e-15)
    assert data.ratings.shape == (5, 3, 2) and np.isnan(data.ratings[0, 1]).all()
    assert np.isnan(data.generation_seconds.to_numpy()[~made]).all()
    assert np.isfinite(data.generation_seconds.to_numpy()[made]).all()
    assert "missing='nan': 8 of 15 quality cells are NaN" in data.description
    assert "1 empty prompt(s) left out" in data.description
    assert len(data.frame) == made.sum() * 2 * 2 - 1


def test_the_median_min_and_max_of_a_sparse_cell_use_its_seeds(service_store):
    for aggregate, reduce in [("median", np.median), ("min", np.min), ("max", np.max)]:
        data = load_collection(service_store, scorer="red", generators=NAMES, missing="nan", aggregate=aggregate)
        q = data.quality.to_numpy()
        assert q[1, 1] == value(redness, PROMPTS[1], "g1", 0)
        assert q[2, 0] == reduce([value(redness, PROMPTS[2], "g0", s) for s in (0, 1)])


def test_missing_cells_still_raise_by_default_and_drop_is_drop_incomplete(service_store):
    with pytest.raises(ValueError, match=r"lacks .* cell\(s\).*missing=\"nan\" \(`--missing nan`\)"):
        load_collection(service_store, scorer="bright", generators=NAMES)
    with pytest.raises(ValueError, match="every prompt of the store .* lacks some cell"):
        load_collection(service_store, scorer="bright", generators=NAMES, missing="drop")
    dropped = load_collection(service_store, scorer="bright", generators=["g0"], missing="drop")
    legacy = load_collection(service_store, scorer="bright", generators=["g0"], drop_incomplete=True)
    assert dropped.prompts == legacy.prompts == [PROMPTS[0], PROMPTS[2], PROMPTS[4]]
    pd.testing.assert_frame_equal(dropped.quality, legacy.quality)


def test_a_complete_store_loads_the_same_under_every_choice(tmp_path, callables, bright, red):
    gens, _ = callables
    path = tmp_path / "full.sqlite"
    collect(PROMPTS, gens, [bright, red], path, seeds=2, progress=False)
    loads = [load_collection(path, scorer="bright", missing=m) for m in ("raise", "drop", "nan")]
    for data in loads[1:]:
        assert data.prompts == loads[0].prompts and data.dropped == []
        for name in ("bright", "red"):
            pd.testing.assert_frame_equal(data.scores[name], loads[0].scores[name], check_exact=True)
        np.testing.assert_array_equal(data.ratings, loads[0].ratings)
        pd.testing.assert_frame_equal(data.generation_seconds, loads[0].generation_seconds, check_exact=True)


def test_bad_missing_arguments_are_named(service_store):
    with pytest.raises(ValueError, match=r"missing must be one of \['raise', 'drop', 'nan'\], got 'skip'"):
        load_collection(service_store, scorer="bright", missing="skip")
    with pytest.raises(ValueError, match='drop_incomplete=True is missing="drop" and contradicts missing="nan"'):
        load_collection(service_store, scorer="bright", missing="nan", drop_incomplete=True)
    with pytest.raises(ValueError, match="holds no scored image of these generators, seeds and scorers for any"):
        load_collection(service_store, scorer="bright", generators=NAMES, seeds=[5], missing="nan")
