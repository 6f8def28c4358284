"""Two collect runs on one store: the second is told about the first (a live process), never about a killed one."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import warnings

import pytest

from costroute.collect import collect
from costroute.collect._lease import ConcurrentWriterWarning, lock_path

from ._helpers import PROMPTS, integrity, wait_for_images

# a real collect run in another process, slow enough to be caught mid-run: one image per batch, 0.4 s each
SLOW_RUN = """
import sys, time
import numpy as np
from PIL import Image
from costroute.collect import collect
from costroute.generators import CallableGenerator
from costroute.scoring import CallableScorer

def slow(prompts, seeds):
    time.sleep(0.4)
    return [Image.fromarray(np.full((8, 8, 3), seed % 256, dtype=np.uint8)) for seed in seeds]

def mean(prompts, images):
    return [float(np.asarray(im).mean()) for im in images]

prompts = [f"prompt {i}" for i in range(int(sys.argv[2]))]
collect(prompts, [CallableGenerator("slow", slow, cost=1.0)], [CallableScorer("mean", mean, cost=0.0)], sys.argv[1],
        batch_size=1, progress=False)
"""


def start(store, n_prompts):
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_RUN, str(store), str(n_prompts)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_a_second_run_on_a_store_in_use_warns_naming_the_first(tmp_path, callables, bright):
    gens, _ = callables
    store = tmp_path / "run.sqlite"
    first = start(store, 40)
    try:
        wait_for_images(store, 1, first, lambda: first.stderr.read().decode()[-2000:])
        with pytest.warns(
            ConcurrentWriterWarning,
            match=rf"another collect run \(process {first.pid} on host "
            rf"{socket.gethostname()!r}, started .*\) is writing to the store '.*run\.sqlite'\. "
            r"Both runs generate every image still missing, so that work is paid for twice",
        ):
            summary = collect(PROMPTS, gens, [bright], store, progress=False)
        assert summary.complete
    finally:
        first.kill()
        first.wait(timeout=30)
    # once the first run has ended, nobody holds the lock: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        collect(PROMPTS, gens, [bright], store, progress=False)


def test_a_run_killed_with_sigkill_never_blocks_or_warns_the_next(tmp_path):
    store = tmp_path / "run.sqlite"
    killed = start(store, 40)
    try:
        wait_for_images(store, 2, killed, lambda: killed.stderr.read().decode()[-2000:])
        assert str(killed.pid) in open(lock_path(str(store))).read()  # the lock names the run holding it
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
    finally:
        if killed.poll() is None:
            killed.kill()
    assert killed.returncode == -signal.SIGKILL
    n = integrity(store)["images"]
    assert 2 <= n < 40
    # the next run takes over the store at once (its lock is free), without a warning, and finishes it
    again = start(store, n + 2)  # the stored prompts and two more: two images to make
    out = again.communicate(timeout=120)[1].decode()
    assert again.returncode == 0 and "ConcurrentWriterWarning" not in out, out
    assert integrity(store)["images"] == n + 2


def test_the_command_warns_of_another_writer_while_it_runs(tmp_path, tiny_sd, tiny_clip):
    """The warning reaches the terminal while the second command is still generating, not after it."""
    store = tmp_path / "run.sqlite"
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"a red cat number {i}\n" for i in range(60)))
    first = start(store, 40)
    second = None
    try:
        wait_for_images(store, 1, first, lambda: first.stderr.read().decode()[-2000:])
        second = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "costroute.cli",
                "collect",
                str(prompts),
                "--generators",
                f"t=diffusers:{tiny_sd}:8",
                "--scorer",
                f"clip:{tiny_clip}",
                "--store",
                str(store),
                "--batch-size",
                "1",
                "-q",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        lines = []
        while len(lines) < 20 and not any("warning: another collect run" in line for line in lines):
            lines.append(second.stderr.readline())
        assert f"process {first.pid}" in lines[-1], lines
        with sqlite3.connect(store) as db:
            made = db.execute(
                "SELECT COUNT(*) FROM images i JOIN generators g ON g.id = i.generator_id WHERE g.name = 't'"
            ).fetchone()[0]
        assert made < 60  # told while its own run was still generating, not after it
    finally:
        for process in (first, second):
            if process is not None:
                process.kill()
                process.wait(timeout=30)
