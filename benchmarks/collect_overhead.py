"""Collection overhead: ``collect`` against a bare loop of the same pipeline calls at the same batch size.

A tiny Stable Diffusion pipeline and a tiny CLIP model (random weights, built offline) make
and score ``--n-prompts`` images in batches of ``--batch-size``. The bare loop calls
``generator.generate_images`` and ``scorer.score`` on each batch and keeps nothing; ``collect``
makes the same calls (same prompts, seeds and batches) and adds what collecting costs:
planning, seeds, SQLite writes (WAL, ``synchronous=NORMAL``, one transaction per batch) and
bookkeeping. The time a collect run spends outside the model calls (timed around
them) is reported too: it is the overhead itself, without the machine's noise. Both run
with the models already loaded, on one torch thread, interleaved
``--repeats`` times (the order alternates); each repeat gives a ratio collect / bare.
Target: the median ratio <= 1.10. Tiny models are the worst case: with real models a batch takes seconds and the same
bookkeeping costs nothing in comparison.

Prints a table and writes ``benchmarks/results/collect_overhead.json``.
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
TARGET = 1.10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-prompts", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4, help="denoising steps of the tiny pipeline")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS / "collect_overhead.json")
    args = parser.parse_args()

    import torch

    from costroute.collect import collect, image_seed_for
    from costroute.generators import DiffusersGenerator, build_tiny_pipeline
    from costroute.scoring import CLIPScorer, build_tiny_clip

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="collect-overhead-"))
    generator = DiffusersGenerator("tiny", build_tiny_pipeline(tmp / "sd", seed=0), steps=args.steps)
    scorer = CLIPScorer(build_tiny_clip(tmp / "clip", seed=3))
    prompts = [f"a photo of object number {i} on a table" for i in range(args.n_prompts)]
    seeds = [image_seed_for(0, p, generator.name) for p in prompts]
    b = args.batch_size

    def bare() -> None:
        for start in range(0, len(prompts), b):
            images = generator.generate_images(prompts[start : start + b], seeds[start : start + b])
            scorer.score(prompts[start : start + b], images, progress=False)

    model_s = [0.0]  # time spent inside the model calls during a collect run

    def timed_method(obj, name):
        method = getattr(obj, name)

        def call(*a, **k):
            start = time.perf_counter()
            try:
                return method(*a, **k)
            finally:
                model_s[0] += time.perf_counter() - start

        return call

    def collected(run: int) -> None:
        # the same objects, with their model calls timed (an instance attribute, for this run only)
        generator.generate_images = timed_method(generator, "generate_images")
        scorer.score = timed_method(scorer, "score")
        try:
            summary = collect(prompts, [generator], [scorer], tmp / f"run{run}.sqlite", batch_size=b, progress=False)
        finally:
            del generator.generate_images, scorer.score
        assert summary.images_generated == len(prompts) and summary.complete

    generator.load(), scorer.load()
    bare(), collected(-1)  # warm-up: first calls, FLOPs counted once per process
    bare_s, collect_s, bookkeeping_s = [], [], []
    for run in range(args.repeats):
        pair = [(bare, bare_s), (lambda: collected(run), collect_s)]
        for fn, out in pair if run % 2 == 0 else pair[::-1]:  # alternate the order: drift cancels out
            model_s[0] = 0.0
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
            if out is collect_s:
                bookkeeping_s.append(collect_s[-1] - model_s[0])
    ratios = [c / r for c, r in zip(collect_s, bare_s)]
    result = {
        "n_prompts": args.n_prompts,
        "batch_size": b,
        "steps": args.steps,
        "repeats": args.repeats,
        "torch_threads": 1,
        "bare_s": bare_s,
        "collect_s": collect_s,
        "ratios": ratios,
        "median_ratio": statistics.median(ratios),
        "min_ratio": min(ratios),
        "max_ratio": max(ratios),
        "ratio_of_fastest_runs": min(collect_s) / min(bare_s),
        "bookkeeping_s": bookkeeping_s,
        "bookkeeping_share_of_bare": statistics.median(k / r for k, r in zip(bookkeeping_s, bare_s)),
        "overhead_ms_per_image": 1000 * (statistics.median(collect_s) - statistics.median(bare_s)) / args.n_prompts,
        "target_ratio": TARGET,
        "passed": statistics.median(ratios) <= TARGET,
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
    }
    print(f"{args.n_prompts} images, batch {b}, {args.steps} steps, tiny SD + tiny CLIP, 1 torch thread")
    print(f"{'repeat':>6} {'bare s':>8} {'collect s':>10} {'ratio':>7} {'bookkeeping s':>14}")
    for i, (r, c, q, k) in enumerate(zip(bare_s, collect_s, ratios, bookkeeping_s)):
        print(f"{i:>6} {r:>8.3f} {c:>10.3f} {q:>7.3f} {k:>14.4f}")
    print(
        f"median ratio {result['median_ratio']:.3f} (target <= {TARGET}), fastest collect / fastest bare "
        f"{result['ratio_of_fastest_runs']:.3f}, "
        f"time outside the model calls {100 * result['bookkeeping_share_of_bare']:.1f}% of the bare loop: "
        f"{'PASS' if result['passed'] else 'FAIL'}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
