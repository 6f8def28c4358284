"""Cascade benchmark: route, score the image, escalate -- out of sample, beside the routers.

For each data set and scorer configuration: 5-fold cross-validation by prompt, 3 repeats, the
same folds for every method (``cross_validate_routing(..., scores=S)``). Rows: the best single
generator, the random mixture (hull), the router alone (``CostAwareRouter(features="minilm",
quality_model="knn")``), the threshold cascade (``ThresholdCascade``: cheapest generator, score,
best single generator below a threshold; one scorer only), the ``CascadeRouter`` on that router
under both policies (``policy="index"``, the default: Pandora's-box reservation values;
``policy="myopic"``: the router's choice first, then net expected improvement), and the
one-image oracle. A cascade's cost is every image generated plus every scoring (normalised by
the dearest generator), its quality the true quality of the image returned.

Every headline figure is read off the **pooled out-of-fold curve** (for each repeat, every
prompt handled by the fold model that did not see it; mean ± std over repeats), with the median
over the test folds of the per-fold value beside it; targets use the pooled value.

Data sets and scorers:

* GenAI-Bench, ``cost_unit="usd"`` (6 generators) and ``"flops"`` (4 open generators), and
  AGIQA-3K (alignment and perceptual-quality MOS, USD), each with a simulated scorer at
  within-prompt correlation r in {0.3, 0.5, 0.7, 0.9} (``simulate_scores``, once per r on the
  full matrix, the same seed for every r), costed as VQAScore, and a pair of simulated scorers:
  r = 0.3 costed as CLIPScore and the r = 0.7 one costed as VQAScore, the policy choosing per
  image which to run;
* the GenAI-Bench teaser (55 prompts x 4 generators, USD) with its real VQAScore and CLIPScore,
  alone and together (5-fold x 3 repeats as well: 44 training and 11 test prompts per fold).

Scoring cost: VQAScore's counted cost per image (``VQAScorer().cost_in(unit)``: LLaVA-1.5-7B at
336 px, 8.91 TFLOPs; in USD through ``DEFAULT_PRICE_MODEL``); CLIPScore's is
``CLIPScorer().cost_in(unit)`` (CLIP ViT-L/14, 175 GFLOPs).

The ``CascadeRouter``'s per-fold curve is swept over its default λ grid (32 geometric points
plus every exact λ breakpoint of its router's predictions on the test fold); its pooled curve
over 0 and 48 geometric points common to the folds (``cross_validate_routing``).

Usage::

    COSTROUTE_DATA=../shared/data .venv/bin/python benchmarks/cascade_table.py          # full
    COSTROUTE_DATA=../shared/data .venv/bin/python benchmarks/cascade_table.py --quick  # smoke
    .venv/bin/python benchmarks/cascade_table.py --render-only benchmarks/results/cascade_table.json

Outputs (``--out``, default ``benchmarks/results``): ``cascade_table.json`` (every per-fold score,
the pooled and per-fold summaries, the targets, the cascade-vs-router comparisons, the scoring
use of the teaser's cascades) and ``cascade_table.md``; ``--quick`` writes
``cascade_table_quick.*``. Threads: every BLAS/OpenMP pool is limited to ``--threads``
(default 1).
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
from _common import frame_from_records, limit_threads_from_argv, load_text, to_json  # noqa: E402

limit_threads_from_argv()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _cascade_rows import (  # noqa: E402
    CORRELATIONS,
    INDEX,
    MYOPIC,
    POLICIES,
    ROUTER,
    TEASER_PAIR,
    THRESHOLD,
    DefaultGridCascadeRouter,
    compare_to_router,
    load,
    methods,
    scorer_configs,
    scoring_use,
    within_prompt_r,
)

from costroute import CascadeRouter, CostAwareRouter  # noqa: E402
from costroute.cascade import ThresholdCascade  # noqa: E402
from costroute.evaluation import cross_validate_routing, report_to_markdown, routing_report  # noqa: E402

METRICS = ("quality", "gain", "auc", "apgr", "saving")
HEADERS = {
    "quality": "quality @λ=0",
    "gain": "Δ vs best single",
    "auc": "AUC",
    "apgr": "APGR",
    "saving": "saving @q_best",
}
#: (data set, scorer configuration, what, goal, direction); every value is pooled
TARGETS = (
    ("genai_bench_usd", "r=0.7", "apgr", 0.55, ">="),
    ("genai_bench_usd", "r=0.7", "gain", 0.35, ">="),
    ("genai_bench_usd", "r=0.7", "saving", 4.0, ">="),
    ("agiqa3k_alignment", "r=0.7", "apgr", 0.30, ">="),
    ("agiqa3k_alignment", "r=0.7", "worst_deficit", -0.01, ">="),
    ("genai_bench_usd", "r=0.3", "share_below", 0.02, "<="),
    ("genai_bench_usd", "r=0.3", "worst_deficit", -0.02, ">="),
    ("teaser_usd", "vqascore", "apgr", 0.30, ">="),
)
TARGET_NAMES = {
    "apgr": "APGR",
    "gain": "quality @λ=0 − best single",
    "saving": "saving @q_best",
    "worst_deficit": "worst deficit vs the router alone",
    "share_below": "share of the router's points where the cascade is below it",
}
CASCADES = (INDEX, MYOPIC)


# --------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------
def run_config(data, scores, scoring_cost, args, pair, models=False):
    res = cross_validate_routing(
        methods(data, scoring_cost, args.seed, pair),
        data.prompts,
        data.quality,
        cv=args.folds,
        n_repeats=args.repeats,
        random_state=args.seed,
        scores=scores,
        progress=False,
        return_models=models,
    )
    return res, routing_report(res), routing_report(res, pooled=True)


def check_same_baselines(first, other):
    """Single generators, hull, router and oracle rows must not depend on the scorer."""
    keep = ["single", "hull", "router", "oracle"]
    a = first.scores[first.scores["kind"].isin(keep)].set_index(["repeat", "fold", "method"])[list(METRICS)]
    b = other.scores[other.scores["kind"].isin(keep)].set_index(["repeat", "fold", "method"])[list(METRICS)]
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def diagnostics(data, scores, scoring_cost, args, log):
    """What limits each policy on the target configuration: the λ grid, the scoring cost, and the
    ceiling with a perfect scorer (scores = the true quality), on the same folds."""
    t0 = time.perf_counter()
    router = CostAwareRouter(data.generators, features="minilm", quality_model="knn", random_state=args.seed)
    variants = {ROUTER: router}
    perfect = {ROUTER: router}
    for name, policy in POLICIES.items():
        common = dict(random_state=args.seed, policy=policy)
        variants[name] = CascadeRouter(router, scoring_cost=scoring_cost, **common)
        variants[f"{name}, default λ grid only"] = DefaultGridCascadeRouter(router, scoring_cost=scoring_cost, **common)
        variants[f"{name}, free scoring"] = CascadeRouter(router, scoring_cost=0.0, **common)
        perfect[f"{name}, perfect scorer"] = CascadeRouter(router, scoring_cost=scoring_cost, **common)
    perfect[f"{THRESHOLD}, perfect scorer"] = ThresholdCascade(data.generators, scoring_cost=scoring_cost)
    common = dict(cv=args.folds, n_repeats=args.repeats, random_state=args.seed, progress=False)
    res = cross_validate_routing(variants, data.prompts, data.quality, scores=scores, **common)
    res_p = cross_validate_routing(perfect, data.prompts, data.quality, scores=data.quality, **common)
    check_same_baselines(res, res_p)
    report = pd.concat(
        [
            routing_report(res, pooled=True),
            routing_report(res_p, pooled=True).loc[[k for k in perfect if k != ROUTER]],
        ]
    )
    report = report[report["kind"] != "single"]
    report = report.loc[[m for m in report.index if m != "oracle"] + ["oracle"]]
    log(f"[diagnostics] {time.perf_counter() - t0:.0f}s")
    return {"summary": report.reset_index().to_dict(orient="records"), "wall_time_s": time.perf_counter() - t0}


def run_dataset(key, args, log):
    t0 = time.perf_counter()
    title, data = load(key)
    Qv = data.quality.to_numpy(dtype=float)
    configs = scorer_configs(key, data, args.correlations, args.seed)
    top = float(np.max(data.costs))
    entry = {
        "title": title,
        "n_prompts": len(data.prompts),
        "generators": list(data.generators.names),
        "cost_unit": data.cost_unit,
        "normalized_costs": (np.asarray(data.costs) / top).tolist(),
        "best_single": str(data.quality.mean().idxmax()),
        "scorers": {},
    }
    first = None
    for label, (S, cost, what) in configs.items():
        t1 = time.perf_counter()
        pair = isinstance(S, list)
        use = key.startswith("teaser")  # scoring use is replayed for the teaser's cascades
        res, report, pooled = run_config(data, S, cost, args, pair, models=use)
        if first is None:
            first = res
            entry["baseline_scores"] = _split(res.scores[res.scores["kind"] != "cascade"])
        else:
            check_same_baselines(first, res)
        elapsed = time.perf_counter() - t1
        mats = S if pair else [S]
        costs = cost if pair else [cost]
        entry["scorers"][label] = {
            "description": what,
            "within_prompt_r": [within_prompt_r(Qv, np.asarray(m, dtype=float)) for m in mats],
            "scoring_cost": list(costs),
            "normalized_scoring_cost": [c / top for c in costs],
            "summary": report.reset_index().to_dict(orient="records"),
            "pooled_summary": pooled.reset_index().to_dict(orient="records"),
            "scores": _split(res.scores[res.scores["kind"] == "cascade"]),
            "vs_router": {name: compare_to_router(res, name) for name in CASCADES},
            "wall_time_s": elapsed,
        }
        if not pair:
            entry["scorers"][label]["threshold_vs_router"] = compare_to_router(res, THRESHOLD)
        if use:
            grid = np.r_[0.0, np.geomspace(1e-4, 100.0, 25)] * float(np.std(Qv))
            entry["scorers"][label]["scoring_use"] = {
                name: scoring_use(res, name, list(data.prompts), S, data, grid) for name in CASCADES
            }
        row = pooled.loc[INDEX]
        log(
            f"[{key} {label}] {elapsed:.0f}s: index APGR {row['apgr_mean']:.3f} (myopic "
            f"{pooled.loc[MYOPIC, 'apgr_mean']:.3f}), saving {row['saving_mean']:.2f}; router APGR "
            f"{pooled.loc[ROUTER, 'apgr_mean']:.3f} (pooled)"
        )
    if key == "genai_bench_usd" and "r=0.7" in configs and not args.no_diagnostics:
        S, cost, _ = configs["r=0.7"]
        entry["diagnostics"] = {"scorer": "r=0.7", **diagnostics(data, S, cost, args, log)}
    entry["wall_time_s"] = time.perf_counter() - t0
    return entry


# --------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------
def _split(frame):
    """A DataFrame as ``{"columns": [...], "data": [[...], ...]}`` (compact JSON)."""
    frame = frame.drop(columns=[c for c in ("predict_time",) if c in frame.columns]).reset_index(drop=True)
    return {"columns": list(frame.columns), "data": frame.to_numpy(dtype=object).tolist()}


def dataset_table(entry, which="pooled_summary"):
    """Baseline rows once, then the cascades per scorer configuration, as one report-like frame."""
    parts, labels = [], []
    first = next(iter(entry["scorers"].values()))
    base = frame_from_records(first[which])
    best = entry["best_single"]
    for method in [best, "random mixture", ROUTER]:
        parts.append(base.loc[[method]])
        labels.append(f"best single ({best})" if method == best else method)
    for label, sc in entry["scorers"].items():
        rep = frame_from_records(sc[which])
        for method in (THRESHOLD, *CASCADES):
            if method in rep.index:
                parts.append(rep.loc[[method]])
                labels.append(f"{method}, {label}")
    parts.append(base.loc[["oracle"]])
    labels.append("oracle (one image)")
    table = pd.concat(parts)
    table.index = pd.Index(labels, name="method")
    return table


def _pooled_value(doc, key, label, method, what):
    sc = doc["datasets"].get(key, {}).get("scorers", {}).get(label)
    if sc is None:
        return None, None
    if what in ("worst_deficit", "share_below"):
        cmp = sc["vs_router"][method]["pooled"]
        return (cmp["worst_deficit"] if what == "worst_deficit" else cmp["share_of_router_points_below"]), None
    row = frame_from_records(sc["pooled_summary"]).loc[method]
    return float(row[f"{what}_mean"]), float(row.get(f"{what}_fold_median", np.nan))


def target_check(doc):
    rows = []
    for key, label, what, goal, sign in TARGETS:
        cells = {}
        for method in CASCADES:
            value, median = _pooled_value(doc, key, label, method, what)
            if value is None:
                continue
            met = value >= goal if sign == ">=" else value <= goal
            cells[method] = {"value": value, "fold_median": median, "met": bool(met)}
        if cells:
            rows.append({"dataset": key, "scorer": label, "what": what, "goal": goal, "sign": sign, **cells})
    teaser = doc["datasets"].get("teaser_usd", {}).get("scorers", {})
    if "vqascore" in teaser and TEASER_PAIR in teaser:
        for method in CASCADES:
            alone, _ = _pooled_value(doc, "teaser_usd", "vqascore", method, "apgr")
            both, _ = _pooled_value(doc, "teaser_usd", TEASER_PAIR, method, "apgr")
            use_alone = teaser["vqascore"].get("scoring_use", {}).get(method)
            use_both = teaser[TEASER_PAIR].get("scoring_use", {}).get(method)
            spend = (
                (float(np.mean(use_alone["scoring_cost"])), float(np.mean(use_both["scoring_cost"])))
                if use_alone and use_both
                else (None, None)
            )
            rows.append(
                {
                    "dataset": "teaser_usd",
                    "scorer": f"{TEASER_PAIR} vs vqascore",
                    "what": "apgr_and_scoring_cost",
                    "method": method,
                    "apgr_alone": alone,
                    "apgr_both": both,
                    "mean_scoring_cost_alone": spend[0],
                    "mean_scoring_cost_both": spend[1],
                    "met": bool(both >= alone and spend[1] is not None and spend[1] < spend[0]),
                }
            )
    return rows


def render_targets(rows):
    out = [
        "| data set, scorer | target (pooled) | goal | CascadeRouter (index) | CascadeRouter (myopic) |",
        "|---|---|---:|---:|---:|",
    ]
    for row in rows:
        if row["what"] == "apgr_and_scoring_cost":
            continue
        cells = []
        for method in CASCADES:
            t = row.get(method)
            if t is None:
                cells.append("—")
                continue
            median = (
                "" if t["fold_median"] is None or np.isnan(t["fold_median"]) else f" (median {t['fold_median']:.3f})"
            )
            cells.append(f"{t['value']:.4g}{median} ({'met' if t['met'] else 'not met'})")
        out.append(
            f"| {row['dataset']}, {row['scorer']} | {TARGET_NAMES[row['what']]} | {row['sign']} {row['goal']:g} | "
            + " | ".join(cells)
            + " |"
        )
    pair = [r for r in rows if r["what"] == "apgr_and_scoring_cost"]
    if pair:
        out.append(
            "\n**Teaser: CLIPScore + VQAScore against VQAScore alone** (pooled APGR; mean normalised scoring cost "
            "per prompt over the same 26-point λ grid):\n"
        )
        out.append("| policy | APGR, VQAScore alone | APGR, both | scoring cost, alone | scoring cost, both | met |")
        out.append("|---|---:|---:|---:|---:|---|")
        for r in pair:
            a, b = r["mean_scoring_cost_alone"], r["mean_scoring_cost_both"]
            out.append(
                f"| {r['method']} | {r['apgr_alone']:.3f} | {r['apgr_both']:.3f} | "
                f"{'—' if a is None else f'{a:.3g}'} | {'—' if b is None else f'{b:.3g}'} | {'yes' if r['met'] else 'no'} |"
            )
    return "\n".join(out) + "\n"


def render_below(name, cmp):
    pooled, folds = cmp["pooled"], cmp["per_fold"]
    lines = [
        f"**{name}**: on the pooled curves, below the router at {100 * pooled['share_of_router_points_below']:.1f} % "
        f"of its points, worst deficit {pooled['worst_deficit']:.4f}"
        + (f" at cost {pooled['worst_at_cost']:.4g}" if pooled["worst_at_cost"] is not None else "")
        + f"; per fold: below somewhere on {folds['curves_below_somewhere']} of {folds['n_curves']} folds, at "
        f"{100 * folds['share_of_router_points_below']:.1f} % of the router's points, worst {folds['worst_deficit']:.4f}.\n",
        "| router's points at cost (pooled) | points | cascade below at | worst deficit |",
        "|---|---:|---:|---:|",
    ]
    for band in pooled["bands"]:
        share = band["below"] / band["router_points"] if band["router_points"] else float("nan")
        lines.append(
            f"| [{band['from']:g}, {min(band['to'], 1.0):g}{']' if band['to'] >= 1 else ')'} | "
            f"{band['router_points']} | {band['below']} ({100 * share:.0f} %) | {band['worst']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def render_markdown(doc):
    meta = doc["meta"]
    out = [
        "# Cascade benchmark (generated by benchmarks/cascade_table.py)\n",
        f"Command: `{meta['command']}`; total wall time {meta['total_wall_time_s']:.0f} s on {meta['cpu_count']} "
        f"cores, {meta['threads']} thread(s), load average {load_text(meta['load_average_start'])} at start and "
        f"{load_text(meta['load_average_end'])} at the end. {meta['folds']}-fold CV by prompt x {meta['repeats']} "
        "repeats, the same folds for every method.\n",
        "Every figure of the main tables is read off the **pooled out-of-fold curve** (for each repeat, every "
        "prompt handled by the fold model that did not see it), mean ± std over repeats, with the median over the "
        "test folds of the per-fold value in parentheses. A cascade's cost per prompt is the sum of the normalised "
        "costs of every image generated plus every scoring (it may exceed 1), its quality the true quality of the "
        "image returned; its quality @λ=0 is its first operating point (CascadeRouter: λ = 0; threshold cascade: "
        "threshold +inf, i.e. always both images). Δ vs best single = quality @λ=0 minus the best single "
        "generator's mean quality. AUC = area under the running-max quality-cost curve on [c̃_min, 1] / "
        "(1 − c̃_min); APGR = (AUC − AUC_hull)/(AUC_oracle − AUC_hull) against the one-image oracle; saving = "
        "cost_hull(q_best)/cost(q_best), 0 where the curve never reaches q_best.\n",
    ]
    targets = doc.get("targets")
    if targets:
        out += ["## Targets\n", render_targets(targets)]
    for key, entry in doc["datasets"].items():
        costs = ", ".join(f"{n} {v:.4g}" for n, v in zip(entry["generators"], entry["normalized_costs"]))
        sc_lines = []
        for label, sc in entry["scorers"].items():
            rs = ", ".join(f"{r:.3f}" for r in sc["within_prompt_r"])
            cs = ", ".join(f"{c:.3g}" for c in sc["normalized_scoring_cost"])
            idx = sc["vs_router"][INDEX]["pooled"]
            sc_lines.append(
                f"{label}: {sc['description']}; realised within-prompt r = {rs}; normalised scoring cost {cs}; "
                f"index policy below the router at {100 * idx['share_of_router_points_below']:.1f} % of its pooled "
                f"points (worst {idx['worst_deficit']:.4f}); {sc['wall_time_s']:.0f} s."
            )
        out += [
            f"## {entry['title']} (`{key}`)\n",
            f"{entry['n_prompts']} prompts x {len(entry['generators'])} generators; normalised costs: {costs}. "
            f"Wall time {entry['wall_time_s']:.0f} s.\n",
            "\n".join(f"- {line}" for line in sc_lines) + "\n",
            "Pooled (per-fold median):\n",
            report_to_markdown(dataset_table(entry), list(METRICS), headers=HEADERS, median=True),
            "\nPer fold, mean ± std over the test folds:\n",
            report_to_markdown(dataset_table(entry, "summary"), list(METRICS), headers=HEADERS),
        ]
        for label in ("r=0.3", "r=0.7"):
            if label in entry["scorers"] and key in ("genai_bench_usd", "agiqa3k_alignment"):
                out.append(f"\n### Is the CascadeRouter ever below the router alone ({label})?\n")
                for name in CASCADES:
                    out.append(render_below(name, entry["scorers"][label]["vs_router"][name]))
        diag = entry.get("diagnostics")
        if diag:
            out += [
                f"### What limits the CascadeRouter ({diag['scorer']}, same folds, pooled)\n",
                "`default λ grid only`: the per-fold curves without the router's exact breakpoints; `free scoring`: "
                "scoring cost 0; `perfect scorer`: scores = the true quality (the ceiling of each policy with this "
                "router).\n",
                report_to_markdown(
                    frame_from_records(diag["summary"]),
                    ["quality", "gain", "cost", "auc", "apgr", "saving"],
                    headers={**HEADERS, "cost": "cost @λ=0"},
                    median=True,
                ),
            ]
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 folds, 1 repeat, r in {0.3, 0.7}")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--correlations", type=float, nargs="+", default=list(CORRELATIONS))
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["genai_bench_usd", "genai_bench_flops", "agiqa3k_alignment", "agiqa3k_quality", "teaser_usd"],
    )
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads (set before imports)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="tqdm progress bar on stderr (default on)",
    )
    parser.add_argument(
        "--no-diagnostics",
        action="store_true",
        help="skip the extra CascadeRouter variants (grid, free and perfect scoring) on GenAI-Bench USD at r = 0.7",
    )
    parser.add_argument("--render-only", type=Path, metavar="JSON", help="re-render the Markdown from a results file")
    args = parser.parse_args(argv)
    if args.render_only:
        doc = json.loads(args.render_only.read_text())
        md = args.render_only.with_suffix(".md")
        md.write_text(render_markdown(doc))
        print(f"wrote {md}")
        return
    if args.quick:
        args.folds, args.repeats = 2, 1
        if args.correlations == list(CORRELATIONS):
            args.correlations = [0.3, 0.7]
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    load0 = os.getloadavg() if hasattr(os, "getloadavg") else None

    def log(msg):
        tqdm.write(f"[{time.perf_counter() - t0:7.1f}s] {msg}", file=sys.stdout)
        sys.stdout.flush()

    log(
        f"python {platform.python_version()}, {os.cpu_count()} cores, threads={args.threads}, seed={args.seed}, "
        f"load average {load0}"
    )
    doc = {"datasets": {}}
    with tqdm(
        args.datasets, desc="cascade benchmark", unit="dataset", disable=not args.progress, file=sys.stderr
    ) as bar:
        for key in bar:
            bar.set_postfix_str(key)
            doc["datasets"][key] = run_dataset(key, args, log)
    doc["targets"] = target_check(doc)
    doc["meta"] = {
        "command": " ".join(["cascade_table.py", *(argv if argv is not None else sys.argv[1:])]),
        "total_wall_time_s": time.perf_counter() - t0,
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "load_average_start": list(load0) if load0 else None,
        "load_average_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "folds": args.folds,
        "repeats": args.repeats,
        "seed": args.seed,
        "correlations": args.correlations,
        "python": platform.python_version(),
        "metric_definitions": "see the costroute.evaluation module docstring and docs/benchmarks.md",
    }
    doc = to_json(doc)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "cascade_table_quick" if args.quick else "cascade_table"
    (args.out / f"{stem}.json").write_text(json.dumps(doc, indent=1))
    md = render_markdown(doc)
    (args.out / f"{stem}.md").write_text(md)
    print(md)
    log(f"wrote {args.out / stem}.json and .md; total {time.perf_counter() - t0:.0f}s")
    if doc["targets"]:
        log("targets: " + json.dumps(doc["targets"]))


if __name__ == "__main__":
    main()
