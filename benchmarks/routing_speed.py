"""Routing speed: is routing free next to embedding, and does the cache make grid search cheap?

1. 10,000 real DiffusionDB prompts: time of the MiniLM embedding alone vs ``router.route``
   (embedding + quality prediction + routing), each from a cold embedding cache with the
   model already loaded. Target: route <= 1.15 x embedding.
2. GenAI-Bench (527 prompts): ``GridSearchCV`` over 10 cost penalties x 5 folds vs one
   fit + predict, both from a cold cache. Target: grid search <= 3 x fit + predict, since
   each prompt is embedded once and re-used by every clone.

Timings are wall-clock on this machine; the ratios are what to compare across machines.
Prints a table and writes ``benchmarks/results/routing_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import GridSearchCV, KFold

from costroute import CostAwareRouter
from costroute.datasets import load_genai_bench, load_prompts
from costroute.features import SentenceEmbedder, clear_embedding_cache
from costroute.metrics import make_routing_scorer

RESULTS = Path(__file__).resolve().parent / "results"


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-prompts", type=int, default=10_000, help="DiffusionDB prompts to route")
    parser.add_argument("--repeats", type=int, default=2, help="cold runs of each timing (the minimum is kept)")
    parser.add_argument("--out", type=Path, default=RESULTS / "routing_speed.json")
    args = parser.parse_args()

    data = load_genai_bench(cost_unit="flops")
    prompts = load_prompts("diffusiondb").prompts[: args.n_prompts]
    router = CostAwareRouter(data.generators).fit(data.prompts, data.quality)
    embedder = SentenceEmbedder().fit(prompts[:1])  # loads the model once, outside the timings

    embed_times, route_times = [], []
    for _ in range(args.repeats):
        clear_embedding_cache(models=False)
        embed_times.append(timed(lambda: embedder.transform(prompts))[0])
        clear_embedding_cache(models=False)
        t, plan = timed(lambda: router.route(prompts, budget=0.3))
        route_times.append(t)
    assert len(plan) == len(prompts)
    embed_s, route_s = min(embed_times), min(route_times)

    cv = KFold(5, shuffle=True, random_state=0)
    penalties = list(np.linspace(0.0, 1.0, 10))
    one_times, grid_times = [], []
    for _ in range(args.repeats):
        clear_embedding_cache(models=False)
        one_times.append(
            timed(lambda: CostAwareRouter(data.generators).fit(data.prompts, data.quality).predict(data.prompts))[0]
        )
        clear_embedding_cache(models=False)
        search = GridSearchCV(
            CostAwareRouter(data.generators),
            {"cost_penalty": penalties},
            scoring=make_routing_scorer(cost_weight=0.3),
            cv=cv,
        )
        grid_times.append(timed(lambda: search.fit(data.prompts, data.quality))[0])
    one_s, grid_s = min(one_times), min(grid_times)

    figures = {
        "n_prompts_routed": len(prompts),
        "embedding_s": embed_s,
        "route_s": route_s,
        "route_over_embedding": route_s / embed_s,
        "route_prompts_per_s": len(prompts) / route_s,
        "route_shares": {k: float(v) for k, v in plan.summary()["share"].items()},
        "gridsearch_candidates": len(penalties),
        "gridsearch_folds": cv.get_n_splits(),
        "one_fit_predict_s": one_s,
        "gridsearch_s": grid_s,
        "gridsearch_over_one_fit_predict": grid_s / one_s,
        "gridsearch_best_cost_penalty": float(search.best_params_["cost_penalty"]),
        "all_runs_s": {
            "embedding": embed_times,
            "route": route_times,
            "one_fit_predict": one_times,
            "gridsearch": grid_times,
        },
        "targets": {
            "route_over_embedding <= 1.15": route_s / embed_s <= 1.15,
            "gridsearch_over_one_fit_predict <= 3": grid_s / one_s <= 3.0,
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }
    print(
        f"route {len(prompts)} DiffusionDB prompts: embedding alone {embed_s:.2f} s, route() {route_s:.2f} s "
        f"-> ratio {figures['route_over_embedding']:.3f} (target <= 1.15); {figures['route_prompts_per_s']:.0f} prompts/s"
    )
    print(
        f"GridSearchCV {len(penalties)} penalties x 5 folds: {grid_s:.2f} s vs one fit+predict {one_s:.2f} s "
        f"-> ratio {figures['gridsearch_over_one_fit_predict']:.2f} (target <= 3)"
    )
    print("routes at budget 0.3:", {k: round(v, 3) for k, v in figures["route_shares"].items()})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
