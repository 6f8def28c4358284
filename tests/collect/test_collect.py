"""collect(): every cell once with exact costs, seeds, saved images, failures, new scorers, new settings, errors."""

from __future__ import annotations

import hashlib
import os
import sqlite3

import numpy as np
import pytest
from PIL import Image

from costroute import GeneratorSpec
from costroute.collect import (
    Backend,
    CollectionStore,
    LocalBackend,
    UnitResult,
    collect,
    generator_key,
    image_seed_for,
    prompt_number,
    scorer_key,
)
from costroute.collect._keys import generator_identity
from costroute.execution import candidate_seed
from costroute.generators import CallableGenerator, DiffusersGenerator, pipeline_cache
from costroute.scoring import CallableScorer

from ._helpers import PROMPTS, Counting, brightness, draw, integrity, rows


def test_a_small_run_stores_every_cell_once_with_exact_costs_seeds_and_scores(tmp_path, callables, bright, red):
    gens, counters = callables
    prompts = PROMPTS[:3]
    summary = collect(prompts, gens, [bright, red], tmp_path / "run.sqlite", seeds=2, batch_size=2, progress=False)
    assert (summary.cells, summary.cells_before, summary.cells_written) == (3 * 2 * 2 * 2, 0, 24)
    assert (summary.images_generated, summary.images_rescored, summary.failures) == (12, 0, {})
    assert summary.complete and summary.cells_missing == 0
    # every (prompt, generator, seed) generated exactly once, in batches of at most 2
    assert (counters["cheap"].images, counters["dear"].images) == (6, 6)
    assert (counters["cheap"].calls, counters["dear"].calls) == (3, 3)
    expected = set()
    for gen in gens:
        for s in (0, 1):
            for p in prompts:
                seed = candidate_seed(s, prompt_number(p), gen.name)
                image = draw([p], [seed])[0]
                for scorer, fn in (("bright", brightness), ("red", None)):
                    value = fn([p], [image])[0] if fn else red.score([p], [image], progress=False)[0]
                    expected.add((p, gen.name, generator_key(gen), s, seed, gen.cost, None, scorer, value))
    assert rows(tmp_path / "run.sqlite") == expected
    assert integrity(tmp_path / "run.sqlite") == {
        "images": 12,
        "scores": 24,
        "duplicate_images": 0,
        "duplicate_scores": 0,
        "partial_images": 0,
        "dangling_scores": 0,
    }
    with sqlite3.connect(tmp_path / "run.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert sorted(conn.execute("SELECT name, cost, cost_unit FROM generators")) == [
            ("cheap", 0.5, "usd"),
            ("dear", 2.0, "usd"),
        ]
        assert sorted(conn.execute("SELECT name, cost, cost_unit FROM scorers")) == [
            ("bright", 0.01, "usd"),
            ("red", 0.02, "usd"),
        ]
        gen_seconds = [r[0] for r in conn.execute("SELECT seconds FROM images")]
        score_seconds = [r[0] for r in conn.execute("SELECT seconds FROM scores")]
    assert all(np.isfinite(gen_seconds)) and min(gen_seconds) >= 0
    assert all(np.isfinite(score_seconds)) and min(score_seconds) >= 0


def test_a_rerun_with_the_same_arguments_pays_for_nothing(tmp_path, callables, bright):
    gens, counters = callables
    collect(PROMPTS, gens, [bright], tmp_path / "run.sqlite", seeds=2, batch_size=3, progress=False)
    before = rows(tmp_path / "run.sqlite")
    calls = counters["cheap"].calls + counters["dear"].calls
    summary = collect(PROMPTS, gens, [bright], tmp_path / "run.sqlite", seeds=2, batch_size=3, progress=False)
    assert counters["cheap"].calls + counters["dear"].calls == calls
    assert (summary.cells_before, summary.cells_written, summary.images_generated) == (20, 0, 0)
    assert rows(tmp_path / "run.sqlite") == before


