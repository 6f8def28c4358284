"""``costroute serve --demo`` and :func:`costroute.serve.build_demo`: a cascade of tiny offline models, fitted on the spot.

The process test starts the real command on a free loopback port and times it from launch to
the line that prints the page's URL (the budget is ~30 s on 2 CPU cores; it takes about 7).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from costroute.cli import main
from costroute.serve import DEMO_PROMPTS, build_demo

from ._helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}


def test_build_demo_names_a_bad_argument(tmp_path):
    with pytest.raises(ValueError, match="folder must be an existing folder"):
        build_demo(tmp_path / "missing")
    with pytest.raises(ValueError, match="seeds must be an integer >= 1"):
        build_demo(tmp_path, seeds=0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--demo", "router.skops"], "takes no ROUTER (got 'router.skops')"),
        (["serve"], "or --demo to try the playground"),
        (["serve", "--demo", "--scorer", "clip"], "drop --scorer"),
    ],
)
def test_demo_or_a_router_exactly_one(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: costroute serve") and message in err


def test_serve_demo_builds_serves_the_page_and_cleans_up():
    port = free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "costroute.cli", "serve", "--demo", "--port", str(port), "--seed", "0"],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        line = proc.stdout.readline()  # printed once the server accepts requests
        ready = time.monotonic() - started
        assert f"open {url} (the playground)" in line, (line, proc.poll())
        assert ready < 60, f"the demo took {ready:.1f} s to start"
        page = httpx.get(url, timeout=10)
        assert page.status_code == 200 and "costroute playground" in page.text
        body = {"prompt": DEMO_PROMPTS[0], "costroute": {"seed": 1, "candidates": True}}
        answer = httpx.post(f"{url}v1/images/generations", json=body, timeout=60)
        assert answer.status_code == 200, answer.text
        ext = answer.json()["data"][0]["costroute"]
        assert ext["candidates"] and {c["generator"] for c in ext["candidates"]} <= {"sd-2steps", "sd-8steps"}
        assert set(ext["candidates"][0]["scores"]) == {"check"}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, -signal.SIGTERM), err[-2000:]  # uvicorn re-raises SIGTERM after its shutdown
    folder = re.search(r"building the demo in '([^']+)'", err).group(1)
    assert "fitted a cascade over sd-2steps, sd-8steps on 16 prompts" in err
    assert not os.path.exists(folder)  # the temporary models and store are gone
