"""GPU check of the verify stage: scorers in float16, and a cascade end to end on CUDA.

Runs offline on a CUDA machine, with random weights built from the configs shipped with
costroute (random weights compute exactly what trained ones do, so timings are real; images
and scores mean nothing):

* ``scorers`` (from ``benchmarks/gpu_scorers.py``): tiny CLIP and LLaVA-style scorers agree
  between CUDA float16 and CPU float32 and across batch sizes; CLIP ViT-L/14 and LLaVA-1.5 7B
  throughput through ``CLIPScorer`` / ``VQAScorer`` against their counted FLOPs;
* ``cascade``: SDXL-Turbo (1 step), SD 1.5 (25 steps) and SDXL (20 steps) presets with random
  float16 weights, and CLIP ViT-L/14 as the scorer, run through ``CascadeRouter.generate``
  (fitted on a simulated training matrix): wall time per prompt, images and scores per
  prompt, time in generation vs scoring, the plain router's time on the same prompts, and
  determinism (the same seed twice gives bit-identical candidates and the same decisions;
  the decisions equal ``simulate`` on the scores the run saw).

Writes ``gpu_verify.json`` into ``$OUT`` (or ``--out``) and prints it. ``--smoke`` runs the same
code on the CPU with shrunken architectures (to check the script). On a machine whose Python
lacks diffusers, carry its wheel (see ``benchmarks/gpu_check.py``).

Run::

    PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/gpu_verify.py --out benchmarks/results/gpu_verify.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import gpu_check  # noqa: E402  (Builder, inject: real architectures with random weights)
import gpu_scorers  # noqa: E402

LAM = 0.6  # SDXL-Turbo first, SDXL when Turbo's image scores badly
WORDS = (
    "a red kite over a crowded park at dusk",
    "a white wall",
    "two cats on a sofa",
    "an astronaut riding a horse",
    "a bowl of ramen, top view",
    "a harbour in the rain with yellow sails",
    "three apples left of a vase",
    "a neon sign that says 'open'",
)


def _prompts(rng, n: int) -> list[str]:
    return [f"{WORDS[int(rng.integers(len(WORDS)))]}, variation {i}" for i in range(n)]


def check_cascade(rng, smoke: bool, clip_folder: str, processor_folder: str | None) -> dict:
    import torch

    from costroute import CascadeRouter, CostAwareRouter, GeneratorRegistry
    from costroute.generators import pipeline_cache, presets
    from costroute.scoring import CLIPScorer

    device = "cpu" if smoke else "cuda"
    dtype = "float32" if smoke else "float16"
    builder = gpu_check.Builder(device, torch.float32 if smoke else torch.float16, smoke)
    pool = []
    for preset, _arch in (("sdxl-turbo-1", "sdxl"), ("sd15-25", "sd15"), ("sdxl-base-20", "sdxl")):
        spec = presets.get(preset, device=device, dtype=dtype)
        if smoke:
            spec = spec.clone(steps=min(spec.settings["steps"], 2), height=64, width=64, cost=spec.cost)
        pool.append(spec)
    # two pipelines and the scorer stay loaded together (the cache holds 2 by default; random weights
    # cannot be reloaded from disk)
    pipeline_cache.max_loaded = 4
    built = {arch: builder.build(arch) for arch in ("sdxl", "sd15")}
    for spec, arch in zip(pool, ("sdxl", "sd15", "sdxl")):
        gpu_check.inject(spec, built[arch])
    registry = GeneratorRegistry(pool)
    scorer = CLIPScorer(
        clip_folder, processor=processor_folder, device=device, dtype=dtype, cost=CLIPScorer().cost
    )  # the counted cost of CLIP ViT-L/14

    # a simulated training matrix: SDXL best on average, SDXL-Turbo as good on half the prompts
    n_train = 240
    train = _prompts(rng, n_train)
    base = rng.normal(3.2, 0.4, size=n_train)
    Q = np.c_[base - 0.6 * (rng.uniform(size=n_train) < 0.5), base - 0.4, base + 0.1] + 0.2 * rng.normal(
        size=(n_train, 3)
    )
    S = 20 + 2 * Q + 0.5 * rng.normal(size=Q.shape)
    router = CostAwareRouter(registry, features="complexity", quality_model="knn", progress=False)
    cascade = CascadeRouter(router, scorer=scorer, cost_penalty=LAM, random_state=0).fit(train, Q, scores=S)
    test = _prompts(rng, 8 if smoke else 32)

    def timed(fn):
        gpu_check.sync()
        start = time.perf_counter()
        out = fn()
        gpu_check.sync()
        return time.perf_counter() - start, out

    timed(lambda: cascade.generate(test[:2], seed=1, batch_size=2, progress=False))  # warm-up
    seconds, first = timed(lambda: cascade.generate(test, seed=0, batch_size=8, progress=False))
    _, again = timed(lambda: cascade.generate(test, seed=0, batch_size=8, progress=False))
    router_seconds, plain = timed(
        lambda: cascade.router_.route(test, cost_penalty=LAM).generate(seed=0, batch_size=8, progress=False)
    )
    same_candidates = all(
        a.keys() == b.keys() and all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in a)
        for a, b in zip(first.candidates, again.candidates)
    )
    # the decisions equal the offline replay on the scores the run saw (unscored cells are never read)
    seen = np.nan_to_num(first.score_matrix, nan=0.0)
    replay = cascade.simulate(test, scores=seen)
    frame = first.to_frame()
    scoring_seconds = timed(lambda: scorer.score(test, first.images, batch_size=8, progress=False))[0]
    out = {
        "device": device,
        "dtype": dtype,
        "prompts": len(test),
        "cost_penalty": LAM,
        "generators": {s.name: {"steps": s.settings["steps"], "tflops_per_image": s.cost / 1e12} for s in pool},
        "scorer_gflops_per_image": scorer.cost / 1e9,
        "cascade_seconds": round(seconds, 3),
        "cascade_seconds_per_prompt": round(seconds / len(test), 4),
        "router_seconds": round(router_seconds, 3),
        "cascade_over_router_time": round(seconds / router_seconds, 3),
        "images_per_prompt": float(frame["n_images"].mean()),
        "scores_per_prompt": float(frame["n_scores"].mean()),
        "returned_counts": frame["returned"].value_counts().to_dict(),
        "first_counts": frame["tried"].str.split(" > ").str[0].value_counts().to_dict(),
        "mean_normalized_cost": float(first.normalized_cost.mean()),
        "router_mean_normalized_cost": float(
            np.mean([registry[g].cost for g in plain.to_frame()["generator"]]) / max(registry.costs)
        ),
        "scoring_seconds_per_image_batch8": round(scoring_seconds / len(test), 4),
        "deterministic_candidates": bool(same_candidates),
        "deterministic_decisions": first.order == again.order and first.returned == again.returned,
        "decisions_equal_simulate": [tuple(o) for o in first.order] == replay.order
        and first.returned == replay.returned.tolist(),
        "scores_finite": bool(np.isfinite(first.score_matrix[~np.isnan(first.score_matrix)]).all()),
        "complete": first.complete,
        "build_seconds": {k: round(v, 1) for k, v in builder.seconds.items()},
    }
    if not smoke:
        out["peak_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
    pipeline_cache.clear()
    if not smoke:
        torch.cuda.empty_cache()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(os.environ.get("OUT", "/tmp"), "gpu_verify.json"))
    parser.add_argument("--smoke", action="store_true", help="CPU, shrunken architectures, tiny scorers only")
    parser.add_argument("--skip-llava", action="store_true", help="skip the 7B VQAScore throughput check")
    args = parser.parse_args(argv)
    import torch
    import transformers

    if not torch.cuda.is_available() and not args.smoke:
        print("no CUDA device: nothing to check (use --smoke to check the script on a CPU)")
        return 0
    started = time.time()
    rng = np.random.default_rng(0)
    report: dict = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "gpu": None if args.smoke else torch.cuda.get_device_name(0),
        "smoke": args.smoke,
    }
    try:
        import diffusers

        report["diffusers"] = diffusers.__version__
    except ImportError:
        report["diffusers"] = None
    checks = []
    if not args.smoke:
        checks += [
            ("scorers_tiny", lambda: gpu_scorers.check_tiny(rng)),
            ("scorer_clip_l14", lambda: gpu_scorers.check_clip_l14(rng)),
        ]
        if not args.skip_llava:
            checks.append(("scorer_llava_7b", lambda: gpu_scorers.check_llava_7b(rng)))
        checks.append(("cascade", lambda: check_cascade(rng, False, "/tmp/clip-l14-random", "/tmp/clip-l14-processor")))
    else:
        from costroute.scoring import build_tiny_clip

        clip = build_tiny_clip("/tmp/gpu-verify-tiny-clip", seed=3)
        checks.append(("cascade", lambda: check_cascade(rng, True, clip, None)))
    for name, check in checks:
        start = time.time()
        try:
            report[name] = check()
        except Exception as exc:  # report and go on with the next check
            report[name] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-3000:]}
        report[name + "_seconds"] = round(time.time() - start, 1)
        print(name, json.dumps(report[name], default=str), flush=True)
    report["total_seconds"] = round(time.time() - started, 1)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1, default=str)
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
