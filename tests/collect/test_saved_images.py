"""Saved images on resume: a deleted PNG is made again when asked and named otherwise; a stored path outside the
images folder is reported and never opened."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import warnings

import pytest

from costroute.collect import collect

from ._helpers import PROMPTS, integrity, rows


def paths_of(store) -> dict[int, str]:
    with sqlite3.connect(store) as conn:
        return dict(conn.execute("SELECT id, path FROM images ORDER BY id"))


def test_a_deleted_png_of_a_scored_image_is_named_then_made_again_with_regenerate(tmp_path, callables, bright, red):
    gens, counters = callables
    store, folder = tmp_path / "run.sqlite", tmp_path / "img"
    run = dict(seeds=1, progress=False, save_images=folder)
    collect(PROMPTS[:3], gens, [bright], store, **run)
    before, paths = rows(store), paths_of(store)
    gone = paths[2]
    content = open(gone, "rb").read()
    os.remove(gone)
    made = counters["cheap"].images + counters["dear"].images
    # without regenerate: a warning naming the file and the flag, nothing generated, nothing changed
    with pytest.warns(
        RuntimeWarning,
        match=rf"1 saved image file\(s\) recorded in the store .* are missing: "
        rf"{re.escape(repr(gone))}\. Their scores are kept.*regenerate=True "
        r"\(`--regenerate`\)",
    ):
        summary = collect(PROMPTS[:3], gens, [bright], store, **run)
    assert (summary.images_generated, summary.cells_written) == (0, 0) and summary.complete
    assert counters["cheap"].images + counters["dear"].images == made and rows(store) == before
    # with regenerate: only that image is made again, saved under its hash, the stored scores unchanged
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = collect(PROMPTS[:3], gens, [bright], store, regenerate=True, **run)
    assert (summary.images_generated, summary.cells_written) == (1, 0)
    assert counters["cheap"].images + counters["dear"].images == made + 1
    assert open(gone, "rb").read() == content and paths_of(store) == paths and rows(store) == before
    # a scorer added now scores every saved image, without generating any
    summary = collect(PROMPTS[:3], gens, [bright, red], store, **run)
    assert (summary.images_generated, summary.images_rescored, summary.cells_written) == (0, 6, 6)
    assert integrity(store)["partial_images"] == 0


def test_a_deleted_png_that_a_new_scorer_needs_is_an_error_naming_it_unless_regenerate(
    tmp_path, callables, bright, red
):
    gens, counters = callables
    store, folder = tmp_path / "run.sqlite", tmp_path / "img"
    run = dict(seeds=1, progress=False, save_images=folder)
    collect(PROMPTS[:3], gens, [bright], store, **run)
    paths = paths_of(store)
    os.remove(paths[4])
    # a file recorded under another name, gone too (a generator that is not bit-exact saves under a new hash)
    os.rename(paths[5], folder / "renamed.png")
    with sqlite3.connect(store) as conn:
        conn.execute("UPDATE images SET path = ? WHERE id = 5", (str(folder / "old-name.png"),))
    made = counters["cheap"].images + counters["dear"].images
    with pytest.raises(
        ValueError,
        match=rf"lack scores \(2 for scorer 'red'\) and cannot be read: 2 saved file\(s\) "
        rf"are missing \({re.escape(repr(paths[4]))}, '.*old-name\.png'\)\. Pass "
        r"regenerate=True \(`--regenerate`\)",
    ):
        collect(PROMPTS[:3], gens, [bright, red], store, **run)
    assert counters["cheap"].images + counters["dear"].images == made
    summary = collect(PROMPTS[:3], gens, [bright, red], store, regenerate=True, **run)
    assert (summary.images_generated, summary.images_rescored, summary.cells_written) == (2, 4, 6)
    assert summary.complete and integrity(store)["partial_images"] == 0
    # the store records the files just saved, which exist
    assert paths_of(store) == paths and os.path.isfile(paths[4]) and os.path.isfile(paths[5])


def test_a_saved_image_store_read_without_save_images_says_which_folder_to_pass(tmp_path, callables, bright, red):
    gens, counters = callables
    store = tmp_path / "run.sqlite"
    collect(PROMPTS[:2], gens, [bright], store, progress=False, save_images=tmp_path / "img")
    with pytest.raises(
        ValueError,
        match=r"4 were saved \(e\.g\. '.*img.*\.png'\) but save_images is not given; pass "
        r"save_images=FOLDER \(`--save-images FOLDER`\), the folder they are in",
    ):
        collect(PROMPTS[:2], gens, [bright, red], store, progress=False)


def test_stored_paths_outside_the_images_folder_are_reported_and_never_opened(tmp_path, callables, bright, red):
    gens, counters = callables
    store, folder = tmp_path / "run.sqlite", tmp_path / "img"
    collect(PROMPTS[:3], gens, [bright], store, progress=False, save_images=folder)
    paths = paths_of(store)
    # three valid PNGs that lie outside the folder: an absolute path, a relative escape, a symbolic link
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for name, image_id in (("abs.png", 1), ("rel.png", 2), ("linked.png", 3)):
        shutil.copy(paths[image_id], outside / name)
    os.symlink(outside / "linked.png", folder / "link.png")
    edits = {1: str(outside / "abs.png"), 2: "../elsewhere/rel.png", 3: str(folder / "link.png")}
    with sqlite3.connect(store) as conn:
        for image_id, path in edits.items():
            conn.execute("UPDATE images SET path = ? WHERE id = ?", (path, image_id))
    with pytest.warns(RuntimeWarning) as caught:
        summary = collect(PROMPTS[:3], gens, [bright, red], store, progress=False, save_images=folder)
    message = " ".join(str(w.message) for w in caught)
    assert "records 3 saved image path(s) outside the save_images folder" in message
    for image_id, path in edits.items():
        assert re.search(
            rf"image {image_id} \('[^']+', generator '(cheap|dear)', seed 0\): {re.escape(repr(path))}", message
        )
    assert "They were not opened, and those cells were skipped" in message
    # the three cells were skipped: no score for them, and nothing was generated instead
    assert (summary.images_generated, summary.images_rescored, summary.cells_written) == (0, 3, 3)
    assert summary.cells_missing == 3
    with sqlite3.connect(store) as conn:
        unscored = {
            r[0]
            for r in conn.execute(
                "SELECT id FROM images WHERE id NOT IN (SELECT image_id FROM scores "
                "WHERE scorer_id = (SELECT id FROM scorers WHERE name = 'red'))"
            )
        }
    assert unscored == {1, 2, 3}
