"""The Ray backend's cluster address: checked for its form, and probed (bounded by ``connect_timeout``) before
anything is written to the store -- through the API, and through ``costroute collect`` in a real process.

Only loopback addresses are used: port 1 (nothing listens there) and a socket whose accept queue is full (it
accepts no connection, like a host that drops packets)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from costroute.cli import main
from costroute.collect import RayBackend, collect
from costroute.generators import CallableGenerator

from ._helpers import PROMPTS, draw

pytest.importorskip("ray", reason="the ray extra is not installed: pip install costroute[ray]")

DEAD = "127.0.0.1:1"  # nothing listens on port 1: the connection is refused at once


@pytest.fixture(autouse=True)
def no_ray_here(monkeypatch):
    """No Ray initialised in this process (it would be used, whatever the address) and no RAY_ADDRESS."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        pytest.skip("Ray is initialised in this process: the backend uses it, whatever the address")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


@pytest.fixture
def silent_address():
    """A loopback HOST:PORT that never completes a connection: a listening socket with a full accept queue."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    host, port = server.getsockname()
    held = socket.create_connection((host, port), timeout=5)  # fills the queue; later connections get no answer
    try:
        yield f"{host}:{port}"
    finally:
        held.close()
        server.close()


def _collect(tmp_path, bright, backend):
    return collect(
        PROMPTS,
        [CallableGenerator("a", draw, cost=1.0)],
        [bright],
        tmp_path / "run.sqlite",
        backend=backend,
        progress=False,
    )


def test_an_address_nobody_listens_on_is_a_connection_error_naming_it_before_the_store_is_touched(tmp_path, bright):
    start = time.monotonic()
    with pytest.raises(
        ConnectionError,
        match=r"(?s)cannot reach the Ray cluster at '127\.0\.0\.1:1' \(from address\)"
        r".*Connection refused.*head node is running.*ray status.*HOST:PORT",
    ):
        _collect(tmp_path, bright, RayBackend(address=DEAD))
    assert time.monotonic() - start < 30
    assert not (tmp_path / "run.sqlite").exists()


def test_a_silent_address_fails_within_a_short_connect_timeout(tmp_path, bright, silent_address):
    start = time.monotonic()
    with pytest.raises(
        ConnectionError,
        match=rf"cannot reach the Ray cluster at '{silent_address}'.*(timed out|"
        r"no answer within connect_timeout=1 s)",
    ):
        _collect(tmp_path, bright, RayBackend(address=silent_address, connect_timeout=1))
    elapsed = time.monotonic() - start
    assert 0.9 < elapsed < 5, elapsed
    assert not (tmp_path / "run.sqlite").exists()


def test_a_dead_ray_address_variable_is_named_as_the_source(tmp_path, bright, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", DEAD)
    with pytest.raises(ConnectionError, match=r"at '127\.0\.0\.1:1' \(from the RAY_ADDRESS environment variable\)"):
        _collect(tmp_path, bright, "ray")
    assert not (tmp_path / "run.sqlite").exists()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"address": "127.0.0.1"}, r"address must be 'auto', 'HOST:PORT' .* got '127\.0\.0\.1'"),
        (
            {"address": "http://127.0.0.1:6379"},
            r"address must be 'auto', 'HOST:PORT' .* got 'http://127\.0\.0\.1:6379'",
        ),
        ({"address": "127.0.0.1:99999"}, r"address must be .* got '127\.0\.0\.1:99999'"),
        ({"connect_timeout": 0}, r"connect_timeout must be a finite number of seconds > 0, got 0"),
        ({"connect_timeout": float("inf")}, r"connect_timeout must be a finite number of seconds > 0, got inf"),
    ],
)
def test_bad_address_forms_and_timeouts_are_value_errors_naming_the_argument(tmp_path, bright, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _collect(tmp_path, bright, RayBackend(**kwargs))
    assert not (tmp_path / "run.sqlite").exists()


def test_an_ill_formed_ray_address_variable_is_named(tmp_path, bright, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "headnode")
    with pytest.raises(ValueError, match=r"RAY_ADDRESS must be 'auto', 'HOST:PORT' .* got 'headnode'"):
        _collect(tmp_path, bright, "ray")


def _command(tmp_path, *extra):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red cat\n")
    return [
        "collect",
        str(prompts),
        "--generators",
        "sdxl-turbo-1",
        "--scorer",
        "clip",
        "--store",
        str(tmp_path / "run.sqlite"),
        *extra,
    ]


def _run_cli(tmp_path, *extra, timeout=90):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "costroute.cli", *_command(tmp_path, *extra)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done, time.monotonic() - start


def test_the_command_exits_2_at_once_for_an_address_nobody_listens_on(tmp_path):
    done, elapsed = _run_cli(tmp_path, "--backend", "ray", "--address", DEAD)
    assert done.returncode == 2, done.stderr
    assert "costroute collect: error: cannot reach the Ray cluster at '127.0.0.1:1'" in done.stderr
    assert "ray status" in done.stderr and "--connect-timeout" in done.stderr
    assert "Traceback" not in done.stderr and "Failed to connect to GCS" not in done.stderr  # no Ray retries
    assert elapsed < 30, elapsed  # the interpreter's start and imports included
    assert not (tmp_path / "run.sqlite").exists()


def test_the_command_honours_connect_timeout_on_a_silent_address(tmp_path, silent_address):
    done, elapsed = _run_cli(tmp_path, "--backend", "ray", "--address", silent_address, "--connect-timeout", "2")
    assert done.returncode == 2, done.stderr
    assert f"cannot reach the Ray cluster at '{silent_address}'" in done.stderr
    assert 2 <= elapsed < 30, elapsed
    assert not (tmp_path / "run.sqlite").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--connect-timeout", "5"], "--connect-timeout set(s) the Ray backend's pool; add --backend ray"),
        (["--backend", "ray", "--connect-timeout", "0"], "argument --connect-timeout: must be finite and > 0, got '0'"),
        (["--backend", "ray", "--connect-timeout", "soon"], "argument --connect-timeout: expected a number of seconds"),
        (["--backend", "ray", "--address", "headnode"], "address must be 'auto', 'HOST:PORT'"),
    ],
)
def test_bad_connection_options_exit_2(tmp_path, capsys, extra, message):
    assert main(_command(tmp_path, *extra)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run.sqlite").exists()