def test_seeds_follow_the_prompt_text_not_its_position_and_more_seeds_can_be_added(tmp_path, callables, bright):
    gens, counters = callables
    collect(PROMPTS[:3], gens, [bright], tmp_path / "a.sqlite", seeds=1, progress=False)
    collect(PROMPTS[:3][::-1], gens, [bright], tmp_path / "b.sqlite", seeds=1, batch_size=1, progress=False)
    assert rows(tmp_path / "a.sqlite") == rows(tmp_path / "b.sqlite")
    assert image_seed_for(1, "a red cat", "cheap") == candidate_seed(1, prompt_number("a red cat"), "cheap")
    # seed indices 1 and 2 added to a store with seed index 0: only the new ones are made
    images = counters["cheap"].images
    summary = collect(PROMPTS[:3], gens, [bright], tmp_path / "a.sqlite", seeds=[1, 2], progress=False)
    assert counters["cheap"].images - images == 6 and summary.cells_before == 0 and summary.cells_written == 12
    with sqlite3.connect(tmp_path / "a.sqlite") as conn:
        assert sorted(r[0] for r in conn.execute("SELECT DISTINCT seed_index FROM images")) == [0, 1, 2]


def test_saved_images_are_pngs_named_by_their_hash(tmp_path, callables, bright):
    gens, _ = callables
    collect(PROMPTS[:2], gens, [bright], tmp_path / "run.sqlite", seeds=1, progress=False, save_images=tmp_path / "img")
    with sqlite3.connect(tmp_path / "run.sqlite") as conn:
        stored = conn.execute(
            "SELECT p.text, g.name, i.seed, i.path FROM images i "
            "JOIN prompts p ON p.id = i.prompt_id "
            "JOIN generators g ON g.id = i.generator_id"
        ).fetchall()
    assert len(stored) == 4
    for prompt, _, seed, path in stored:
        data = open(path, "rb").read()
        assert os.path.basename(path) == hashlib.sha256(data).hexdigest() + ".png"
        assert os.path.dirname(path) == str(tmp_path / "img")
        assert np.array_equal(np.asarray(Image.open(path)), np.asarray(draw([prompt], [seed])[0]))
    assert sorted(os.listdir(tmp_path / "img")) == sorted(os.path.basename(r[3]) for r in stored)


def test_a_scorer_added_later_scores_the_saved_images_without_generating(tmp_path, callables, bright, red):
    gens, counters = callables
    store = tmp_path / "run.sqlite"
    collect(PROMPTS, gens, [bright], store, seeds=2, batch_size=4, progress=False, save_images=tmp_path / "img")
    calls = {name: c.calls for name, c in counters.items()}
    summary = collect(
        PROMPTS, gens, [bright, red], store, seeds=2, batch_size=4, progress=False, save_images=tmp_path / "img"
    )
    assert {name: c.calls for name, c in counters.items()} == calls  # no generator called
    assert (summary.images_generated, summary.images_rescored, summary.cells_written) == (0, 20, 20)
    assert summary.cells_before == 20 and summary.complete
    got = {(p, g, s): v for p, g, _, s, seed, _, _, scorer, v in rows(store) if scorer == "red"}
    for (p, g, s), value in got.items():
        image = draw([p], [image_seed_for(s, p, g)])[0]
        assert value == red.score([p], [image], progress=False)[0]
    assert len(got) == 20 and integrity(store)["partial_images"] == 0


def test_a_scorer_added_to_unsaved_images_says_they_must_be_generated_again(tmp_path, callables, bright, red):
    gens, counters = callables
    store = tmp_path / "run.sqlite"
    collect(PROMPTS[:3], gens, [bright], store, seeds=1, progress=False)
    images = counters["cheap"].images + counters["dear"].images
    with pytest.raises(
        ValueError,
        match=r"lack scores \(6 for scorer 'red'\) and cannot be read: 6 were not saved "
        r"\(collect ran without save_images\)\. Pass regenerate=True \(`--regenerate`\)",
    ):
        collect(PROMPTS[:3], gens, [bright, red], store, seeds=1, progress=False)
    assert counters["cheap"].images + counters["dear"].images == images
    summary = collect(
        PROMPTS[:3], gens, [bright, red], store, seeds=1, progress=False, regenerate=True, save_images=tmp_path / "img"
    )
    assert counters["cheap"].images + counters["dear"].images == images + 6
    assert (summary.images_generated, summary.cells_written) == (6, 6)
    stored = rows(store)
    assert len(stored) == 12 and all(path is not None for *_, path, _, _ in stored)
    assert integrity(store)["images"] == 6


