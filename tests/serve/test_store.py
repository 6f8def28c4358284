"""The store holds exactly what was served, under collect's keys, and reads as a dataset."""

from __future__ import annotations

import sqlite3

import httpx
import numpy as np
import pytest

from costroute import CostAwareRouter
from costroute.collect import APPENDED_SEED_INDEX, collect, generator_key, scorer_key
from costroute.datasets import load_collection
from costroute.scoring import CallableScorer
from costroute.serve import create_app

from ._helpers import NEW_PROMPTS, ServerThread, brightness, make_cascade, make_router


def ask(server, prompt, model="auto", seed=0, n=1):
    response = httpx.post(
        f"{server.url}/v1/images/generations",
        json={"prompt": prompt, "model": model, "n": n, "costroute": {"seed": seed}},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return [d["costroute"] for d in response.json()["data"]]


def stored(path):
    with sqlite3.connect(path) as db:
        images = db.execute(
            "SELECT p.text, g.name, i.seed_index, i.seed, i.cost, i.id FROM images i "
            "JOIN prompts p ON p.id = i.prompt_id JOIN generators g ON g.id = i.generator_id ORDER BY i.id"
        ).fetchall()
        scores = dict(
            ((image_id, scorer), value)
            for image_id, scorer, value in db.execute(
                "SELECT s.image_id, sc.name, s.value FROM scores s JOIN scorers sc ON sc.id = s.scorer_id"
            )
        )
        keys = {
            "generators": dict(db.execute("SELECT name, key FROM generators")),
            "scorers": dict(db.execute("SELECT name, key FROM scorers")),
        }
    return images, scores, keys


def test_the_store_holds_exactly_the_served_images_and_scores(tmp_path):
    path = tmp_path / "served.sqlite"
    scorer = CallableScorer("bright", brightness, cost=0.5)
    router = make_router()
    served = []
    with ServerThread(create_app(router, scorer=scorer, store=path)) as server:
        for i, prompt in enumerate(NEW_PROMPTS[:3]):  # every generator on three prompts
            for name in router.generator_names_:
                served += [(prompt, e) for e in ask(server, prompt, model=name, seed=i)]
        for i, prompt in enumerate(NEW_PROMPTS[3:]):  # routed, two images each
            served += [(prompt, e) for e in ask(server, prompt, seed=10 + i, n=2)]
        served += [(NEW_PROMPTS[0], e) for e in ask(server, NEW_PROMPTS[0], model="mid", seed=99)]  # again
    images, scores, keys = stored(path)
    assert len(images) == len(served) == 9 + 6 + 1
    # an image row costs its generator's image (as collect's); the response adds the scoring
    assert sorted((p, e["generator"], e["seed"], e["cost"] - 0.5) for p, e in served) == sorted(
        (p, g, seed, pytest.approx(cost)) for p, g, _, seed, cost, _ in images
    )
    assert all(cost == router.generators_[g].cost for _, g, _, _, cost, _ in images)
    by_seed = {seed: image_id for _, _, _, seed, _, image_id in images}
    for _, e in served:
        assert scores[(by_seed[e["seed"]], "bright")] == pytest.approx(e["scores"]["bright"][e["generator"]])
    assert len(scores) == len(images)
    assert keys["generators"] == {g.name: generator_key(g) for g in router.generators_}
    assert keys["scorers"] == {"bright": scorer_key(scorer)}
    # a (prompt, generator) served again takes the next seed index, never another image's place
    again = [(idx, seed) for p, g, idx, seed, _, _ in images if p == NEW_PROMPTS[0] and g == "mid"]
    base = APPENDED_SEED_INDEX  # above every index collect counts up to
    assert [idx for idx, _ in again] == [base, base + 1]
    routed = sorted(idx for p, _, idx, _, _, _ in images if p in NEW_PROMPTS[3:])
    assert set(routed) <= {base, base + 1}
    # and it reads as a dataset, NaN where nothing was made, each cell the mean over its seeds
    with pytest.warns(UserWarning, match="CallableGenerator"):  # callables are not rebuilt from a store
        data = load_collection(path, scorer="bright", missing="nan")
    assert data.prompts == NEW_PROMPTS
    values: dict[tuple[str, str], list[float]] = {}
    for prompt, e in served:
        values.setdefault((prompt, e["generator"]), []).append(e["scores"]["bright"][e["generator"]])
    for i, prompt in enumerate(data.prompts):
        for name in data.quality.columns:
            cell = data.quality.iloc[i][name]
            if (prompt, name) in values:
                assert cell == pytest.approx(np.mean(values[(prompt, name)]))
            else:
                assert np.isnan(cell)
    assert int(data.quality.isna().to_numpy().sum()) == 3 * 3 - len({k for k in values if k[0] in NEW_PROMPTS[3:]})
    # the next router is fitted on what was served (the low-rank model fits the missing cells)
    again = CostAwareRouter(router.generators_, features="complexity", quality_model="lowrank")
    assert again.fit(data.prompts, data.quality).predict(NEW_PROMPTS).shape == (len(NEW_PROMPTS),)


def test_serving_into_a_collected_store_adds_rows_under_the_same_keys(tmp_path):
    path = tmp_path / "run.sqlite"
    router = make_router()
    scorer = CallableScorer("bright", brightness, cost=0.5)
    collect(NEW_PROMPTS[:2], list(router.generators_), [scorer], path, progress=False)
    before, _, keys_before = stored(path)
    with ServerThread(create_app(router, scorer=scorer, store=path)) as server:
        ask(server, NEW_PROMPTS[0], model="cheap", seed=4)
    after, scores, keys_after = stored(path)
    assert keys_after == keys_before  # the same generators and scorer, not new ones
    new = [row for row in after if row not in before]
    assert [(p, g, idx) for p, g, idx, _, _, _ in new] == [(NEW_PROMPTS[0], "cheap", APPENDED_SEED_INDEX)]
    assert len(scores) == len(after)


def test_a_cascade_stores_every_candidate_with_its_scores(tmp_path):
    path = tmp_path / "cascade.sqlite"
    cascade = make_cascade()
    with ServerThread(create_app(cascade, store=path)) as server:
        exts = [e for i, p in enumerate(NEW_PROMPTS) for e in ask(server, p, seed=i)]
    images, scores, _ = stored(path)
    assert len(images) == sum(len(e["generators_tried"]) for e in exts)  # no image failed here
    assert len(scores) == sum(len(e["scores"].get("bright", {})) for e in exts)
    assert any(len(e["generators_tried"]) > 1 for e in exts)
    stored_scores = sorted(v for (_, name), v in scores.items())
    served_scores = sorted(v for e in exts for v in e["scores"].get("bright", {}).values())
    np.testing.assert_allclose(stored_scores, served_scores)


def test_explored_images_are_marked_charged_and_stored(tmp_path):
    path = tmp_path / "explore.sqlite"
    with ServerThread(create_app(make_router(), store=path, explore=1.0, seed=3)) as server:
        exts = [e for i in range(12) for e in ask(server, "a teapot", seed=i)]
    assert all(e["explored"] and e["routed"] for e in exts)
    assert len({e["generator"] for e in exts}) == 3  # drawn uniformly: every generator comes up
    images, _, _ = stored(path)
    assert sorted(g for _, g, _, _, _, _ in images) == sorted(e["generator"] for e in exts)
    assert sorted(c for _, _, _, _, c, _ in images) == sorted(e["cost"] for e in exts)
