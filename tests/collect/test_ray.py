"""The Ray backend, on a real local Ray instance (2 CPUs, started once for this file): the rows of a local run,
units grouped by generator, actors that die mid-run, a driver killed with SIGKILL, and bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from costroute.cli import main
from costroute.collect import RayBackend, collect
from costroute.generators import CallableGenerator, DiffusersGenerator
from costroute.scoring import CLIPScorer

from . import _helpers
from ._helpers import PROMPTS, draw, integrity, rows, wait_for_images

CLEAN = {"duplicate_images": 0, "duplicate_scores": 0, "partial_images": 0, "dangling_scores": 0}


@pytest.fixture(scope="module")
def ray_address():
    """One local Ray instance for the whole file (2 CPUs, loopback only); its GCS address."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install costroute[ray]")
    # the actors import the test helpers by value: the tests folder is not on their sys.path
    ray.cloudpickle.register_pickle_by_value(_helpers)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    context = ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", configure_logging=False)
    yield context.address_info["gcs_address"]
    ray.shutdown()


class Recording:
    """``draw``, appending ``pid name`` to ``log`` at each call (which worker process ran which generator)."""

    def __init__(self, log: str, name: str):
        self.log, self.name = log, name

    def __call__(self, prompts, seeds):
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()} {self.name}\n")
        return draw(prompts, seeds)


class ExitOnCall:
    """``draw``, but the process calling it exits at once (``os._exit``, as if killed) on the ``n``-th call counted
    in ``folder`` by every process together -- once, or on every call from the ``n``-th on when ``always``."""

    def __init__(self, folder: str, n: int, always: bool = False):
        self.folder, self.n, self.always = folder, n, always

    def __call__(self, prompts, seeds):
        with open(os.path.join(self.folder, "calls"), "a+") as f:
            f.write(".")
            f.flush()
            f.seek(0)
            calls = len(f.read())
        died = os.path.join(self.folder, "died")
        if calls >= self.n:
            if self.always:
                with open(died, "a") as f:
                    f.write(f"{os.getpid()}\n")
                os._exit(1)
            try:  # exactly one process wins the exclusive create, even when two actors get here at once
                fd = os.open(died, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return draw(prompts, seeds)
            os.write(fd, f"{os.getpid()}\n".encode())
            os.close(fd)
            os._exit(1)
        return draw(prompts, seeds)


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, start time, state) of every process (Linux /proc); zombies left out (they are gone)."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                fields = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[0] != b"Z":
                out[int(name)] = (int(fields[1]), int(fields[19]), fields[0].decode())
    return out


def _descendants(root: int) -> dict[int, int]:
    """pid -> start time of every process below ``root`` (its children, theirs, ...)."""
    table = _processes()
    found, todo = {}, [root]
    while todo:
        parent = todo.pop()
        for pid, (ppid, started, _) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = started
                todo.append(pid)
    return found


def _survivors(started: dict[int, int]) -> dict[int, str]:
    """Those of ``started`` (pid -> start time) still running: pid -> command line."""
    table = _processes()
    alive = {}
    for pid, when in started.items():
        if pid in table and table[pid][1] == when:
            try:
                alive[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:80]
            except OSError:
                continue
    return alive


def _cells_by_hash(path) -> set[tuple]:
    """``rows`` with each saved image's path reduced to its file name (the SHA-256 of its bytes)."""
    return {(*r[:6], None if r[6] is None else Path(r[6]).name, *r[7:]) for r in rows(path)}


def test_tiny_pipelines_on_ray_give_the_rows_and_files_of_a_local_run(tmp_path, tiny_sd, tiny_clip, ray_address):
    def run(name, backend):
        gens = [DiffusersGenerator("two", tiny_sd, steps=2), DiffusersGenerator("three", tiny_sd, steps=3)]
        return collect(
            PROMPTS[:4],
            gens,
            [CLIPScorer(tiny_clip)],
            tmp_path / f"{name}.sqlite",
            seeds=2,
            batch_size=3,
            backend=backend,
            progress=False,
            save_images=tmp_path / name,
        )

    local = run("local", "local")
    remote = run("ray", RayBackend(num_workers=2))
    assert local.complete and remote.complete and remote.images_generated == 16
    assert integrity(tmp_path / "ray.sqlite") == {"images": 16, "scores": 16, **CLEAN}
    # same keys, seeds, costs, scores (floats compared exactly) and image files (named by their content hash)
    assert len(_cells_by_hash(tmp_path / "local.sqlite")) == 16
    assert _cells_by_hash(tmp_path / "ray.sqlite") == _cells_by_hash(tmp_path / "local.sqlite")
    assert sorted(p.name for p in (tmp_path / "ray").glob("*.png")) == sorted(
        p.name for p in (tmp_path / "local").glob("*.png")
    )