def test_changed_settings_make_a_new_generator_and_never_mix_with_the_old_rows(tmp_path, bright):
    draw_fn = Counting()
    old = CallableGenerator("g", draw_fn, cost=1.0, steps=2)
    new = old.clone(steps=4)
    store = tmp_path / "run.sqlite"
    collect(PROMPTS[:2], [old], [bright], store, progress=False)
    before = rows(store)
    summary = collect(PROMPTS[:2], [new], [bright], store, progress=False)
    assert summary.images_generated == 2 and summary.cells_before == 0
    after = rows(store)
    assert before < after and len(after) == 4
    assert {r[2] for r in after} == {generator_key(old), generator_key(new)}
    assert generator_key(old) != generator_key(new)
    with sqlite3.connect(store) as conn:
        settings = dict(conn.execute("SELECT key, settings FROM generators"))
    assert '"steps": 4' in settings[generator_key(new)] and '"steps": 2' in settings[generator_key(old)]


def test_generator_keys_hash_what_changes_the_images():
    spec = GeneratorSpec("g", cost=1.0, steps=20, guidance_scale=7.5)
    assert generator_key(spec) == generator_key(spec.clone())
    assert generator_key(spec) != generator_key(spec.clone(steps=21))
    assert generator_key(spec) != generator_key(spec.clone(cost=2.0))
    assert generator_key(spec) != generator_key(spec.clone(name="h"))
    assert generator_key(spec) == generator_key(spec.clone(device="cuda:1"))  # where it runs is not what it makes
    assert generator_key(CallableGenerator("g", draw, cost=1.0)) != generator_key(
        CallableGenerator("g", brightness, cost=1.0)
    )
    assert scorer_key(CallableScorer("s", brightness, cost=0.0)) == scorer_key(
        CallableScorer("s", brightness, cost=0.0, batch_size=4)
    )
    assert scorer_key(CallableScorer("s", brightness, cost=0.0)) != scorer_key(
        CallableScorer("t", brightness, cost=0.0)
    )
    with pytest.raises(TypeError, match="changes from one process to the next"):
        generator_key(GeneratorSpec("g", cost=1.0, thing=object()))


def test_diffusers_generator_keys_follow_steps_and_model_but_not_device(tiny_sd):
    a = DiffusersGenerator("sd", tiny_sd, steps=2)
    assert generator_key(a) == generator_key(DiffusersGenerator("sd", tiny_sd, steps=2, device="cpu"))
    assert generator_key(a) != generator_key(DiffusersGenerator("sd", tiny_sd, steps=3))
    assert generator_key(a) != generator_key(DiffusersGenerator("sd", tiny_sd, steps=2, guidance_scale=1.0))
    # a counted cost follows from the settings and stays out of the key; a given one is in it
    assert generator_identity(a)["cost"] is None and a.cost > 0
    assert generator_key(a) != generator_key(DiffusersGenerator("sd", tiny_sd, steps=2, cost=a.cost))


def test_failed_images_are_reported_left_out_and_retried_by_the_next_run(tmp_path, bright):
    flaky = Counting(fail_on="zebra")
    gens = [CallableGenerator("flaky", flaky, cost=1.0), CallableGenerator("ok", Counting(), cost=1.0)]
    store = tmp_path / "run.sqlite"
    with pytest.warns(RuntimeWarning, match=r"2 image\(s\) failed.*run collect again"):
        summary = collect(PROMPTS, gens, [bright], store, seeds=2, batch_size=5, progress=False)
    assert set(summary.failures) == {("zebra 42", "flaky", 0), ("zebra 42", "flaky", 1)}
    assert "instead of an image" in summary.failures[("zebra 42", "flaky", 0)]
    assert not summary.complete and summary.cells_missing == 2 and integrity(store)["images"] == 18
    flaky.fail_on = None  # the content filter lets it through now
    images = flaky.images
    summary = collect(PROMPTS, gens, [bright], store, seeds=2, batch_size=5, progress=False)
    assert summary.complete and summary.images_generated == 2 and flaky.images - images == 2


class _FailsToLoad:
    def load(self):
        raise OSError("no weights here")

    def __call__(self, prompts, seeds):  # pragma: no cover - never reached
        raise AssertionError("called after a failed load")


