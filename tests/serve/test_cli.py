"""``costroute serve`` as a real process: refusals before anything starts, and SIGTERM with requests in flight."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from costroute.io import save

from ._helpers import free_port, make_router, slow_draw

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
TRUST = f"{slow_draw.__module__}.slow_draw"


@pytest.fixture(scope="module")
def saved_router(tmp_path_factory):
    """A saved router over generators that take 0.4 s per call (their function, by import path)."""
    path = tmp_path_factory.mktemp("router") / "router.skops"
    save(make_router([slow_draw] * 3), path)
    return path


def serve(*args, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "costroute.cli", "serve", *map(str, args)],
        env=env or ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_without_a_key_it_refuses_a_host_other_than_loopback(saved_router):
    proc = serve(saved_router, "--host", "0.0.0.0", "--trust", TRUST)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "without an API key" in err and "--api-key-env" in err
    proc = serve(saved_router, "--api-key-env", "COSTROUTE_TEST_NO_SUCH_VAR", "--trust", TRUST)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "COSTROUTE_TEST_NO_SUCH_VAR" in err and "unset or empty" in err


def test_sigterm_finishes_the_requests_in_flight_and_stores_exactly_them(saved_router, tmp_path):
    store, port = tmp_path / "served.sqlite", free_port()
    env = {**ENV, "COSTROUTE_TEST_KEY": "k3y"}
    proc = serve(
        saved_router,
        "--port",
        port,
        "--store",
        store,
        "--trust",
        TRUST,
        "--api-key-env",
        "COSTROUTE_TEST_KEY",
        "--max-batch-size",
        "2",
        "--batch-wait-ms",
        "20",
        "-q",
        env=env,
    )
    url, headers = f"http://127.0.0.1:{port}", {"Authorization": "Bearer k3y"}
    try:
        deadline = time.monotonic() + 60
        while True:  # wait until it serves
            assert proc.poll() is None, proc.communicate()[1]
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        assert httpx.post(f"{url}/v1/route", json={"prompt": "a cat"}).status_code == 401
        answers: dict[int, object] = {}

        def ask(i: int) -> None:
            try:
                answers[i] = httpx.post(
                    f"{url}/v1/images/generations",
                    json={"prompt": f"a cat number {i}", "costroute": {"seed": i}},
                    headers=headers,
                    timeout=30,
                )
            except httpx.TransportError as exc:  # pragma: no cover - reported by the assertion below
                answers[i] = exc

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        time.sleep(0.3)  # the first batch is in the generator, the others wait in the queue
        os.kill(proc.pid, signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(httpx.TransportError):  # it no longer accepts connections
            httpx.post(f"{url}/v1/images/generations", json={"prompt": "late"}, headers=headers, timeout=5)
        for t in threads:
            t.join(60)
        proc.wait(60)
    finally:
        if proc.poll() is None:  # pragma: no cover - only when an assertion failed above
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, -signal.SIGTERM), proc.stderr.read()
    assert all(isinstance(a, httpx.Response) for a in answers.values()), answers
    assert [a.status_code for a in answers.values()] == [200] * 6  # every request in flight was finished
    served = [a.json()["data"][0]["costroute"] for a in answers.values()]
    with sqlite3.connect(store) as db:
        rows = sorted(db.execute("SELECT g.name, i.seed FROM images i JOIN generators g ON g.id = i.generator_id"))
    assert rows == sorted((e["generator"], e["seed"]) for e in served)  # every image served, nothing else