def test_units_are_grouped_by_generator_and_backend_ray_is_the_default_pool(tmp_path, bright, ray_address):
    log = str(tmp_path / "calls.log")
    gens = [CallableGenerator(n, Recording(log, n), cost=c) for n, c in (("a", 1.0), ("b", 2.0), ("c", 3.0))]
    summary = collect(
        PROMPTS, gens, [bright], tmp_path / "run.sqlite", seeds=2, batch_size=2, backend="ray", progress=False
    )
    assert summary.complete and summary.images_generated == 30
    calls = [line.split() for line in Path(log).read_text().splitlines()]
    assert len(calls) == 15  # 10 images per generator in batches of 2: one call per unit, none twice
    workers = {pid for pid, _ in calls}
    assert len(workers) == 2 and os.getpid() not in {int(p) for p in workers}  # one actor per CPU, not here
    for pid in workers:  # an actor that leaves a generator never comes back to it (loads it once)
        names = [name for p, name in calls if p == pid]
        runs = [name for i, name in enumerate(names) if i == 0 or names[i - 1] != name]
        assert len(runs) == len(set(runs)), names
    # the actors started on the first two generators, one each; whoever was done first went on with the third
    assert {[name for p, name in calls if p == pid][0] for pid in workers} == {"a", "b"}
    reference = [
        CallableGenerator(n, Recording(str(tmp_path / "local.log"), n), cost=c)
        for n, c in (("a", 1.0), ("b", 2.0), ("c", 3.0))
    ]
    collect(PROMPTS, reference, [bright], tmp_path / "local.sqlite", seeds=2, batch_size=2, progress=False)
    assert rows(tmp_path / "run.sqlite") == rows(tmp_path / "local.sqlite")


def test_units_of_an_actor_that_dies_go_to_a_fresh_actor_and_the_store_equals_a_local_run(
    tmp_path, bright, ray_address
):
    def gens(folder):
        return [CallableGenerator("a", ExitOnCall(str(folder), 4), cost=1.0), CallableGenerator("b", draw, cost=2.0)]

    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "died").write_text("0\n")  # already died once: the local run is never killed
    collect(
        PROMPTS, gens(tmp_path / "local"), [bright], tmp_path / "local.sqlite", seeds=2, batch_size=2, progress=False
    )
    summary = collect(
        PROMPTS,
        gens(tmp_path),
        [bright],
        tmp_path / "ray.sqlite",
        seeds=2,
        batch_size=2,
        backend=RayBackend(num_workers=2),
        progress=False,
    )
    died = (tmp_path / "died").read_text().split()
    assert len(died) == 1 and int(died[0]) != os.getpid()  # an actor's process exited mid-run, once
    assert summary.complete and summary.images_generated == 20 and not summary.failures
    assert integrity(tmp_path / "ray.sqlite") == {"images": 20, "scores": 20, **CLEAN}
    assert rows(tmp_path / "ray.sqlite") == rows(tmp_path / "local.sqlite")