def test_a_generator_that_fails_to_load_fails_its_cells_only(tmp_path, bright):
    gens = [CallableGenerator("broken", _FailsToLoad(), cost=1.0), CallableGenerator("ok", Counting(), cost=1.0)]
    with pytest.warns(RuntimeWarning, match="failed"):
        summary = collect(PROMPTS[:3], gens, [bright], tmp_path / "run.sqlite", batch_size=2, progress=False)
    assert len(summary.failures) == 3
    assert all("failed to load: OSError: no weights here" in why for why in summary.failures.values())
    assert {r[1] for r in rows(tmp_path / "run.sqlite")} == {"ok"}


def test_a_scorer_that_raises_stops_the_run_and_keeps_the_finished_batches(tmp_path, callables, bright):
    gens, _ = callables
    calls = []

    def judge(prompts, images):
        calls.append(len(prompts))
        if len(calls) == 3:
            raise RuntimeError("judge is down")
        return [1.0] * len(prompts)

    store = tmp_path / "run.sqlite"
    with pytest.raises(RuntimeError, match="judge is down") as info:
        collect(PROMPTS[:4], gens, [CallableScorer("judge", judge, cost=0.0)], store, batch_size=2, progress=False)
    assert any("scorer 'judge'" in note and "resumes" in note for note in info.value.__notes__)
    assert integrity(store)["images"] == 4 and integrity(store)["partial_images"] == 0
    assert pipeline_cache.max_loaded == 2  # the local backend restores the cache bound


def test_progress_bar_shows_cells_rate_and_images_per_second(tmp_path, callables, bright, capsys):
    gens, _ = callables
    collect(PROMPTS[:2], gens, [bright], tmp_path / "run.sqlite", seeds=2, progress=True)
    err = capsys.readouterr().err
    assert "collect" in err and "8/8" in err and "img/s=" in err and "cell/s" in err
    collect(PROMPTS[:2], gens, [bright], tmp_path / "quiet.sqlite", seeds=2, progress=False)
    assert capsys.readouterr().err == ""


class _Recording(Backend):
    """A backend that runs units on a LocalBackend and records them (the seam other backends use)."""

    def __init__(self):
        self.units = []

    def run(self, units):
        units = list(units)
        self.units += units
        yield from reversed(list(LocalBackend().run(units)))  # results may come back in any order


def test_a_backend_gets_units_and_the_driver_writes_their_results_in_any_order(tmp_path, callables, bright):
    gens, _ = callables
    backend = _Recording()
    collect(PROMPTS, gens, [bright], tmp_path / "a.sqlite", seeds=2, batch_size=3, backend=backend, progress=False)
    collect(PROMPTS, gens, [bright], tmp_path / "b.sqlite", seeds=2, batch_size=3, progress=False)
    assert rows(tmp_path / "a.sqlite") == rows(tmp_path / "b.sqlite")
    assert [len(u) for u in backend.units] == [3, 3, 3, 1] * 2
    assert all(u.generator.name == ("cheap" if i < 4 else "dear") for i, u in enumerate(backend.units))


class _Liar(Backend):
    def run(self, units):
        for unit in units:
            yield UnitResult(unit.id, failures={len(unit): "out of range"})


def test_a_malformed_backend_result_is_refused_before_it_is_written(tmp_path, callables, bright):
    gens, _ = callables
    with pytest.raises(RuntimeError, match=r"failure at position 2, outside \[0, 2\)"):
        collect(PROMPTS[:2], gens, [bright], tmp_path / "run.sqlite", backend=_Liar(), progress=False)
    assert integrity(tmp_path / "run.sqlite")["images"] == 0


