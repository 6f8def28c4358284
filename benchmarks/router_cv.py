"""CostAwareRouterCV out of sample on GenAI-Bench (USD): does choosing the configuration by inner AUC pay?

Outer: ``cross_validate_routing`` by prompt (5 folds x 3 repeats by default), the same folds
for every method. Inside each outer training set, CostAwareRouterCV chooses features x quality
model from the default grid by inner 3-fold CV on the deferral AUC, once with the plain best
rule and once with the one-standard-error rule, and refits. Every grid member also runs on
its own, so the selection can be compared with each candidate's outer score on the same fold.

Reported: APGR and quality at λ=0 minus the best single generator (targets 0.15 and 0.05),
the configuration picked per outer fold, the interaction r with its noise ceiling, and a
diagnosis of the selection: the spread of the candidates' inner mean AUCs against the inner
standard error, and how well the inner ranking predicts the outer one.

Usage::

    COSTROUTE_DATA=../shared/data .venv/bin/python benchmarks/router_cv.py            # full
    COSTROUTE_DATA=../shared/data .venv/bin/python benchmarks/router_cv.py --quick    # smoke

Writes ``benchmarks/results/router_cv.json`` (``router_cv_quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import limit_threads_from_argv, to_json  # noqa: E402

limit_threads_from_argv()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from costroute import CostAwareRouter, CostAwareRouterCV  # noqa: E402
from costroute.evaluation import cross_validate_routing, noise_ceiling, report_to_markdown, routing_report  # noqa: E402
from costroute.router_cv import default_param_grid  # noqa: E402

RULES = {"CostAwareRouterCV (best)": "best", "CostAwareRouterCV (one_se)": "one_se"}
TARGETS = {"apgr": 0.15, "gain": 0.05}


def name_of(params: dict) -> str:
    return f"{params['features']}/{params['quality_model']}"


def embedding_cache_timing(data, seed):
    """Seconds of a first minilm fit (model load + embedding) and of a second one (cached texts)."""
    from costroute.features import clear_embedding_cache

    clear_embedding_cache()
    out = {}
    for label in ("first_fit_s", "second_fit_s"):
        t0 = time.perf_counter()
        CostAwareRouter(
            data.generators, features="minilm", quality_model="ridge", random_state=seed, progress=False
        ).fit(data.prompts, data.quality)
        out[label] = time.perf_counter() - t0
    return out


def selection_diagnostics(res, grid_names):
    """Per outer fold: the pick, the inner spread vs noise, and inner-vs-outer agreement."""
    scores = res.scores.set_index(["repeat", "fold", "method"])
    rows = []
    for (rep, fold), models in sorted(res.models.items()):
        for label in RULES:
            search = models[label]
            cvr = search.cv_results_
            names = [name_of(p) for p in cvr["params"]]
            inner = np.asarray(cvr["mean_test_auc"])
            se = np.asarray(cvr["std_test_auc"]) / np.sqrt(search.n_splits_)
            outer = np.array([scores.loc[(rep, fold, n), "auc"] for n in names])
            picked = name_of(search.best_params_)
            rows.append(
                {
                    "repeat": rep,
                    "fold": fold,
                    "rule": label,
                    "picked": picked,
                    "inner_best": names[int(np.argmax(inner))],
                    "outer_best": names[int(np.argmax(outer))],
                    "inner_spread": float(inner.max() - inner.min()),
                    "inner_top_gap": float(np.sort(inner)[-1] - np.sort(inner)[-2]),
                    "inner_se_of_best": float(se[int(np.argmax(inner))]),
                    "n_within_one_se": int(np.sum(inner >= inner.max() - se[int(np.argmax(inner))])),
                    "inner_outer_spearman": float(spearmanr(inner, outer).statistic),
                    "outer_regret": float(outer.max() - scores.loc[(rep, fold, label), "auc"]),
                    "outer_apgr_picked": float(scores.loc[(rep, fold, label), "apgr"]),
                }
            )
    return pd.DataFrame(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 folds, 1 repeat, complexity and minilm")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--inner-cv", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads (set before imports)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    grid = default_param_grid()
    if args.quick:
        args.folds, args.repeats = 2, 1
        grid = {"features": ["complexity", "minilm"], "quality_model": ["ridge", "knn"]}
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:  # pragma: no cover
        pass
    from costroute.datasets import load_genai_bench

    t_start = time.perf_counter()
    load0 = os.getloadavg()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", flush=True)

    data = load_genai_bench(cost_unit="usd")
    log(f"GenAI-Bench USD: {len(data.prompts)} prompts x {len(data.generators.names)} generators; grid {grid}")
    cache = embedding_cache_timing(data, args.seed)
    log(f"minilm fit: first {cache['first_fit_s']:.1f}s, second (cached embeddings) {cache['second_fit_s']:.2f}s")

    routers = {
        label: CostAwareRouterCV(
            data.generators, grid, cv=args.inner_cv, selection=rule, random_state=args.seed, progress=False
        )
        for label, rule in RULES.items()
    }
    members = [{"features": f, "quality_model": q} for f in grid["features"] for q in grid["quality_model"]]
    for p in members:
        routers[name_of(p)] = CostAwareRouter(data.generators, random_state=args.seed, progress=False, **p)
    res = cross_validate_routing(
        routers,
        data.prompts,
        data.quality,
        cv=args.folds,
        n_repeats=args.repeats,
        random_state=args.seed,
        return_models=True,
        progress=args.progress,
        ratings=data.ratings,
    )
    log(f"cross-validation done in {res.info['wall_time']:.0f}s")
    report = routing_report(res)
    pooled = routing_report(res, pooled=True)
    diag = selection_diagnostics(res, [name_of(p) for p in members])
    res.models = {}
    ceiling = noise_ceiling(data.ratings)
    fit_times = res.scores.groupby("method")["fit_time"].mean()

    rules = {}
    for label in RULES:
        d = diag[diag["rule"] == label]
        row = report.loc[label]
        rules[label] = {
            "apgr": {
                "mean": row["apgr_mean"],
                "std": row["apgr_std"],
                "target": TARGETS["apgr"],
                "met": bool(row["apgr_mean"] >= TARGETS["apgr"]),
            },
            "gain": {
                "mean": row["gain_mean"],
                "std": row["gain_std"],
                "target": TARGETS["gain"],
                "met": bool(row["gain_mean"] >= TARGETS["gain"]),
            },
            "pooled_apgr": pooled.loc[label, "apgr_mean"],
            "pooled_gain": pooled.loc[label, "gain_mean"],
            "interaction_r": row["interaction_r_mean"],
            "picked_per_fold": {f"{r}/{f}": p for r, f, p in d[["repeat", "fold", "picked"]].itertuples(index=False)},
            "picked_counts": d["picked"].value_counts().to_dict(),
            "mean_fit_time_s": fit_times[label],
        }
    grid_rows = report.loc[[name_of(p) for p in members]]
    summary = {
        "rules": rules,
        "grid_members": {
            m: {
                "apgr": grid_rows.loc[m, "apgr_mean"],
                "gain": grid_rows.loc[m, "gain_mean"],
                "auc": grid_rows.loc[m, "auc_mean"],
                "interaction_r": grid_rows.loc[m, "interaction_r_mean"],
            }
            for m in grid_rows.index
        },
        "best_grid_member_in_hindsight": {
            "apgr": float(grid_rows["apgr_mean"].max()),
            "gain": float(grid_rows["gain_mean"].max()),
            "method_by_apgr": str(grid_rows["apgr_mean"].idxmax()),
        },
        "selection_diagnostics": {
            "mean_inner_spread_auc": float(diag["inner_spread"].mean()),
            "mean_inner_top_gap_auc": float(diag["inner_top_gap"].mean()),
            "mean_inner_se_of_best_auc": float(diag["inner_se_of_best"].mean()),
            "mean_candidates_within_one_se": float(diag["n_within_one_se"].mean()),
            "mean_inner_outer_spearman": float(diag["inner_outer_spearman"].mean()),
            "share_inner_best_is_outer_best": float((diag["inner_best"] == diag["outer_best"]).mean()),
            "mean_outer_regret_auc": diag.groupby("rule")["outer_regret"].mean().to_dict(),
        },
        "noise_ceiling": ceiling.to_dict(),
        "embedding_cache": cache,
    }
    meta = {
        "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
        "folds": args.folds,
        "repeats": args.repeats,
        "inner_cv": args.inner_cv,
        "seed": args.seed,
        "threads": args.threads,
        "grid": grid,
        "total_wall_time_s": time.perf_counter() - t_start,
        "load_average_start": load0,
        "load_average_end": os.getloadavg(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    doc = to_json(
        {
            "meta": meta,
            "summary": summary,
            "report": report.reset_index().to_dict(orient="records"),
            "pooled_report": pooled.reset_index().to_dict(orient="records"),
            "per_fold_selection": diag.to_dict(orient="records"),
        }
    )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / ("router_cv_quick.json" if args.quick else "router_cv.json")
    path.write_text(json.dumps(doc, indent=1) + "\n")
    cols = ["quality", "gain", "auc", "apgr", "interaction_r", "interaction_ceiling"]
    print(report_to_markdown(report, cols))
    log("summary: " + json.dumps(to_json({k: v for k, v in summary.items() if k != "grid_members"}), indent=1))
    log(f"wrote {path}")
    return doc


if __name__ == "__main__":
    main()
