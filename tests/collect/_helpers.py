"""Generators and scorers made of plain functions, and store inspection helpers, for the collection tests."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

PROMPTS = ["a red cat", "two blue dogs", "zebra 42", "a tree at dusk", "an empty room"]


def draw(prompts, seeds):
    """Images that depend on the seed and the prompt: an 8x8 RGB noise field."""
    out = []
    for prompt, seed in zip(prompts, seeds):
        rng = np.random.default_rng([seed, len(prompt)])
        out.append(Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)))
    return out


class Counting:
    """``draw``, counting its calls and images; ``fail_on`` prompts get no image (None) while ``failing``."""

    def __init__(self, fail_on: str | None = None):
        self.calls = 0
        self.images = 0
        self.fail_on = fail_on

    def __call__(self, prompts, seeds):
        self.calls += 1
        self.images += len(prompts)
        images = draw(prompts, seeds)
        return [None if self.fail_on and self.fail_on in p else im for p, im in zip(prompts, images)]


def brightness(prompts, images):
    """Mean pixel value in [0, 1] plus a small prompt-length term: a real function of each image."""
    return [float(np.asarray(im, dtype=float).mean() / 255 + len(p) / 1000) for p, im in zip(prompts, images)]


def redness(prompts, images):
    return [float(np.asarray(im.convert("RGB"), dtype=float)[..., 0].mean() / 255) for im in images]


def rows(path) -> set[tuple]:
    """Every stored cell without ids or timings: (prompt, generator, key, seed index, seed, cost, path, scorer,
    value)."""
    with sqlite3.connect(path) as conn:
        return set(
            conn.execute(
                "SELECT p.text, g.name, g.key, i.seed_index, i.seed, i.cost, i.path, sc.name, s.value "
                "FROM scores s JOIN images i ON i.id = s.image_id JOIN prompts p ON p.id = i.prompt_id "
                "JOIN generators g ON g.id = i.generator_id JOIN scorers sc ON sc.id = s.scorer_id"
            ).fetchall()
        )


def integrity(path) -> dict[str, int]:
    """Counts of the store's rows and of its defects (duplicates, images missing a score, dangling scores)."""
    with sqlite3.connect(path) as conn:
        q = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        assert q("PRAGMA integrity_check") == "ok"
        n_scorers = q("SELECT COUNT(*) FROM scorers")
        return {
            "images": q("SELECT COUNT(*) FROM images"),
            "scores": q("SELECT COUNT(*) FROM scores"),
            "duplicate_images": q(
                "SELECT COUNT(*) FROM (SELECT 1 FROM images GROUP BY prompt_id, generator_id, "
                "seed_index HAVING COUNT(*) > 1)"
            ),
            "duplicate_scores": q(
                "SELECT COUNT(*) FROM (SELECT 1 FROM scores GROUP BY image_id, scorer_id HAVING COUNT(*) > 1)"
            ),
            "partial_images": q(
                f"SELECT COUNT(*) FROM images i WHERE (SELECT COUNT(*) FROM scores s "
                f"WHERE s.image_id = i.id) != {n_scorers}"
            ),
            "dangling_scores": q("SELECT COUNT(*) FROM scores WHERE image_id NOT IN (SELECT id FROM images)"),
        }


def wait_for_images(
    store: Path, at_least: int, process: subprocess.Popen, output: Callable[[], str], timeout: float = 180.0
) -> int:
    """Wait until ``store`` holds ``at_least`` committed images; fail if ``process`` ends first.

    ``output`` returns the tail of the process's output, for the failure message.
    """
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            pytest.fail(f"the collection ended (status {process.returncode}) before it could be killed: {output()}")
        if store.exists():
            try:
                with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as conn:
                    n = conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
            except sqlite3.OperationalError:  # tables not created yet
                n = 0
            if n >= at_least:
                return n
        time.sleep(0.01)
    pytest.fail(f"no batch was committed in time: {output()}")