def test_the_store_refuses_duplicates_even_from_another_writer(tmp_path, callables, bright):
    gens, _ = callables
    store = tmp_path / "run.sqlite"
    collect(PROMPTS[:1], gens[:1], [bright], store, progress=False)
    with sqlite3.connect(store) as conn, pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        conn.execute(
            "INSERT INTO images (prompt_id, generator_id, seed_index, seed, cost, seconds) "
            "SELECT prompt_id, generator_id, seed_index, 1, 1.0, 1.0 FROM images"
        )
    with CollectionStore(store) as db:
        from costroute.collect._store import NewImage

        image = db.query("SELECT prompt_id, generator_id, seed_index FROM images")[0]
        assert db.write([NewImage(*image, seed=1, cost=1.0, seconds=1.0, path=None, scores=[(1, 9.0, 0.0)])]) == (0, 0)
    assert integrity(store)["images"] == 1 and integrity(store)["scores"] == 1


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"prompts": "a cat"}, TypeError, "single str 'a cat'; wrap it in a list"),
        ({"prompts": []}, ValueError, "prompts is empty"),
        ({"prompts": ["a", 3]}, TypeError, r"prompts\[1\] must be a str, got int"),
        ({"prompts": ["a", "b", "a"]}, ValueError, r"1 duplicate\(s\), e.g. \['a'\].*dict.fromkeys"),
        ({"generators": [GeneratorSpec("plain", 1.0)]}, TypeError, "a plain GeneratorSpec 'plain'"),
        ({"generators": CallableGenerator("g", draw, cost=1.0)}, TypeError, "single CallableGenerator 'g'; wrap it"),
        (
            {
                "generators": [
                    CallableGenerator("g", draw, cost=1.0),
                    CallableGenerator("h", draw, cost=1.0, cost_unit="flops"),
                ]
            },
            ValueError,
            "share one cost_unit",
        ),
        ({"generators": [CallableGenerator("g", draw, cost=1.0)] * 2}, ValueError, "unique; duplicated: \\['g'\\]"),
        ({"scorers": []}, ValueError, "scorers is empty"),
        ({"scorers": [brightness]}, TypeError, "wrap a function with CallableScorer"),
        ({"scorers": [CallableScorer("s", brightness, cost=0.0)] * 2}, ValueError, r"duplicated: \['s'\]"),
        ({"seeds": 0}, ValueError, "seeds must be a number of seeds >= 1"),
        ({"seeds": True}, TypeError, "seeds must be a number of seeds >= 1 or a list"),
        ({"seeds": [0, 0]}, ValueError, "distinct"),
        ({"seeds": [-1]}, ValueError, "seed indices must be integers >= 0, got -1"),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive integer, got 0"),
        (
            {"backend": "nope"},
            ValueError,
            r"backend must be one of \['local', 'ray'\] or a costroute.collect.Backend instance, got 'nope'",
        ),
        ({"progress": "no"}, TypeError, "progress must be True or False, got 'no'"),
        ({"store": 3}, TypeError, "store must be the path of an SQLite file"),
    ],
)
def test_bad_arguments_raise_before_anything_is_written(tmp_path, kwargs, error, match):
    args = {
        "prompts": ["a cat"],
        "generators": [CallableGenerator("g", draw, cost=1.0)],
        "scorers": [CallableScorer("s", brightness, cost=0.0)],
        "store": tmp_path / "run.sqlite",
        "progress": False,
        **kwargs,
    }
    with pytest.raises(error, match=match):
        collect(**args)
    assert not os.path.exists(tmp_path / "run.sqlite")


def test_bad_stores_and_image_folders_are_named(tmp_path, callables, bright):
    gens, _ = callables
    with pytest.raises(ValueError, match="folder of store=.* does not exist; create"):
        collect(["a"], gens, [bright], tmp_path / "missing" / "run.sqlite", progress=False)
    with pytest.raises(ValueError, match="is a folder; pass the path of an SQLite file"):
        collect(["a"], gens, [bright], tmp_path, progress=False)
    (tmp_path / "notes.txt").write_text("not a database at all, just some text that is long enough " * 20)
    with pytest.raises(ValueError, match="is not a costroute collection store"):
        collect(["a"], gens, [bright], tmp_path / "notes.txt", progress=False)
    with sqlite3.connect(tmp_path / "other.sqlite") as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    with pytest.raises(ValueError, match=r"SQLite database of something else \(tables \['users'\]\)"):
        collect(["a"], gens, [bright], tmp_path / "other.sqlite", progress=False)
    (tmp_path / "file.png").write_text("x")
    with pytest.raises(ValueError, match="save_images=.* is a file; pass a folder"):
        collect(["a"], gens, [bright], tmp_path / "run.sqlite", progress=False, save_images=tmp_path / "file.png")
