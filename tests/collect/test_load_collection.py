"""load_collection: the store as the Bunch of load_genai_bench, exact values, missing cells, and routers fit on it."""

from __future__ import annotations

import re
import sqlite3

import numpy as np
import pandas as pd
import pytest

from costroute import CascadeRouter, CostAwareRouter, GeneratorRegistry
from costroute.collect import CollectionStore, collect, generator_key, image_seed_for
from costroute.datasets import load_collection
from costroute.generators import CallableGenerator

from ._helpers import PROMPTS, Counting, brightness, draw


@pytest.fixture
def store(tmp_path, callables, bright, red):
    gens, _ = callables
    path = tmp_path / "run.sqlite"
    collect(PROMPTS, gens, [bright, red], path, seeds=3, batch_size=4, progress=False)
    return path


def expected(scorer, generators=("cheap", "dear"), seeds=(0, 1, 2)) -> np.ndarray:
    return np.array(
        [[[scorer([p], draw([p], [image_seed_for(s, p, g)]))[0] for s in seeds] for g in generators] for p in PROMPTS]
    )


def test_the_bunch_has_the_genai_bench_fields_with_exact_values(store, red):
    data = load_collection(store, scorer="bright")
    per_seed = expected(brightness)
    assert data.prompts == PROMPTS and data.prompt_ids == [str(i) for i in range(1, 6)]
    assert isinstance(data.quality, pd.DataFrame) and data.quality.shape == (5, 2)
    assert list(data.quality.columns) == ["cheap", "dear"] and data.quality.index.name == "prompt_id"
    np.testing.assert_array_equal(data.ratings, per_seed)
    np.testing.assert_allclose(data.quality.to_numpy(), per_seed.mean(axis=2), rtol=0, atol=1e-15)
    assert set(data.scores) == {"bright", "red"}
    pd.testing.assert_frame_equal(data.scores["bright"], data.quality)
    np.testing.assert_allclose(
        data.scores["red"].to_numpy(),
        expected(lambda p, i: red.score(p, i, progress=False)).mean(axis=2),
        rtol=0,
        atol=1e-15,
    )
    assert isinstance(data.generators, GeneratorRegistry) and data.generators.names == ["cheap", "dear"]
    np.testing.assert_array_equal(data.costs, [0.5, 2.0])
    assert data.cost_unit == "usd" and data.scorer == "bright" and data.seed_indices == [0, 1, 2]
    assert data.scorer_costs == {"bright": (0.01, "usd"), "red": (0.02, "usd")}
    assert data.generation_seconds.shape == (5, 2) and np.isfinite(data.generation_seconds.to_numpy()).all()
    assert len(data.frame) == 5 * 2 * 3 * 2 and data.dropped == []
    assert set(data.frame.columns) >= {"prompt", "generator", "seed_index", "seed", "scorer", "score", "cost"}
    assert "5 prompts x 2 generators" in data.description


@pytest.mark.parametrize("aggregate, reduce", [("median", np.median), ("min", np.min), ("max", np.max)])
def test_seeds_are_aggregated_as_asked(store, aggregate, reduce):
    data = load_collection(store, scorer="bright", aggregate=aggregate)
    np.testing.assert_array_equal(data.quality.to_numpy(), reduce(expected(brightness), axis=2))


def test_a_subset_of_generators_seeds_and_scorers(store):
    data = load_collection(store, scorer="red", generators=["dear"], seeds=[2], scorers=[])
    assert data.generators.names == ["dear"] and data.seed_indices == [2] and set(data.scores) == {"red"}
    assert data.ratings.shape == (5, 1, 1)


def test_a_cost_aware_router_and_a_cascade_fit_on_the_collection(store):
    data = load_collection(store, scorer="bright")
    router = CostAwareRouter(data.generators, features="complexity", quality_model="ridge").fit(
        data.prompts, data.quality
    )
    assert set(router.predict(["a small red cat", "a zebra"])) <= {"cheap", "dear"}
    assert router.predict_quality(data.prompts).shape == (5, 2)
    cascade = CascadeRouter(
        CostAwareRouter(data.generators, features="complexity", quality_model="ridge"),
        scoring_cost=0.02,
        cv=2,
        random_state=0,
    )
    cascade.fit(data.prompts, data.quality, scores=data.scores["red"])
    outcome = cascade.simulate(data.prompts, data.quality, data.scores["red"])
    assert len(outcome.returned) == 5