def test_a_unit_that_keeps_killing_its_actor_stops_the_run_after_max_retries(tmp_path, bright, ray_address):
    gens = [CallableGenerator("a", ExitOnCall(str(tmp_path), 3, always=True), cost=1.0)]
    with pytest.raises(
        RuntimeError,
        match=r"(?s)unit 2 \(2 images of generator 'a'\) was lost with its Ray actor 2 "
        r"times \(max_retries=1\).*run collect again to resume",
    ):
        collect(
            PROMPTS[:4],
            gens,
            [bright],
            tmp_path / "run.sqlite",
            seeds=2,
            batch_size=2,
            backend=RayBackend(num_workers=1, max_retries=1),
            progress=False,
        )
    assert len((tmp_path / "died").read_text().split()) == 2  # sent twice, two actors died
    # the two units answered before are stored, whole
    assert integrity(tmp_path / "run.sqlite") == {"images": 4, "scores": 4, **CLEAN}


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="the processes of the run are found in /proc (Linux)")
def test_a_ray_collection_killed_with_sigkill_leaves_no_process_resumes_then_fits_and_routes(
    tmp_path, tiny_sd, tiny_clip, ray_address, capsys
):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"a photo of object number {i}\n" for i in range(6)))
    store = tmp_path / "run.sqlite"
    args = [
        "collect",
        str(prompts),
        "--generators",
        f"two=diffusers:{tiny_sd}:2",
        f"three=diffusers:{tiny_sd}:3",
        "--scorer",
        f"clip:{tiny_clip}",
        "--store",
        str(store),
        "--seeds",
        "2",
        "--batch-size",
        "2",
        "--save-images",
        str(tmp_path / "images"),
        "--backend",
        "ray",
        "--workers",
        "1",
    ]
    log = tmp_path / "driver.log"
    # no --address and no RAY_ADDRESS: the killed command starts (and must take down) a local instance of its own
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    started: dict[int, int] = {}
    with open(log, "wb") as out:  # a file, not a pipe: the actors' logs must not fill a pipe and block the driver
        process = subprocess.Popen(
            [sys.executable, "-m", "costroute.cli", *args, "-q"], env=env, stdout=subprocess.DEVNULL, stderr=out
        )
        try:
            wait_for_images(store, 4, process, lambda: log.read_text()[-3000:])
            started = _descendants(process.pid)  # GCS, raylet, its agents, the actor, the watchdog ...
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            deadline = time.monotonic() + 30
            while _survivors(started) and time.monotonic() < deadline:
                time.sleep(0.2)
            left = _survivors(started)
        finally:
            if process.poll() is None:
                process.kill()
            for pid in _survivors(started):  # never leave them to the next test
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
    assert process.returncode == -signal.SIGKILL
    assert len(started) >= 5, started  # the local instance was there to kill
    assert not left, f"processes of the killed run still running 30 s later: {left}"
    killed = integrity(store)
    assert 4 <= killed["images"] < 24 and killed["images"] % 2 == 0  # part-way, whole batches only
    assert killed == {"images": killed["images"], "scores": killed["images"], **CLEAN}
    before = rows(store)
    # the same command again, here (on this process's Ray instance): the missing images only
    assert main(args) == 0
    n = killed["images"]
    assert (
        f"{24 - n} cells written ({24 - n} images generated, 0 saved images scored again), {n} already in the "
        "store, 0 missing, of 24"
    ) in capsys.readouterr().err
    assert integrity(store) == {"images": 24, "scores": 24, **CLEAN}
    assert before <= rows(store)
    # then fit a router on the store, save it, and route a prompts file with it
    router = tmp_path / "router.skops"
    assert (
        main(
            [
                "fit",
                "--dataset",
                str(store),
                "-o",
                str(router),
                "--features",
                "complexity",
                "--quality-model",
                "ridge",
                "-q",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["route", str(prompts), "--router", str(router), "-q"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 7 and lines[0].startswith("prompt,generator")
    assert {line.split(",")[1] for line in lines[1:]} <= {"two", "three"}


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"num_workers": 0}, ValueError, r"num_workers must be a positive integer .*, got 0"),
        ({"num_workers": 2.5}, ValueError, r"num_workers must be a positive integer .*, got 2.5"),
        ({"num_workers": True}, ValueError, r"num_workers must be a positive integer .*, got True"),
        ({"address": 3}, TypeError, r"address must be a Ray cluster address .* got int: 3"),
        ({"num_gpus_per_worker": -1}, ValueError, r"num_gpus_per_worker must be a number >= 0 or None, got -1"),
        ({"num_cpus_per_worker": 0}, ValueError, r"num_cpus_per_worker must be a number > 0, got 0"),
        ({"max_retries": -1}, ValueError, r"max_retries must be an integer >= 0, got -1"),
    ],
)
def test_bad_ray_settings_are_refused_before_anything_is_written(tmp_path, bright, kwargs, error, match):
    with pytest.raises(error, match=match):
        collect(
            PROMPTS,
            [CallableGenerator("a", draw, cost=1.0)],
            [bright],
            tmp_path / "run.sqlite",
            backend=RayBackend(**kwargs),
            progress=False,
        )
    assert not (tmp_path / "run.sqlite").exists()


def test_more_workers_than_the_cluster_holds_is_an_error_naming_num_workers(tmp_path, bright, ray_address):
    with pytest.raises(
        ValueError,
        match=r"num_workers=3 actors of 1 CPU\(s\) and 0 GPU\(s\) each do not fit in the "
        r"Ray cluster \(2 CPUs, 0 GPUs\)",
    ):
        collect(
            PROMPTS,
            [CallableGenerator("a", draw, cost=1.0)],
            [bright],
            tmp_path / "run.sqlite",
            backend=RayBackend(num_workers=3),
            progress=False,
        )
    assert integrity(tmp_path / "run.sqlite")["images"] == 0


def test_without_ray_installed_the_error_names_the_extra(tmp_path, bright, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    with pytest.raises(
        ImportError,
        match=r"needs the ray package, which is not installed: pip install "
        r"costroute\[ray\]",
    ):
        collect(PROMPTS, [CallableGenerator("a", draw, cost=1.0)], [bright], tmp_path / "run.sqlite", backend="ray")
    assert not (tmp_path / "run.sqlite").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--workers", "2"], "--workers set(s) the Ray backend's pool; add --backend ray"),
        (["--backend", "ray", "--workers", "0"], "argument --workers: must be >= 1, got '0'"),
        (["--backend", "nope"], "argument --backend: invalid choice: 'nope'"),
    ],
)
def test_bad_backend_options_exit_2(tmp_path, capsys, extra, message):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red cat\n")
    assert (
        main(
            [
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
        )
        == 2
    )
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run.sqlite").exists()


def test_the_command_without_ray_installed_exits_2_naming_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red cat\n")
    assert (
        main(
            [
                "collect",
                str(prompts),
                "--generators",
                "sdxl-turbo-1",
                "--scorer",
                "clip",
                "--store",
                str(tmp_path / "run.sqlite"),
                "--backend",
                "ray",
            ]
        )
        == 2
    )
    assert "needs the ray package, which is not installed: pip install costroute[ray]" in capsys.readouterr().err
    assert not (tmp_path / "run.sqlite").exists()
