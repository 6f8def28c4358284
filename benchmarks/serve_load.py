"""``costroute serve`` under load, its budget over a stream, and the serve-store-refit loop.

1. **Load** (CPU, tiny pipelines). ``costroute serve`` runs as a real process on a free
   127.0.0.1 port, serving a router over the three tiny random-weight Stable Diffusion
   pipelines of ``costroute tiny`` (``small`` = sd at 2 steps, ``large`` = sd at 8 steps,
   ``other`` = sd-b at 4 steps; 64x64 images, FLOPs costs counted from the configs). The
   router (``complexity`` features, ridge) is fitted on a constructed quality matrix over 64
   DiffusionDB prompts (long prompts gain from the dearer pipelines) with the λ that spends
   0.6 of the dearest pipeline per image on them, so that every pipeline gets traffic. The
   real ``openai`` client (``AsyncOpenAI``, retries off, so a failure counts) sends
   ``--requests`` distinct DiffusionDB prompts (``b64_json``, a seed each) at each
   ``--concurrency`` (closed loop: that many requests always in flight). Reported per
   concurrency: p50/p95/p99 latency, throughput, failed requests, and the **server's own
   time per request outside model calls**, measured as the client latency minus the model
   time the response reports (``costroute.seconds``: the pipeline call's wall time divided
   by the images it made). At concurrency 1 that is HTTP (both ends), JSON, PNG + base64,
   queueing, routing and the batch wait (``--batch-wait-ms``, 10 ms by default: a lone
   request waits that long for company); a second server with ``--batch-wait-ms 0`` gives
   the same figure without the wait. At higher concurrency it also holds the time spent
   waiting behind other requests' batches, so the server's worker-thread time outside model
   calls per request (``costroute_batch_seconds`` from ``/metrics`` minus the model time
   of the responses) is given beside it. Throughput at the highest concurrency is compared
   with ``router.route(prompts).generate(batch_size=--max-batch-size)`` on the same prompts
   in this process: once before the server starts, paired with the first round, and before
   each of ``--soak-rounds`` more rounds at that concurrency (the server idle meanwhile); the
   ratio is the median over these pairs, taken minutes apart on a machine shared with other
   work. (A last baseline after the server stops is reported too.) To tell the causes apart, the pipeline calls alone are timed in this process for both batch
   shapes (``generate``'s: each generator's prompts in calls of ``--max-batch-size``; the
   server's: batches of ``--max-batch-size`` requests in arrival order, each split per
   generator), and the CPU time of the server process and of the client is read. The
   server's RSS (``/proc/PID/status``) is read every 100 requests, and compared after the 200th
   and the last request of each concurrency; the extra rounds show whether it settles.
2. **Budget over a stream, through ``/v1/route``.** A ``CostAwareRouter`` (``complexity``
   features; each of ``--quality-models``, the first -- knn, the router's default -- the
   headline) fitted on all of GenAI-Bench (human ratings, costs in ``--cost-unit``, USD by
   default) is served with ``--budget`` and a window of 256;
   ``--stream`` distinct DiffusionDB prompts are sent one at a time to ``/v1/route``, which
   charges each decision's predicted cost to the budget window. Reported: the mean
   normalised cost of every window of 256 decisions after the first (sliding, and the
   non-overlapping blocks), and the mean predicted quality against
   ``router.route(prompts, budget=mean cost realised)`` on the same prompts as one batch.
   Diagnostics: the batch plan's own window means in stream order, the decisions the hard
   guard redirected and what they cost in predicted quality, and an offline replay of the
   same λ rule without the guard.
3. **The loop.** A service over GenAI-Bench with nothing faked at the service level: each
   generator is a ``CallableGenerator`` whose 8x8 image encodes, in its pixels, the human
   rating (mean of 3) of that (prompt, generator), and a ``CallableScorer`` reads it back
   (the quality). ``--train-prompts`` prompts are collected with every generator
   (``costroute.collect.collect``) into a store, and a low-rank router is fitted on them;
   ``--loop-requests`` requests drawn with replacement from ``--pool`` other prompts are
   served by a real uvicorn server (loopback, in a thread) with ``--explore``, ``--store``
   (the same store) and ``--budget``, 4 in flight. Every ``--refit-every`` requests the
   server is stopped (the service has no API to swap its router, so it is restarted with
   the new one; its budget window starts afresh), the router is refitted on
   ``load_collection(store, missing="nan")`` with ``quality_model="lowrank"``, and its APGR
   on held-out GenAI-Bench prompts (never served) is reported against the first router and
   a reference fitted on the full matrix of every training and pool prompt. Repeated on
   ``--loop-repeats`` random splits.

Usage::

    PYTHONPATH=. COSTROUTE_DATA=/path/to/data .venv/bin/python benchmarks/serve_load.py [--quick]
        [--parts load budget loop] [--requests 1000] [--concurrency 1 4 16] [--threads 1]

``--quick`` (about two minutes) writes ``benchmarks/results/serve_load_quick.json``; a full
run writes ``benchmarks/results/serve_load.json``. Threads: BLAS/OpenMP pools (torch's
included, in the server process too) limited to ``--threads`` (default 1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import io
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import limit_threads_from_argv, to_json  # noqa: E402

limit_threads_from_argv()

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {
    "overhead_p50_ms": 15.0,  # server's own time per request outside model calls, concurrency 1
    "throughput_ratio": 0.9,  # server at the highest concurrency / in-process RoutingPlan.generate
    "memory_growth_share": 0.02,  # RSS after the last request vs after the 200th: "no growth beyond noise"
    "window_tolerance": 0.05,  # every window of 256 after the first within ±5 % of the budget
    "quality_gap": 0.01,  # stream's mean predicted quality vs one batch at the same mean cost
}


# ---------------------------------------------------------------------------------------------- helpers
def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    """Resident set size of process ``pid`` in MiB (Linux ``/proc``)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return math.nan


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def quantiles_ms(seconds) -> dict:
    x = np.asarray(seconds, dtype=float) * 1000.0
    if x.size == 0:
        return {"p50": math.nan, "p95": math.nan, "p99": math.nan, "mean": math.nan}
    p50, p95, p99 = np.percentile(x, [50, 95, 99])
    return {"p50": p50, "p95": p95, "p99": p99, "mean": float(x.mean())}