def test_missing_cells_are_named_or_their_prompts_dropped(tmp_path, callables, bright):
    gens, _ = callables
    path = tmp_path / "run.sqlite"
    collect(PROMPTS, gens[:1], [bright], path, seeds=2, progress=False)
    collect(PROMPTS[:3], gens[1:], [bright], path, seeds=2, progress=False)
    with pytest.raises(
        ValueError,
        match=r"lacks 4 cell\(s\) of 2 prompt\(s\): \('a tree at dusk', generator 'dear', "
        r"seed 0, scorer 'bright'\).*drop_incomplete=True "
        r"\(`--drop-incomplete` on the command line\)",
    ):
        load_collection(path)
    data = load_collection(path, drop_incomplete=True)
    assert data.prompts == PROMPTS[:3] and data.dropped == PROMPTS[3:]
    assert data.quality.shape == (3, 2) and data.frame["prompt"].isin(PROMPTS[:3]).all()
    assert load_collection(path, generators=["cheap"]).quality.shape == (5, 1)


@pytest.mark.parametrize(
    "value, what", [("1e400", "inf"), ("'abc'", "'abc'"), ("-1e400", "-inf"), ("x'00'", "b'\\x00'")]
)
def test_a_non_finite_or_non_numeric_score_names_its_row(store, value, what):
    with sqlite3.connect(store) as conn:
        image_id, prompt = conn.execute(
            "SELECT i.id, p.text FROM images i JOIN prompts p ON p.id = i.prompt_id "
            "JOIN generators g ON g.id = i.generator_id WHERE g.name = 'dear' "
            "AND p.id = 2 AND i.seed_index = 1"
        ).fetchone()
        conn.execute(
            f"UPDATE scores SET value = {value} WHERE image_id = ? AND scorer_id = "
            "(SELECT id FROM scorers WHERE name = 'red')",
            (image_id,),
        )
    assert prompt == PROMPTS[1]
    with pytest.raises(
        ValueError,
        match=rf"holds the score {re.escape(what)} of scorer 'red' for prompt 2 "
        r"\('two blue dogs'\), generator 'dear', seed 1: a score must be",
    ):
        load_collection(store, scorer="bright")
    load_collection(store, scorer="bright", scorers=[])  # the damaged scorer is not read


def test_two_generators_with_one_name_are_never_mixed(tmp_path, bright):
    old = CallableGenerator("g", Counting(), cost=1.0, steps=2)
    new = old.clone(steps=4)
    path = tmp_path / "run.sqlite"
    collect(PROMPTS[:2], [old], [bright], path, progress=False)
    collect(PROMPTS[:2], [new], [bright], path, progress=False)
    with pytest.raises(ValueError, match=r"several generators with the same name but different settings.*by key"):
        load_collection(path)
    with pytest.raises(ValueError, match=r"2 generators of the store are named 'g'.*pass the key"):
        load_collection(path, generators=["g"])
    data = load_collection(path, generators=[generator_key(new)])
    assert data.generators[0].settings == {"steps": 4}
    np.testing.assert_array_equal(
        data.ratings[:, 0, 0], [brightness([p], draw([p], [image_seed_for(0, p, "g")]))[0] for p in PROMPTS[:2]]
    )


def test_bad_arguments_are_named(tmp_path, store):
    with pytest.raises(FileNotFoundError, match="does not exist; run costroute.collect.collect"):
        load_collection(tmp_path / "nothing.sqlite")
    assert not (tmp_path / "nothing.sqlite").exists()
    with pytest.raises(
        ValueError,
        match=r"2 scorers \['bright', 'red'\]; pass scorer=NAME \(`--scorer NAME` on the "
        r"command line\)",
    ):
        load_collection(store)
    with pytest.raises(ValueError, match=r"no scorer 'judge'; its scorers \(name \(key\)\) are \['bright \("):
        load_collection(store, scorer="judge")
    with pytest.raises(ValueError, match=r"aggregate must be one of \['mean', 'median', 'min', 'max'\], got 'sum'"):
        load_collection(store, scorer="bright", aggregate="sum")
    with pytest.raises(TypeError, match="generators must be a list of generator names or keys"):
        load_collection(store, scorer="bright", generators="cheap")
    with pytest.raises(ValueError, match="seeds must be a non-empty list of seed indices >= 0"):
        load_collection(store, scorer="bright", seeds=[-1])
    with pytest.raises(ValueError, match=r"lacks 20 cell\(s\) of 5 prompt\(s\).*seed 7.* and 10 more"):
        load_collection(store, scorer="bright", seeds=[0, 7])
    with pytest.raises(TypeError, match="drop_incomplete must be True or False"):
        load_collection(store, scorer="bright", drop_incomplete="yes")
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).close()
    with pytest.raises(ValueError, match="is an empty file, not a collection store; fill it with costroute.collect"):
        load_collection(empty)
    assert empty.stat().st_size == 0  # loading never writes
    with sqlite3.connect(tmp_path / "schema_only.sqlite"):
        pass
    CollectionStore(tmp_path / "schema_only.sqlite").close()
    with pytest.raises(ValueError, match="is empty; fill it with costroute.collect.collect"):
        load_collection(tmp_path / "schema_only.sqlite")
