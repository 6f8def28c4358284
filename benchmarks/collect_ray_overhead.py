"""What the Ray backend adds over the local one: a fixed start-up cost and a cost per image.

The same collection (tiny Stable Diffusion pipeline + tiny CLIP scorer, random weights built
offline, ``--batch-size`` images per unit) runs with ``backend="local"`` (one torch thread)
and with ``RayBackend(num_workers=1)`` (one actor on one CPU, which Ray gives one thread) on
a local Ray instance started beforehand (its start is not counted), at two sizes. Every Ray
run starts its own actor, which imports torch and loads the pipeline: that is the fixed
cost. The difference between the two sizes gives the cost per image, free of it:

    per_image_ratio = (ray(n_large) - ray(n_small)) / (local(n_large) - local(n_small))

Tiny models are the worst case: with real models a unit takes seconds and the actor start
is paid once per run. Prints a table and writes
``benchmarks/results/collect_ray_overhead.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[24, 120], metavar=("SMALL", "LARGE"))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "collect_ray_overhead.json")
    args = parser.parse_args()

    import ray
    import torch

    from costroute.collect import RayBackend, collect
    from costroute.generators import DiffusersGenerator, build_tiny_pipeline
    from costroute.scoring import CLIPScorer, build_tiny_clip

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="collect-ray-overhead-"))
    sd, clip = build_tiny_pipeline(tmp / "sd", seed=0), build_tiny_clip(tmp / "clip", seed=3)
    ray.init(num_cpus=1, include_dashboard=False, configure_logging=False)

    def run(backend, n: int, tag: str) -> float:
        generator = DiffusersGenerator("tiny", sd, steps=args.steps)
        prompts = [f"a photo of object number {i} on a table" for i in range(n)]
        start = time.perf_counter()
        summary = collect(
            prompts,
            [generator],
            [CLIPScorer(clip)],
            tmp / f"{tag}.sqlite",
            batch_size=args.batch_size,
            backend=backend,
            progress=False,
        )
        seconds = time.perf_counter() - start
        assert summary.complete and summary.images_generated == n
        return seconds

    run("local", args.sizes[0], "warm")  # first calls in this process: model load, FLOP count
    times = {b: {n: [] for n in args.sizes} for b in ("local", "ray")}
    for r in range(args.repeats):
        for n in args.sizes:
            times["local"][n].append(run("local", n, f"local-{r}-{n}"))
            times["ray"][n].append(run(RayBackend(num_workers=1), n, f"ray-{r}-{n}"))
            print(f"repeat {r} n={n}: local {times['local'][n][-1]:.2f} s, ray {times['ray'][n][-1]:.2f} s", flush=True)
    ray.shutdown()
    med = {b: {n: statistics.median(v) for n, v in t.items()} for b, t in times.items()}
    small, large = args.sizes
    per_image = {b: (med[b][large] - med[b][small]) / (large - small) for b in med}
    fixed = med["ray"][small] - per_image["ray"] * small - (med["local"][small] - per_image["local"] * small)
    result = {
        "sizes": args.sizes,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "repeats": args.repeats,
        "seconds": times,
        "median_seconds": med,
        "per_image_s": per_image,
        "per_image_ratio": per_image["ray"] / per_image["local"],
        "ray_fixed_start_s": fixed,
        "total_ratio": {n: med["ray"][n] / med["local"][n] for n in args.sizes},
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_end": os.getloadavg(),
        },
    }
    print(
        f"per image: local {1000 * per_image['local']:.1f} ms, ray {1000 * per_image['ray']:.1f} ms "
        f"(ratio {result['per_image_ratio']:.2f}); ray's fixed start per run {fixed:.1f} s; total ratio "
        + ", ".join(f"n={n}: {v:.2f}" for n, v in result["total_ratio"].items())
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