def scrape(url: str) -> dict[str, float]:
    """``/metrics`` as ``{'name{labels}': value}``."""
    import httpx

    out = {}
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def metric_delta(before: dict, after: dict, key: str) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


def distinct(prompts, n: int, rng, exclude=()) -> list[str]:
    """``n`` distinct prompts drawn without replacement (none of ``exclude``)."""
    seen, out = set(exclude), []
    for i in rng.permutation(len(prompts)):
        p = prompts[i]
        if p not in seen and p.strip():
            seen.add(p)
            out.append(p)
            if len(out) == n:
                return out
    raise ValueError(f"only {len(out)} distinct prompts available, {n} asked for")


class ServerThread:
    """A real uvicorn server for ``app`` on a free loopback port, in a background thread of this process."""

    def __init__(self, app, timeout: float = 120.0):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.timeout = timeout
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-bench", daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + self.timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(self.timeout)
        if self.thread.is_alive():
            raise RuntimeError("the server did not stop")


class ServeProcess:
    """``costroute serve ROUTER`` as its own process on a free loopback port; stopped with SIGTERM."""

    def __init__(self, router_path: Path, options: list[str], threads: int, log: Path, timeout: float = 180.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
        command = [sys.executable, "-m", "costroute.cli", "serve", str(router_path)]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "-q", *options]
        self.log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        self._wait_ready(timeout, log)

    def _wait_ready(self, timeout: float, log: Path) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"costroute serve exited with {self.proc.returncode}: {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("costroute serve did not get ready in time")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self.log.close()


def progress_bar(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="req", disable=not enabled, file=sys.stderr, leave=False)


# ---------------------------------------------------------------------------------------------- 1. load
def constructed_quality(prompts: list[str], costs) -> np.ndarray:
    """Long prompts gain from the dearer pipelines, short ones lose a little (a made-up, smooth target)."""
    words = np.array([len(p.split()) for p in prompts], dtype=float)[:, None]
    rel = np.log(np.asarray(costs, dtype=float) / np.min(costs))[None, :]
    return 3.0 + 0.04 * np.minimum(words, 40.0) * rel - 0.3 * rel


def tiny_router(folder: Path, train_prompts: list[str]):
    """A router over ``costroute tiny``'s three pipelines (its names and steps), with a λ that uses all three."""
    from costroute import CostAwareRouter
    from costroute.cli._tiny import TINY_MODELS
    from costroute.generators import DiffusersGenerator, build_tiny_pipeline

    for sub in ("sd", "sd-b"):  # what `costroute tiny FOLDER` writes (the two pipelines of it used here)
        build_tiny_pipeline(folder / sub, seed=TINY_MODELS[sub][1])
    generators = [
        DiffusersGenerator("small", str(folder / "sd"), steps=2),
        DiffusersGenerator("large", str(folder / "sd"), steps=8),
        DiffusersGenerator("other", str(folder / "sd-b"), steps=4),
    ]
    costs = [g.cost for g in generators]
    router = CostAwareRouter(generators, features="complexity", quality_model="ridge")
    router.fit(train_prompts, constructed_quality(train_prompts, costs))
    router.set_params(cost_penalty=router.route(train_prompts, budget=0.6).cost_penalty)
    return router


async def drive(url: str, prompts, seeds, concurrency: int, client: str, pid: int, checkpoints, bar) -> dict:
    """Send every prompt (``concurrency`` in flight) and time each; RSS of ``pid`` at the checkpoints."""
    import httpx

    n = len(prompts)
    start_t, end_t = np.full(n, math.nan), np.full(n, math.nan)
    model_s, generators, errors, rss = np.full(n, math.nan), [None] * n, [], {}
    done = 0
    if client == "openai":
        from openai import AsyncOpenAI

        api = AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=300)

        async def call(i: int) -> tuple[dict, str]:
            r = await api.images.generate(
                model="auto",
                prompt=prompts[i],
                response_format="b64_json",
                extra_body={"costroute": {"seed": int(seeds[i])}},
            )
            return r.data[0].model_extra["costroute"], r.data[0].b64_json

        closing = api.close
    else:
        http = httpx.AsyncClient(base_url=url, timeout=300, limits=httpx.Limits(max_connections=concurrency + 4))

        async def call(i: int) -> tuple[dict, str]:
            body = {"prompt": prompts[i], "response_format": "b64_json", "costroute": {"seed": int(seeds[i])}}
            r = await http.post("/v1/images/generations", json=body)
            r.raise_for_status()
            data = r.json()["data"][0]
            return data["costroute"], data["b64_json"]

        closing = http.aclose
    order = iter(range(n))

    async def worker() -> None:
        nonlocal done
        for i in order:
            start_t[i] = time.perf_counter()
            try:
                ext, b64 = await call(i)
                if not b64:
                    raise ValueError("no image in the response")
                model_s[i], generators[i] = ext["seconds"], ext["generator"]
            except Exception as exc:  # noqa: BLE001 - every failure is counted, none retried
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
            end_t[i] = time.perf_counter()
            done += 1
            bar.update()
            if done in checkpoints:
                rss[done] = rss_mib(pid)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - began
    await closing()
    return {
        "latency": end_t - start_t,
        "model_s": model_s,
        "generators": generators,
        "errors": errors,
        "wall": wall,
        "rss": rss,
    }


