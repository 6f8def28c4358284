"""Resuming: a run stopped after any number of batches, or killed with SIGKILL, then run again, gives the rows
of one uninterrupted run -- no duplicate, no partial row, byte-identical scores."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costroute.cli import main
from costroute.collect import LocalBackend, collect
from costroute.generators import CallableGenerator, DiffusersGenerator
from costroute.scoring import CallableScorer, CLIPScorer

from ._helpers import PROMPTS, brightness, draw, integrity, rows, wait_for_images


class Interrupting:
    """A function that behaves like ``fn`` but raises KeyboardInterrupt (Ctrl-C) on its call number ``stop``."""

    def __init__(self, fn, stop=None):
        self.fn, self.stop, self.calls = fn, stop, 0

    def __call__(self, *args):
        self.calls += 1
        if self.calls == self.stop:
            raise KeyboardInterrupt
        return self.fn(*args)


def _run(folder: Path, name: str, batch_size: int, seeds: int, stop_generator=None, stop_scorer=None):
    gens = [
        CallableGenerator(g, Interrupting(draw, stop_generator if g == "b" else None), cost=c)
        for g, c in (("a", 1.0), ("b", 3.0))
    ]
    scorers = [CallableScorer("bright", Interrupting(brightness, stop_scorer), cost=0.0)]
    return collect(PROMPTS, gens, scorers, folder / name, seeds=seeds, batch_size=batch_size, progress=False)


@settings(max_examples=25, deadline=None)
@given(
    batch_size=st.integers(1, 4),
    seeds=st.integers(1, 2),
    where=st.sampled_from(["generator", "scorer"]),
    stop=st.integers(1, 12),
)
def test_a_run_interrupted_anywhere_then_rerun_equals_one_uninterrupted_run(batch_size, seeds, where, stop):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _run(folder, "reference.sqlite", batch_size, seeds)
        per_generator = math.ceil(len(PROMPTS) * seeds / batch_size)
        sizes = [min(batch_size, len(PROMPTS) * seeds - k * batch_size) for k in range(per_generator)] * 2
        kwargs = {"stop_generator": stop} if where == "generator" else {"stop_scorer": stop}
        # generator "b" makes units per_generator.. of the run; the scorer sees every unit
        unit = (per_generator if where == "generator" else 0) + stop - 1
        stored = sum(sizes[:unit])
        if unit < len(sizes):
            with pytest.raises(KeyboardInterrupt):
                _run(folder, "resumed.sqlite", batch_size, seeds, **kwargs)
            # exactly the units finished before the interrupted one are stored, and nothing of it
            assert integrity(folder / "resumed.sqlite") == {
                "images": stored,
                "scores": stored,
                "duplicate_images": 0,
                "duplicate_scores": 0,
                "partial_images": 0,
                "dangling_scores": 0,
            }
        else:
            _run(folder, "resumed.sqlite", batch_size, seeds, **kwargs)
        summary = _run(folder, "resumed.sqlite", batch_size, seeds)
        # the rerun makes exactly the missing images
        assert summary.complete and summary.cells_before == stored
        assert summary.images_generated == sum(sizes) - stored
        assert rows(folder / "resumed.sqlite") == rows(folder / "reference.sqlite")


class StopAfter(LocalBackend):
    """The local backend, stopped (as by Ctrl-C) once ``k`` results were handed over: the next unit is lost."""

    def __init__(self, k):
        self.k = k

    def run(self, units):
        for i, result in enumerate(super().run(units)):
            if i == self.k:
                raise KeyboardInterrupt
            yield result


@pytest.mark.parametrize("k", [0, 2, 5])
def test_tiny_pipelines_stopped_after_k_batches_resume_to_byte_identical_scores(tmp_path, tiny_sd, tiny_clip, k):
    def run(name, backend="local"):
        gens = [DiffusersGenerator("two", tiny_sd, steps=2), DiffusersGenerator("three", tiny_sd, steps=3)]
        return collect(
            PROMPTS[:4],
            gens,
            [CLIPScorer(tiny_clip)],
            tmp_path / name,
            seeds=2,
            batch_size=3,
            backend=backend,
            progress=False,
        )

    run("reference.sqlite")
    with pytest.raises(KeyboardInterrupt):
        run("resumed.sqlite", StopAfter(k))
    sizes = [3, 3, 2] * 2
    assert integrity(tmp_path / "resumed.sqlite")["images"] == sum(sizes[:k])
    summary = run("resumed.sqlite")
    assert summary.cells_before == sum(sizes[:k]) and summary.complete
    assert summary.images_generated == 16 - sum(sizes[:k])
    reference, resumed = rows(tmp_path / "reference.sqlite"), rows(tmp_path / "resumed.sqlite")
    assert len(reference) == 16 and resumed == reference  # float scores compared exactly


def test_a_collection_killed_with_sigkill_mid_run_resumes_without_duplicates_or_partial_rows(
    tmp_path, tiny_sd, tiny_clip, capsys
):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(f"prompt number {i}" for i in range(10)) + "\n")
    store, images = tmp_path / "run.sqlite", tmp_path / "images"
    args = [
        "collect",
        str(prompts),
        "--generators",
        f"two=diffusers:{tiny_sd}:2",
        f"four=diffusers:{tiny_sd}:4",
        "--scorer",
        f"clip:{tiny_clip}",
        "--store",
        str(store),
        "--seeds",
        "2",
        "--batch-size",
        "2",
        "--save-images",
        str(images),
        "-q",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "costroute.cli", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_for_images(
            store, 4, process, lambda: process.stderr.read().decode()[-2000:], timeout=120.0
        )  # two batches committed
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    killed = integrity(store)
    assert 4 <= killed["images"] < 40  # killed part-way
    assert killed == {
        "images": killed["images"],
        "scores": killed["images"],
        "duplicate_images": 0,
        "duplicate_scores": 0,
        "partial_images": 0,
        "dangling_scores": 0,
    }
    assert killed["images"] % 2 == 0  # whole batches only
    before = rows(store)
    # the rerun (same command, here with its summary) makes the missing images only and keeps what was there
    assert main(args[:-1]) == 0
    assert (
        f"{40 - killed['images']} cells written ({40 - killed['images']} images generated, 0 saved images "
        f"scored again), {killed['images']} already in the store, 0 missing, of 40"
    ) in capsys.readouterr().err
    after = integrity(store)
    assert after == {
        "images": 40,
        "scores": 40,
        "duplicate_images": 0,
        "duplicate_scores": 0,
        "partial_images": 0,
        "dangling_scores": 0,
    }
    assert before <= rows(store)
    with sqlite3.connect(store) as conn:
        cells = set(
            conn.execute(
                "SELECT p.text, g.name, i.seed_index FROM images i JOIN prompts p ON p.id = "
                "i.prompt_id JOIN generators g ON g.id = i.generator_id"
            )
        )
        paths = [r[0] for r in conn.execute("SELECT path FROM images")]
    assert cells == {(f"prompt number {i}", g, s) for i in range(10) for g in ("two", "four") for s in (0, 1)}
    # every saved file is whole: its name is the hash of its bytes, and it opens
    import hashlib

    from PIL import Image

    for path in paths:
        data = Path(path).read_bytes()
        assert Path(path).name == hashlib.sha256(data).hexdigest() + ".png"
        assert Image.open(path).size == (64, 64)
