"""Kill a collection with SIGKILL part-way, run it again, and check the store.

Builds two tiny Stable Diffusion pipelines and a tiny CLIP model (random weights, offline),
starts ``costroute collect`` in a subprocess (``--n-prompts`` prompts x 3 generators x 2 seeds,
batches of ``--batch-size``, images saved), polls the store until ``--kill-at`` of the images
are committed, kills the process with SIGKILL, checks the store, runs the same command again
and checks it once more. Checked each time: SQLite's integrity check, images and scores,
duplicate images or scores (must be 0), images without their score (partial rows, must be
0), saved files whose name is not the hash of their bytes (must be 0); after the rerun, that
every cell is present and that the rerun generated exactly the missing images.

With ``--backend ray`` both runs go through the Ray backend (``--workers`` actors) on one
local Ray instance that this script starts and the two runs attach to (``--address``): the
kill takes the driver down while its actors are working.

Prints the counts and writes ``benchmarks/results/collect_resume.json``
(``collect_resume_ray.json`` with ``--backend ray``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def check(store: Path, images: Path) -> dict:
    """Counts of the store's rows and of every kind of defect."""
    with sqlite3.connect(store) as conn:
        q = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        n_scorers = q("SELECT COUNT(*) FROM scorers")
        counts = {
            "integrity_check": q("PRAGMA integrity_check"),
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
            "images_without_file": sum(not os.path.isfile(p) for (p,) in conn.execute("SELECT path FROM images")),
        }
        stored = {p for (p,) in conn.execute("SELECT path FROM images")}
    files = sorted(images.glob("*.png")) if images.is_dir() else []
    counts["files"] = len(files)
    counts["files_not_named_by_their_hash"] = sum(
        f.name != hashlib.sha256(f.read_bytes()).hexdigest() + ".png" for f in files
    )
    counts["files_without_row"] = sum(str(f) not in stored for f in files)  # made, not committed: harmless
    counts["temporary_files"] = len(list(images.glob(".tmp-*"))) if images.is_dir() else 0
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-prompts", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--kill-at", type=float, default=0.4, help="share of the images committed before the kill")
    parser.add_argument("--backend", choices=["local", "ray"], default="local")
    parser.add_argument("--workers", type=int, default=2, help="Ray actors (with --backend ray)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.out is None:
        args.out = RESULTS / ("collect_resume.json" if args.backend == "local" else "collect_resume_ray.json")

    from costroute.generators import build_tiny_pipeline
    from costroute.scoring import build_tiny_clip

    tmp = Path(tempfile.mkdtemp(prefix="collect-resume-"))
    sd_a = build_tiny_pipeline(tmp / "tiny-sd-a", seed=0)
    sd_b = build_tiny_pipeline(tmp / "tiny-sd-b", seed=1)
    clip = build_tiny_clip(tmp / "tiny-clip", seed=3)
    prompts = tmp / "prompts.txt"
    prompts.write_text("".join(f"a photo of object number {i} on a table\n" for i in range(args.n_prompts)))
    store, images = tmp / "run.sqlite", tmp / "images"
    total = args.n_prompts * 3 * 2
    command = [
        sys.executable,
        "-m",
        "costroute.cli",
        "collect",
        str(prompts),
        "--generators",
        f"a2=diffusers:{sd_a}:2",
        f"a4=diffusers:{sd_a}:4",
        f"b2=diffusers:{sd_b}:2",
        "--scorer",
        f"clip:{clip}",
        "--store",
        str(store),
        "--seeds",
        "2",
        "--batch-size",
        str(args.batch_size),
        "--save-images",
        str(images),
    ]
    if args.backend == "ray":
        import ray

        context = ray.init(num_cpus=args.workers, include_dashboard=False, configure_logging=False)
        command += [
            "--backend",
            "ray",
            "--workers",
            str(args.workers),
            "--address",
            context.address_info["gcs_address"],
        ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}

    # 1. run, and kill it with SIGKILL once enough batches are committed
    started = time.perf_counter()
    log = open(tmp / "killed-run.log", "w+b")  # a file, not a pipe that could fill up and block the run
    process = subprocess.Popen([*command, "-q"], env=env, stdout=subprocess.DEVNULL, stderr=log)
    target = int(args.kill_at * total)
    committed = 0
    while process.poll() is None:
        if store.exists():
            try:
                with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as conn:
                    committed = conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
            except sqlite3.OperationalError:
                committed = 0
            if committed >= target:
                process.send_signal(signal.SIGKILL)
                break
        time.sleep(0.01)
    status = process.wait()
    if status != -signal.SIGKILL:
        sys.exit(
            f"the collection ended with status {status} before it was killed:\n"
            f"{(tmp / 'killed-run.log').read_text()[-3000:]}"
        )
    killed_after = time.perf_counter() - started
    before = check(store, images)

    # 2. the same command again
    start = time.perf_counter()
    rerun = subprocess.run(command, env=env, capture_output=True, text=True)
    rerun_s = time.perf_counter() - start
    if rerun.returncode != 0:
        sys.exit(f"the rerun failed with status {rerun.returncode}:\n{rerun.stderr[-3000:]}")
    after = check(store, images)
    summary = re.search(r"(\d+) cells written \((\d+) images generated.*?(\d+) already in the store", rerun.stderr)
    written, generated, already = (int(x) for x in summary.groups())

    ok = (
        before["integrity_check"] == after["integrity_check"] == "ok"
        and all(
            before[k] == after[k] == 0
            for k in (
                "duplicate_images",
                "duplicate_scores",
                "partial_images",
                "files_not_named_by_their_hash",
                "temporary_files",
            )
        )
        and 0 < before["images"] < total
        and after["images"] == after["scores"] == total
        and already == before["scores"]
        and generated == total - before["images"]
        and after["images_without_file"] == 0
    )
    result = {
        "backend": args.backend,
        "workers": args.workers if args.backend == "ray" else None,
        "n_prompts": args.n_prompts,
        "generators": 3,
        "seeds": 2,
        "scorers": 1,
        "batch_size": args.batch_size,
        "cells": total,
        "killed_after_s": killed_after,
        "before_rerun": before,
        "after_rerun": after,
        "rerun": {
            "cells_written": written,
            "images_generated": generated,
            "cells_already_stored": already,
            "seconds": rerun_s,
        },
        "passed": ok,
    }
    print(
        f"{args.n_prompts} prompts x 3 generators x 2 seeds x 1 scorer = {total} cells, batches of "
        f"{args.batch_size}, backend {args.backend}; SIGKILL after {killed_after:.1f} s"
    )
    print(f"{'':>30} {'after kill':>11} {'after rerun':>12}")
    for key in before:
        print(f"{key:>30} {before[key]!s:>11} {after[key]!s:>12}")
    print(
        f"rerun: {already} cells already stored, {generated} images generated, {written} cells written "
        f"in {rerun_s:.1f} s: {'PASS' if ok else 'FAIL'}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