def check_one_image(url: str, prompt: str) -> str:
    """One request through httpx: the image decodes as a PNG; its size."""
    import base64

    import httpx
    from PIL import Image

    r = httpx.post(f"{url}/v1/images/generations", json={"prompt": prompt, "costroute": {"seed": 1}}, timeout=120)
    r.raise_for_status()
    image = Image.open(io.BytesIO(base64.b64decode(r.json()["data"][0]["b64_json"])))
    image.load()
    return f"{image.format} {image.size[0]}x{image.size[1]}"


def run_phase(server: ServeProcess, prompts, seeds, concurrency: int, args, label: str) -> dict:
    n = len(prompts)
    early = min(200, n // 2)
    checkpoints = {early, n, *range(100, n, 100)}
    before = scrape(server.url)
    cpu_server, cpu_client = cpu_seconds(server.pid), time.process_time()
    with progress_bar(n, f"load {label}", args.progress) as bar:
        out = asyncio.run(drive(server.url, prompts, seeds, concurrency, args.client, server.pid, checkpoints, bar))
    cpu_server, cpu_client = cpu_seconds(server.pid) - cpu_server, time.process_time() - cpu_client
    after = scrape(server.url)
    lat, model = out["latency"], out["model_s"]
    ok = ~np.isnan(model)
    outside = lat[ok] - model[ok]
    endpoint = 'endpoint="/v1/images/generations"'
    n_server = metric_delta(before, after, f"costroute_request_seconds_count{{{endpoint}}}")
    batches = metric_delta(before, after, "costroute_batch_seconds_count")
    worker_s = metric_delta(before, after, "costroute_batch_seconds_sum")
    shares = {g: sum(1 for x in out["generators"] if x == g) / n for g in sorted(set(out["generators"]) - {None})}
    return {
        "concurrency": concurrency,
        "requests": n,
        "failed": len(out["errors"]),
        "errors": out["errors"][:5],
        "wall_s": out["wall"],
        "throughput_rps": n / out["wall"],
        "latency_ms": quantiles_ms(lat),
        "model_ms": quantiles_ms(model[ok]),
        "latency_minus_model_ms": quantiles_ms(outside),
        "server_side_latency_mean_ms": 1000
        * metric_delta(before, after, f"costroute_request_seconds_sum{{{endpoint}}}")
        / max(n_server, 1),
        "worker_outside_model_ms_per_request": 1000 * (worker_s - float(np.nansum(model))) / n,
        "model_s_total": float(np.nansum(model)),
        "batches": batches,
        "images_per_batch": metric_delta(before, after, "costroute_batch_images_sum") / max(batches, 1),
        "generator_share": shares,
        "cpu_s": {"server": cpu_server, "client": cpu_client, "cores_busy": (cpu_server + cpu_client) / out["wall"]},
        "rss_mib": {str(k): out["rss"][k] for k in (early, n)},
        "rss_trace_mib": {str(k): v for k, v in sorted(out["rss"].items())},
    }


def baseline_generate(router, prompts: list[str], batch_size: int) -> dict:
    """``router.route(prompts).generate(batch_size=...)`` in this process, pipelines loaded beforehand."""
    t0 = time.perf_counter()
    plan = router.route(prompts)
    route_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = plan.generate(seed=0, batch_size=batch_size, progress=False)
    generate_s = time.perf_counter() - t0
    assert len(result) == len(prompts)
    return {"route_s": route_s, "generate_s": generate_s, "images_per_s": len(prompts) / generate_s}


def model_call_seconds(router, prompts: list[str], batch_size: int) -> dict:
    """Seconds of the pipeline calls alone, in this process, for the two batch shapes.

    ``full_batches``: each generator's prompts in calls of ``batch_size`` (what ``generate``
    makes). ``server_batches``: what the server's worker gets at high concurrency, batches of
    ``batch_size`` requests in arrival order, each split per generator (fewer images per call).
    """
    assign = router.route(prompts).assignments
    generators = list(router.generators_)

    def timed(groups) -> float:
        total = 0.0
        for k, idx in groups:
            t0 = time.perf_counter()
            generators[k].generate_images([prompts[i] for i in idx], [int(i) for i in idx])
            total += time.perf_counter() - t0
        return total

    full, shaped = [], []
    for k in range(len(generators)):
        idx = np.flatnonzero(assign == k)
        full += [(k, idx[s : s + batch_size]) for s in range(0, idx.size, batch_size)]
    for s in range(0, len(prompts), batch_size):
        part = np.arange(s, min(s + batch_size, len(prompts)))
        shaped += [(k, part[assign[part] == k]) for k in range(len(generators)) if (assign[part] == k).any()]
    return {
        "full_batches": timed(full),
        "full_batches_calls": len(full),
        "server_batches": timed(shaped),
        "server_batches_calls": len(shaped),
    }


def part_load(args, tmp: Path, log) -> dict:
    from costroute.datasets import load_prompts
    from costroute.io import save

    all_prompts = load_prompts("diffusiondb").prompts
    rng = np.random.default_rng(0)
    train = distinct(all_prompts, 64, rng)
    prompts = distinct(all_prompts, args.requests, rng, exclude=train)
    seeds = np.arange(len(prompts)) + 1000
    log("load: building the tiny pipelines and fitting the router")
    router = tiny_router(tmp / "tiny", train)
    router_path = tmp / "tiny-router.skops"
    save(router, router_path)
    doc = {
        "setup": {
            "generators": {g.name: {"steps": g.steps, "flops": g.cost} for g in router.generators_},
            "normalized_costs": dict(zip(router.generator_names_, router.normalized_costs_.tolist())),
            "cost_penalty": router.cost_penalty,
            "client": args.client,
            "max_batch_size": args.max_batch_size,
            "batch_wait_ms": args.batch_wait_ms,
            "torch_threads_server_and_baseline": args.threads,
            "requests_per_concurrency": len(prompts),
        }
    }
    # in-process baseline, before the server exists
    for g in router.generators_:
        g.load()
    router.route(prompts[:8]).generate(seed=0, batch_size=args.max_batch_size, progress=False)  # warm-up
    log("load: in-process RoutingPlan.generate (before)")
    first = baseline_generate(router, prompts, args.max_batch_size)
    options = ["--max-batch-size", str(args.max_batch_size), "--batch-wait-ms", str(args.batch_wait_ms)]
    options += ["--max-queue", str(max(64, 2 * max(args.concurrency)))]
    log("load: starting costroute serve")
    started = time.perf_counter()
    server = ServeProcess(router_path, options, args.threads, tmp / "serve.log")
    doc["setup"]["server_start_s"] = time.perf_counter() - started
    try:
        doc["setup"]["image_check"] = check_one_image(server.url, prompts[0])
        warm = asyncio.run(
            drive(server.url, prompts[:16], seeds[:16], 4, args.client, server.pid, set(), progress_bar(0, "", False))
        )
        doc["setup"]["warm_up_failed"] = len(warm["errors"])
        doc["rss_mib_after_warm_up"] = rss_mib(server.pid)
        phases = {}
        for c in args.concurrency:
            phases[f"c{c}"] = run_phase(server, prompts, seeds, c, args, f"c={c}")
            p = phases[f"c{c}"]
            log(
                f"load c={c}: p50 {p['latency_ms']['p50']:.1f} ms, p99 {p['latency_ms']['p99']:.1f} ms, "
                f"{p['throughput_rps']:.1f} req/s, failed {p['failed']}, outside model p50 "
                f"{p['latency_minus_model_ms']['p50']:.1f} ms, RSS {p['rss_mib']}"
            )
        doc["phases"] = phases
        top_c = max(args.concurrency)
        # more rounds at the highest concurrency, each after an in-process baseline (the server idle): pairs
        # measured minutes apart on a shared machine, and RSS over more requests (does it settle?)
        pairs = [(first["images_per_s"], phases[f"c{top_c}"]["throughput_rps"])]
        doc["soak"] = []
        for r in range(args.soak_rounds):
            base = baseline_generate(router, prompts, args.max_batch_size)
            p = run_phase(server, prompts, seeds, top_c, args, f"round {r + 2}")
            keep = ("concurrency", "requests", "failed", "throughput_rps", "rss_mib", "cpu_s")
            doc["soak"].append({**{k: p[k] for k in keep}, "baseline_images_per_s": base["images_per_s"]})
            pairs.append((base["images_per_s"], p["throughput_rps"]))
            log(
                f"load round {r + 2} (c={top_c}): {p['throughput_rps']:.1f} req/s against {base['images_per_s']:.1f} "
                f"images/s in process, failed {p['failed']}, RSS {p['rss_mib']}"
            )
    finally:
        server.stop()
    # the same at concurrency 1 without the batch wait: the server's own work alone
    n0 = min(len(prompts), args.no_wait_requests)
    options0 = ["--max-batch-size", str(args.max_batch_size), "--batch-wait-ms", "0"]
    server = ServeProcess(router_path, options0, args.threads, tmp / "serve0.log")
    try:
        asyncio.run(
            drive(server.url, prompts[:8], seeds[:8], 1, args.client, server.pid, set(), progress_bar(0, "", False))
        )
        doc["c1_batch_wait_0"] = run_phase(server, prompts[:n0], seeds[:n0], 1, args, "c=1, wait 0")
    finally:
        server.stop()
    log("load: in-process RoutingPlan.generate (after)")
    second = baseline_generate(router, prompts, args.max_batch_size)
    doc["baseline"] = {
        "before_server": first,
        "after_server": second,
        "pairs_images_per_s_and_server_rps": pairs,
        "model_calls_s": model_call_seconds(router, prompts, args.max_batch_size),
    }
    ratio = float(np.median([srv / base for base, srv in pairs]))
    c1 = phases.get("c1")
    memory = {}
    for name, p in phases.items():  # RSS after the 200th (or middle) request and after the last
        (early, a), (late, b) = ((int(k), v) for k, v in p["rss_mib"].items())
        memory[name] = {
            "after_request": [early, late],
            "rss_mib": [a, b],
            "growth_mib": b - a,
            "growth_share": b / a - 1,
        }
    worst_growth = max(
        (m["growth_share"] for m in memory.values() if m["after_request"][0] < m["after_request"][1]), default=math.nan
    )
    ends = [p["rss_mib"][str(p["requests"])] for p in [*phases.values(), *doc["soak"]]]
    memory["over_all_phases"] = {
        "after_warm_up": doc["rss_mib_after_warm_up"],
        "after_each_phase": ends,
        "requests": len(prompts) * (len(args.concurrency) + args.soak_rounds),
    }
    top_end = phases[f"c{max(args.concurrency)}"]["rss_mib"][str(len(prompts))]
    soak_growth = ends[-1] / top_end - 1 if doc["soak"] else math.nan  # after the soak rounds vs before them
    memory["soak_growth_share"] = soak_growth
    doc["memory"] = memory
    failed = sum(p["failed"] for p in [*phases.values(), *doc["soak"], doc["c1_batch_wait_0"]])
    doc["verdicts"] = {
        "failed_requests": failed,
        "overhead_p50_ms_c1": None if c1 is None else c1["latency_minus_model_ms"]["p50"],
        "overhead_p50_ms_c1_batch_wait_0": doc["c1_batch_wait_0"]["latency_minus_model_ms"]["p50"],
        "overhead_met": None if c1 is None else c1["latency_minus_model_ms"]["p50"] <= TARGETS["overhead_p50_ms"],
        "throughput_ratio": ratio,
        "throughput_met": ratio >= TARGETS["throughput_ratio"],
        "worst_rss_growth_share": worst_growth,
        "soak_rss_growth_share": soak_growth,
        "memory_met": worst_growth <= TARGETS["memory_growth_share"]
        and not soak_growth > TARGETS["memory_growth_share"],
    }
    return doc


# ---------------------------------------------------------------------------------------------- 2. budget
def _never(prompts, seeds):
    raise RuntimeError("decisions only: this generator is never asked for an image")


def genai_router(cost_unit: str, quality_model: str):
    """A CostAwareRouter over GenAI-Bench's generators (CallableGenerators never asked for an image), fitted on it."""
    from costroute import CostAwareRouter
    from costroute.datasets import load_genai_bench
    from costroute.generators import CallableGenerator

    data = load_genai_bench(cost_unit=cost_unit)
    generators = [CallableGenerator(g.name, _never, cost=g.cost, cost_unit=cost_unit) for g in data.generators]
    router = CostAwareRouter(generators, features="complexity", quality_model=quality_model)
    return router.fit(data.prompts, data.quality), data


def window_means(costs, window: int) -> np.ndarray:
    """Mean of every ``window`` consecutive values; entry s is the window starting at s."""
    return np.convolve(np.asarray(costs, dtype=float), np.ones(window), "valid") / window


def replay_without_guard(router, rows: np.ndarray, budget: float, window: int) -> np.ndarray:
    """The server's λ rule and feedback on ``rows`` in order, without the hard guard; the chosen generators."""
    from costroute.routing import assign_generators, penalty_for_budget
    from costroute.serve import StreamBudget

    costs = np.asarray(router.normalized_costs_, dtype=float)

    def penalty(r, target, floor):
        return float(penalty_for_budget(r, costs, max(target, float(costs.min())), floor=floor))

    stream = StreamBudget(budget, costs, penalty, window=window, floor_penalty=router.cost_penalty)
    chosen = []
    for row in rows:
        lam = stream.penalty_for(row)
        stream.observe(row)
        k = int(assign_generators(row[None, :], costs, lam)[0])
        high = max(stream.budget, 1.0)
        stream.offset = float(np.clip(stream.offset + stream.gain * (stream.budget - costs[k]), -high, high))
        chosen.append(k)
    return np.asarray(chosen)


def part_budget(args, log) -> dict:
    from costroute.datasets import load_prompts

    prompts = distinct(load_prompts("diffusiondb").prompts, args.stream, np.random.default_rng(1))
    routers = {qm: budget_stream(args, qm, prompts, log) for qm in args.quality_models}
    first = routers[args.quality_models[0]]
    return {
        "setup": {
            "router": "CostAwareRouter(features='complexity', quality_model=each of quality_models) fitted on all "
            f"{first.pop('n_train')} GenAI-Bench prompts (mean human rating); the first is the headline",
            "quality_models": args.quality_models,
            "cost_unit": args.cost_unit,
            "generators": first.pop("generators"),
            "budget": args.budget,
            "window": args.window,
            "prompts": f"{len(prompts)} distinct DiffusionDB prompts, one per request, in a random order",
        },
        "routers": routers,
        "verdicts": {qm: doc.pop("verdicts") for qm, doc in routers.items()},
    }


def budget_stream(args, quality_model: str, prompts: list[str], log) -> dict:
    """One router's stream of ``/v1/route`` decisions under the budget, and what to compare it with."""
    import httpx

    from costroute.routing import assign_generators
    from costroute.serve import create_app

    router, data = genai_router(args.cost_unit, quality_model)
    W, B = args.window, args.budget
    app = create_app(router, budget=B, window=W, seed=0)
    decisions, latency = [], []
    log(f"budget ({quality_model}): {len(prompts)} prompts one at a time through /v1/route, budget {B}, window {W}")
    with (
        ServerThread(app) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
        progress_bar(len(prompts), "route stream", args.progress) as bar,
    ):
        for p in prompts:
            t0 = time.perf_counter()
            r = client.post("/v1/route", json={"prompt": p})
            latency.append(time.perf_counter() - t0)
            r.raise_for_status()
            decisions.append(r.json()["data"][0])
            bar.update()
        metrics = scrape(server.url)
    charged = np.array([d["charged_normalized_cost"] for d in decisions], dtype=float)
    quality = np.array([d["predicted_quality"] for d in decisions], dtype=float)
    guarded = np.array([d["budget_guard"] for d in decisions], dtype=bool)
    lams = np.array([d["cost_penalty"] for d in decisions], dtype=float)
    names = list(router.generator_names_)
    costs = np.asarray(router.normalized_costs_, dtype=float)
    served = np.array([names.index(d["generator"]) for d in decisions])
    rows = router.predict_quality(prompts)
    means = window_means(charged, W)
    after_first = means[W:]
    blocks = [float(charged[s : s + W].mean()) for s in range(W, len(charged) - W + 1, W)]
    lo, hi = B * (1 - TARGETS["window_tolerance"]), B * (1 + TARGETS["window_tolerance"])
    mean_cost = float(charged.mean())
    plan = router.route(prompts, budget=mean_cost)
    gap = float(quality.mean() - plan.mean_expected_quality)
    # what the guard gave up: the generator the λ rule chose, against the cheapest it served instead
    intended = np.array([int(assign_generators(r[None, :], costs, lam)[0]) for r, lam in zip(rows, lams)])
    given_up = rows[guarded, intended[guarded]] - rows[guarded, served[guarded]]
    unguarded = replay_without_guard(router, rows, B, W)
    free_costs = costs[unguarded]
    free_plan = router.route(prompts, budget=float(free_costs.mean()))
    free_means = window_means(free_costs, W)[W:]
    plan_means = window_means(plan.normalized_costs, W)[W:]
    doc = {
        "n_train": len(data.prompts),
        "generators": dict(zip(names, costs.tolist())),
        "route_latency_ms": quantiles_ms(latency),
        "windows_after_first": {
            "count": int(after_first.size),
            "min": float(after_first.min()) if after_first.size else math.nan,
            "max": float(after_first.max()) if after_first.size else math.nan,
            "mean": float(after_first.mean()) if after_first.size else math.nan,
            "share_within_tolerance": float(((after_first >= lo) & (after_first <= hi)).mean())
            if after_first.size
            else math.nan,
        },
        "blocks_after_first": blocks,
        "first_window_mean": float(charged[:W].mean()),
        "mean_cost": mean_cost,
        "max_window_mean_all": float(means.max()),
        "stream_mean_predicted_quality": float(quality.mean()),
        "batch_at_same_cost": {
            "mean_cost": plan.mean_normalized_cost,
            "mean_predicted_quality": plan.mean_expected_quality,
            "cost_penalty": plan.cost_penalty,
        },
        "quality_gap": gap,
        "generator_share": {g: float((served == k).mean()) for k, g in enumerate(names)},
        "cost_penalty_p5_p95": np.percentile(lams, [5, 95]).tolist(),
        "metrics_window_mean_cost": metrics.get("costroute_window_mean_cost"),
        "diagnostics": {
            "guarded_decisions": int(guarded.sum()),
            "predicted_quality_given_up_per_guarded_decision": float(given_up.mean()) if given_up.size else 0.0,
            "predicted_quality_p5_p95_per_generator": np.percentile(rows, [5, 95], axis=0).T.tolist(),
            "batch_plan_window_means_in_stream_order": {
                "min": float(plan_means.min()) if plan_means.size else math.nan,
                "max": float(plan_means.max()) if plan_means.size else math.nan,
            },
            "replay_without_guard": {
                "mean_cost": float(free_costs.mean()),
                "window_min": float(free_means.min()) if free_means.size else math.nan,
                "window_max": float(free_means.max()) if free_means.size else math.nan,
                "quality_gap": float(rows[np.arange(len(rows)), unguarded].mean() - free_plan.mean_expected_quality),
            },
        },
    }
    doc["verdicts"] = {
        "windows_met": bool(after_first.size and after_first.min() >= lo and after_first.max() <= hi),
        "quality_met": abs(gap) <= TARGETS["quality_gap"],
    }
    w = doc["windows_after_first"]
    log(
        f"budget ({quality_model}): windows after the first in [{w['min']:.4f}, {w['max']:.4f}] (target [{lo:.4f}, {hi:.4f}]), "
        f"mean cost {mean_cost:.4f}, quality gap {gap:+.4f}, guarded {int(guarded.sum())}"
    )
    return doc


# ---------------------------------------------------------------------------------------------- 3. loop
def encode_rating(rating: float):
    """An 8x8 RGB image whose every pixel is 3 x rating: a mean of three integer ratings, exactly.

    GenAI-Bench's ratings are 1-5, but its file holds two typos (a 41 and a 33 among the
    ratings of two images), kept by the loader and so here (pixel values up to 255 hold them).
    """
    from PIL import Image

    level = int(round(3 * rating))
    if abs(level - 3 * rating) > 1e-6 or not 0 <= level <= 255:
        raise ValueError(f"not a mean of three integer ratings in [0, 85]: {rating!r}")
    return Image.fromarray(np.full((8, 8, 3), level, dtype=np.uint8))


def decode_rating(image) -> float:
    return float(np.asarray(image, dtype=float).mean()) / 3.0


class RatingPainter:
    """``fn(prompts, seeds)`` of one generator: each image encodes the human rating of (prompt, generator)."""

    def __init__(self, ratings: dict[str, float]):
        self.ratings = ratings

    def __deepcopy__(self, memo):  # the router's copies share the table
        return self

    def __call__(self, prompts, seeds):
        return [encode_rating(self.ratings[p]) for p in prompts]


def read_ratings(prompts, images):
    return [decode_rating(im) for im in images]


def held_out_apgr(router, quality, prompts) -> dict:
    from costroute.evaluation import apgr, deferral_curve, hull_curve, oracle_curve

    Q = quality.to_numpy()
    c = np.asarray(router.normalized_costs_, dtype=float)
    hull, oracle = hull_curve(Q, c).auc(), oracle_curve(Q, c).auc()
    auc = deferral_curve(router, quality, prompts=prompts).auc()
    return {"apgr": apgr(auc, hull, oracle), "auc": auc, "auc_hull": hull, "auc_oracle": oracle}


def serve_phase(app, requests: list[tuple[str, int]], concurrency: int, bar) -> list[dict]:
    import httpx

    async def run(url: str) -> list[dict]:
        out: list[dict] = [None] * len(requests)
        order = iter(range(len(requests)))
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:

            async def worker():
                for i in order:
                    prompt, seed = requests[i]
                    r = await client.post(
                        "/v1/images/generations", json={"prompt": prompt, "costroute": {"seed": seed}}
                    )
                    r.raise_for_status()
                    item = r.json()["data"][0]
                    out[i] = {"prompt": prompt, "b64": item["b64_json"], **item["costroute"]}
                    bar.update()

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return out

    with ServerThread(app) as server:
        return asyncio.run(run(server.url))


def loop_once(args, rep: int, tmp: Path, log) -> dict:
    import base64

    from PIL import Image

    from costroute import CostAwareRouter
    from costroute.collect import collect
    from costroute.datasets import load_collection, load_genai_bench
    from costroute.scoring import CallableScorer
    from costroute.serve import create_app

    data = load_genai_bench(cost_unit=args.cost_unit)
    names = list(data.generators.names)
    prompts = list(data.prompts)
    n = len(prompts)
    rng = np.random.default_rng(100 + rep)
    order = rng.permutation(n)
    n_train, n_pool = args.train_prompts, min(args.pool, n - args.train_prompts - 1)
    train, pool, test = order[:n_train], order[n_train : n_train + n_pool], order[n_train + n_pool :]
    table = {g: {prompts[i]: float(data.quality.iloc[i, k]) for i in range(n)} for k, g in enumerate(names)}
    from costroute.generators import CallableGenerator

    generators = [
        CallableGenerator(
            g, RatingPainter(table[g]), cost=data.generators[g].cost, cost_unit=args.cost_unit, size="8x8"
        )
        for g in names
    ]
    scorer = CallableScorer("human", read_ratings, cost=0.0, cost_unit=args.cost_unit)

    def fit(p, y):
        return CostAwareRouter(copy.deepcopy(generators), features="complexity", quality_model="lowrank").fit(p, y)

    test_prompts = [prompts[i] for i in test]
    test_quality = data.quality.iloc[test]
    store = tmp / f"loop-{rep}.sqlite"
    collect([prompts[i] for i in train], generators, [scorer], store, progress=False)
    with warnings.catch_warnings():  # CallableGenerators come back as plain specs: fitted on, not served
        warnings.simplefilter("ignore", UserWarning)
        first = load_collection(store, scorer="human")
    assert first.quality.notna().all().all() and len(first.prompts) == n_train
    router = fit(first.prompts, first.quality[names])
    reference = fit([prompts[i] for i in np.r_[train, pool]], data.quality.iloc[np.r_[train, pool]])
    doc = {
        "split": {"train": int(n_train), "pool": int(n_pool), "held_out": int(len(test))},
        "first_router": held_out_apgr(router, test_quality, test_prompts),
        "reference_full_matrix": held_out_apgr(reference, test_quality, test_prompts),
        "phases": [],
    }
    draws = rng.choice(pool, size=args.loop_requests, replace=True)
    mismatches = 0
    with progress_bar(args.loop_requests, f"loop {rep}", args.progress) as bar:
        for phase, start in enumerate(range(0, args.loop_requests, args.refit_every)):
            chunk = [(prompts[i], int(start + j)) for j, i in enumerate(draws[start : start + args.refit_every])]
            app = create_app(
                router,
                scorer=scorer,
                budget=args.budget,
                explore=args.explore,
                store=store,
                window=args.window,
                max_batch_size=args.max_batch_size,
                seed=1000 * rep + phase,
            )
            t0 = time.perf_counter()
            served = serve_phase(app, chunk, 4, bar)
            serve_s = time.perf_counter() - t0
            for s in served:  # what came back over HTTP is the rating of what was made, read back by the scorer
                truth = table[s["generator"]][s["prompt"]]
                image = Image.open(io.BytesIO(base64.b64decode(s["b64"])))
                mismatches += int(
                    abs(decode_rating(image.convert("RGB")) - truth) > 1e-9
                    or abs(s["scores"]["human"][s["generator"]] - truth) > 1e-9
                )
            t0 = time.perf_counter()
            with warnings.catch_warnings():  # CallableGenerators come back as plain specs: fitted on, not served
                warnings.simplefilter("ignore", UserWarning)
                stored = load_collection(store, scorer="human", missing="nan")
            Y = stored.quality[names]
            router = fit(stored.prompts, Y)
            refit_s = time.perf_counter() - t0
            scores = np.array([s["scores"]["human"][s["generator"]] for s in served])
            row = {
                "requests_served": start + len(chunk),
                "serve_s": serve_s,
                "refit_s": refit_s,
                "store_prompts": len(stored.prompts),
                "observed_cells": int(Y.notna().to_numpy().sum()),
                "density": float(Y.notna().to_numpy().mean()),
                "observed_per_generator": {g: int(Y[g].notna().sum()) for g in names},
                "served_mean_quality": float(scores.mean()),
                "served_mean_cost": float(np.mean([s["normalized_cost"] for s in served])),
                "explored_share": float(np.mean([s["explored"] for s in served])),
                "guarded": int(sum(s["budget_guard"] for s in served)),
                **held_out_apgr(router, test_quality, test_prompts),
            }
            doc["phases"].append(row)
            log(
                f"loop {rep}: {row['requests_served']} served, {row['observed_cells']} cells "
                f"({row['density']:.0%}), held-out APGR {row['apgr']:.3f} (first {doc['first_router']['apgr']:.3f}, "
                f"full-matrix reference {doc['reference_full_matrix']['apgr']:.3f})"
            )
    doc["rating_mismatches"] = mismatches
    return doc


def part_loop(args, tmp: Path, log) -> dict:
    runs = [loop_once(args, rep, tmp, log) for rep in range(args.loop_repeats)]
    n_phases = len(runs[0]["phases"])
    summary = {
        "first_router_apgr": float(np.mean([r["first_router"]["apgr"] for r in runs])),
        "reference_full_matrix_apgr": float(np.mean([r["reference_full_matrix"]["apgr"] for r in runs])),
        "apgr_after_refit": [float(np.mean([r["phases"][j]["apgr"] for r in runs])) for j in range(n_phases)],
        "apgr_after_refit_std": [float(np.std([r["phases"][j]["apgr"] for r in runs])) for j in range(n_phases)],
        "requests_served": [runs[0]["phases"][j]["requests_served"] for j in range(n_phases)],
        "rating_mismatches": sum(r["rating_mismatches"] for r in runs),
    }
    return {
        "setup": {
            "generators": "CallableGenerators named as GenAI-Bench's; each image's pixels encode the mean human rating "
            "of its (prompt, generator); a CallableScorer (cost 0) reads it back",
            "cost_unit": args.cost_unit,
            "router": "CostAwareRouter(features='complexity', quality_model='lowrank')",
            "train_prompts": args.train_prompts,
            "pool": args.pool,
            "requests": args.loop_requests,
            "drawn": "with replacement from the pool (each pool prompt served several times, with its own seed)",
            "refit_every": args.refit_every,
            "explore": args.explore,
            "budget": args.budget,
            "swap": "the server is stopped and started again with the refitted router (no swap API); same store",
            "repeats": args.loop_repeats,
        },
        "summary": summary,
        "runs": runs,
    }


# ---------------------------------------------------------------------------------------------- main
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", choices=["load", "budget", "loop"], default=["load", "budget", "loop"])
    parser.add_argument("--quick", action="store_true", help="small counts (about two minutes); a _quick JSON")
    parser.add_argument("--requests", type=int, default=1000, help="requests per concurrency (load)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--no-wait-requests", type=int, default=300, help="requests at concurrency 1, batch wait 0")
    parser.add_argument(
        "--soak-rounds", type=int, default=2, help="more rounds at the highest concurrency, each after a baseline"
    )
    parser.add_argument("--client", choices=["openai", "httpx"], default="openai")
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--batch-wait-ms", type=float, default=10.0)
    parser.add_argument("--stream", type=int, default=2000, help="prompts sent to /v1/route (budget)")
    parser.add_argument("--budget", type=float, default=0.25)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--cost-unit", choices=["usd", "flops"], default="usd")
    parser.add_argument(
        "--quality-models",
        nargs="+",
        default=["knn", "ridge", "lowrank"],
        help="the budget part's routers (the first, CostAwareRouter's default, is the headline)",
    )
    parser.add_argument("--train-prompts", type=int, default=50)
    parser.add_argument("--pool", type=int, default=300, help="GenAI-Bench prompts the loop serves; the rest held out")
    parser.add_argument("--loop-requests", type=int, default=2000)
    parser.add_argument("--refit-every", type=int, default=500)
    parser.add_argument("--explore", type=float, default=0.1)
    parser.add_argument("--loop-repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.requests < 4 or args.refit_every < 1 or args.stream < 2 * args.window:
        parser.error("--requests must be >= 4, --refit-every >= 1 and --stream at least twice --window")
    if args.quick:
        args.requests, args.no_wait_requests, args.stream = min(args.requests, 120), 60, min(args.stream, 700)
        args.soak_rounds = 1
        args.loop_requests, args.refit_every, args.loop_repeats = 400, 200, 1
    out = args.out or RESULTS / ("serve_load_quick.json" if args.quick else "serve_load.json")
    t_start = time.perf_counter()

    def log(msg: str) -> None:
        from tqdm.auto import tqdm

        tqdm.write(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", file=sys.stdout)

    if "load" in args.parts:
        import torch

        torch.set_num_threads(args.threads)
    doc = {"targets": TARGETS, "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    runtimes = {}

    def save() -> None:
        doc["runtime_s"] = runtimes
        doc["machine"] = {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "threads": args.threads,
            "load_average_at_end": list(os.getloadavg()),
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(to_json(doc), indent=1) + "\n")

    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        for part, fn in (
            ("load", lambda: part_load(args, Path(tmp), log)),
            ("budget", lambda: part_budget(args, log)),
            ("loop", lambda: part_loop(args, Path(tmp), log)),
        ):
            if part in args.parts:
                t0 = time.perf_counter()
                load = list(os.getloadavg())
                doc[part] = fn()
                doc[part]["load_average_at_start"] = load
                runtimes[part] = time.perf_counter() - t0
                save()  # after each part, so that a failing part keeps the others
    verdicts = {part: doc[part].get("verdicts") for part in ("load", "budget") if part in doc}
    print(json.dumps(to_json(verdicts), indent=1))
    if "loop" in doc:
        print(json.dumps(to_json(doc["loop"]["summary"]), indent=1))
    print(f"wrote {out} ({sum(runtimes.values()):.0f} s)")


if __name__ == "__main__":
    main()
