"""Cascade benchmark: route, score the image, escalate -- out of sample, beside the routers.

For each data set and scorer: 5-fold cross-validation by prompt, 3 repeats, the same folds for
every method (``cross_validate_routing(..., scores=S)``). Rows: the best single generator, the
random mixture (hull), the router alone (``CostAwareRouter(features="minilm",
quality_model="knn")``), the threshold cascade (``ThresholdCascade``: cheapest generator, score,
best single generator below a threshold), the ``CascadeRouter`` on that router, and the
one-image oracle. A cascade's cost is every image generated plus every scoring (normalised by
the dearest generator), its quality the true quality of the image returned.

Data sets and scorers:

* GenAI-Bench, ``cost_unit="usd"`` (6 generators) and ``"flops"`` (4 open generators), and
  AGIQA-3K (alignment and perceptual-quality MOS, its loader's cost unit, USD), each with a
  simulated scorer at within-prompt correlation r in {0.3, 0.5, 0.7, 0.9}
  (``simulate_scores``, once per r on the full matrix, the same seed for every r);
* the GenAI-Bench teaser (55 prompts x 4 generators, USD) with its real VQAScore and
  CLIPScore (5-fold x 3 repeats as well: 44 training and 11 test prompts per fold).

Scoring cost: VQAScore's counted cost per image (``VQAScorer().cost_in(unit)``: LLaVA-1.5-7B at
336 px, 8.91 TFLOPs; in USD through ``DEFAULT_PRICE_MODEL``); CLIPScore's is
``CLIPScorer().cost_in(unit)`` (CLIP ViT-L/14). The simulated scorers are costed as VQAScore.

The ``CascadeRouter``'s curve is swept over its default λ grid, which holds 32 geometric points
*plus every exact λ breakpoint of its router's predictions* on the test fold
(``CascadeRouter.default_lambdas``); the "default λ grid only" row leaves the breakpoints out.

Usage::

    COSTROUTE_DATA=../shared/data .venv/bin/python benchmarks/cascade_table.py          # full
    COSTROUTE_DATA=../shared/data .venv/bin/python benchmarks/cascade_table.py --quick  # smoke
    .venv/bin/python benchmarks/cascade_table.py --render-only benchmarks/results/cascade_table.json

Outputs (``--out``, default ``benchmarks/results``): ``cascade_table.json`` (every per-fold score,
the summaries, the targets and the cascade-vs-router curve comparison) and ``cascade_table.md``;
``--quick`` writes ``cascade_table_quick.*``. Threads: every BLAS/OpenMP pool is limited to
``--threads`` (default 1).
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

from costroute import CascadeRouter, CostAwareRouter  # noqa: E402
from costroute.cascade import ThresholdCascade  # noqa: E402
from costroute.evaluation import (  # noqa: E402
    cross_validate_routing,
    deferral_curve,
    report_to_markdown,
    routing_report,
)

CORRELATIONS = (0.3, 0.5, 0.7, 0.9)
ROUTER, THRESHOLD, CASCADE = "router (minilm/knn)", "threshold cascade", "CascadeRouter"
METRICS = ("quality", "gain", "auc", "apgr", "saving")
HEADERS = {
    "quality": "quality @λ=0",
    "gain": "Δ vs best single",
    "auc": "AUC",
    "apgr": "APGR",
    "saving": "saving @q_best",
}
#: GenAI-Bench USD at r = 0.7, CascadeRouter row (per-fold means)
TARGETS = {"apgr": 0.50, "gain": 0.30, "saving": 5.0}
TARGET_KEY, TARGET_SCORER = "genai_bench_usd", "r=0.7"
BELOW_KEY, BELOW_SCORER = "genai_bench_usd", "r=0.3"
#: Bands of normalised cost in which the cascade-vs-router comparison is also counted.
BANDS = (0.0, 0.001, 0.01, 0.1, 0.3, 0.6, 1.0 + 1e-9)


class DefaultGridCascadeRouter(CascadeRouter):
    """A CascadeRouter whose deferral curve uses only its geometric λ grid (no router breakpoints)."""

    def default_lambdas(self, predicted, n: int = 32, exact: bool = False) -> np.ndarray:
        return super().default_lambdas(predicted, n, exact=False)


# --------------------------------------------------------------------------------------
# data sets and scorers
# --------------------------------------------------------------------------------------
def scorer_costs(unit):
    from costroute.scoring import CLIPScorer, VQAScorer

    return {"vqascore": VQAScorer().cost_in(unit), "clipscore": CLIPScorer().cost_in(unit)}


def within_prompt_r(Q, S):
    dq = Q - Q.mean(axis=1, keepdims=True)
    ds = S - S.mean(axis=1, keepdims=True)
    return float(np.corrcoef(dq.ravel(), ds.ravel())[0, 1])


def load(key):
    from costroute.datasets import load_agiqa3k, load_genai_bench, load_genai_bench_teaser

    loaders = {
        "genai_bench_usd": ("GenAI-Bench, USD (6 generators)", lambda: load_genai_bench(cost_unit="usd")),
        "genai_bench_flops": ("GenAI-Bench, FLOPs (4 open generators)", lambda: load_genai_bench(cost_unit="flops")),
        "agiqa3k_alignment": (
            "AGIQA-3K, alignment MOS (10 configurations, USD)",
            lambda: load_agiqa3k(target="alignment"),
        ),
        "agiqa3k_quality": (
            "AGIQA-3K, perceptual-quality MOS (10 configurations, USD)",
            lambda: load_agiqa3k(target="quality"),
        ),
        "teaser_usd": (
            "GenAI-Bench teaser, real VQAScore and CLIPScore (4 generators, USD)",
            lambda: load_genai_bench_teaser(cost_unit="usd"),
        ),
    }
    if key not in loaders:
        raise SystemExit(f"unknown data set {key!r}; choose from {list(loaders)}")
    title, fn = loaders[key]
    return title, fn()


def scorers_for(key, data, correlations, seed):
    """``{scorer label: (scores DataFrame, scoring cost in the data's unit, description)}``."""
    from costroute.datasets import simulate_scores

    costs = scorer_costs(data.cost_unit)
    if key.startswith("teaser"):
        return {name: (data.scores[name], costs[name], f"real {name}") for name in ("vqascore", "clipscore")}
    return {
        f"r={r:g}": (
            simulate_scores(data.quality, r, random_state=seed),
            costs["vqascore"],
            f"simulated, within-prompt r = {r:g}, costed as VQAScore",
        )
        for r in correlations
    }


# --------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------
def methods(data, scoring_cost, seed):
    router = CostAwareRouter(data.generators, features="minilm", quality_model="knn", random_state=seed)
    return {
        ROUTER: router,
        THRESHOLD: ThresholdCascade(data.generators, scoring_cost=scoring_cost),
        CASCADE: CascadeRouter(router, scoring_cost=scoring_cost, random_state=seed),
    }


def compare_to_router(res, cascade=CASCADE, router=ROUTER):
    """Quality of the cascade's curve minus the router's, at the costs of the router's curve points.

    Both curves are the running-max, straight-line-joined curves the AUC integrates; only router
    points with cost in [c̃_min, 1] are compared (where the cascade's curve has no point at or
    below a cost, that cost is not compared). Returns per-fold minima, the overall worst, and the
    same counted per band of cost (``BANDS``).
    """
    Q, c = res.true_quality, res.normalized_costs
    per_fold, below, total, worst = [], 0, 0, (0.0, None, None)
    bands = [{"from": lo, "to": hi, "router_points": 0, "below": 0, "worst": 0.0} for lo, hi in zip(BANDS, BANDS[1:])]
    for (rep, fold), test in sorted(res.test_indices.items()):
        r_curve = deferral_curve(res.oof_predictions[router][rep][test], Q[test], c)
        c_curve = res.cascade_curves[(rep, fold)][cascade]
        xs = np.unique(np.clip(r_curve.costs, c.min(), 1.0))
        diff = np.array([c_curve.quality_at_cost(float(x)) - r_curve.quality_at_cost(float(x)) for x in xs])
        k = int(np.nanargmin(diff))
        per_fold.append(
            {
                "repeat": rep,
                "fold": fold,
                "min_diff": float(diff[k]),
                "at_cost": float(xs[k]),
                "share_below": float(np.mean(diff < -1e-9)),
                "mean_diff": float(np.nanmean(diff)),
            }
        )
        below += int(np.sum(diff < -1e-9))
        total += diff.size
        for band in bands:
            inside = (xs >= band["from"]) & (xs < band["to"])
            band["router_points"] += int(inside.sum())
            band["below"] += int(np.sum(diff[inside] < -1e-9))
            if np.isfinite(diff[inside]).any():
                band["worst"] = float(min(band["worst"], np.nanmin(diff[inside])))
        if diff[k] < worst[0]:
            worst = (float(diff[k]), float(xs[k]), f"{rep}/{fold}")
    return {
        "folds_below_somewhere": int(sum(p["min_diff"] < -1e-9 for p in per_fold)),
        "n_folds": len(per_fold),
        "share_of_router_points_below": below / max(total, 1),
        "worst_deficit": worst[0],
        "worst_at_cost": worst[1],
        "worst_fold": worst[2],
        "mean_diff": float(np.mean([p["mean_diff"] for p in per_fold])),
        "bands": bands,
        "per_fold": per_fold,
    }


def run_config(data, scores, scoring_cost, args):
    res = cross_validate_routing(
        methods(data, scoring_cost, args.seed),
        data.prompts,
        data.quality,
        cv=args.folds,
        n_repeats=args.repeats,
        random_state=args.seed,
        scores=scores,
        progress=False,
    )
    return res, routing_report(res)


def check_same_baselines(first, other):
    """Single generators, hull, router and oracle rows must not depend on the scorer."""
    keep = ["single", "hull", "router", "oracle"]
    a = first.scores[first.scores["kind"].isin(keep)].set_index(["repeat", "fold", "method"])[list(METRICS)]
    b = other.scores[other.scores["kind"].isin(keep)].set_index(["repeat", "fold", "method"])[list(METRICS)]
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def diagnostics(data, scores, scoring_cost, args, log):
    """What limits the CascadeRouter on the target configuration: its λ sweep, the scoring cost,
    and its ceiling with a perfect scorer (scores = the true quality), on the same folds."""
    t0 = time.perf_counter()
    router = CostAwareRouter(data.generators, features="minilm", quality_model="knn", random_state=args.seed)
    variants = {
        ROUTER: router,
        CASCADE: CascadeRouter(router, scoring_cost=scoring_cost, random_state=args.seed),
        f"{CASCADE}, default λ grid only": DefaultGridCascadeRouter(
            router, scoring_cost=scoring_cost, random_state=args.seed
        ),
        f"{CASCADE}, free scoring": CascadeRouter(router, scoring_cost=0.0, random_state=args.seed),
    }
    common = dict(cv=args.folds, n_repeats=args.repeats, random_state=args.seed, progress=False)
    res = cross_validate_routing(variants, data.prompts, data.quality, scores=scores, **common)
    perfect = {
        ROUTER: router,
        f"{CASCADE}, perfect scorer": CascadeRouter(router, scoring_cost=scoring_cost, random_state=args.seed),
        f"{THRESHOLD}, perfect scorer": ThresholdCascade(data.generators, scoring_cost=scoring_cost),
    }
    res_p = cross_validate_routing(perfect, data.prompts, data.quality, scores=data.quality, **common)
    check_same_baselines(res, res_p)
    report = pd.concat([routing_report(res), routing_report(res_p).loc[[k for k in perfect if k != ROUTER]]])
    # no single generators (they are in the main table), the oracle row last
    report = report[report["kind"] != "single"]
    report = report.loc[[m for m in report.index if m != "oracle"] + ["oracle"]]
    log(f"[diagnostics] {time.perf_counter() - t0:.0f}s")
    return {"summary": report.reset_index().to_dict(orient="records"), "wall_time_s": time.perf_counter() - t0}


def run_dataset(key, args, log):
    t0 = time.perf_counter()
    title, data = load(key)
    Qv = data.quality.to_numpy(dtype=float)
    best = str(data.quality.mean().idxmax())
    scorer_set = scorers_for(key, data, args.correlations, args.seed)
    top = float(np.max(data.costs))
    entry = {
        "title": title,
        "n_prompts": len(data.prompts),
        "generators": list(data.generators.names),
        "cost_unit": data.cost_unit,
        "normalized_costs": (np.asarray(data.costs) / top).tolist(),
        "best_single": best,
        "scorers": {},
    }
    first = None
    for label, (S, cost, what) in scorer_set.items():
        t1 = time.perf_counter()
        res, report = run_config(data, S, cost, args)
        if first is None:
            first = res
            entry["baseline_scores"] = _split(res.scores[res.scores["kind"] != "cascade"])
        else:
            check_same_baselines(first, res)
        elapsed = time.perf_counter() - t1
        entry["scorers"][label] = {
            "description": what,
            "within_prompt_r": within_prompt_r(Qv, np.asarray(S, dtype=float)),
            "scoring_cost": cost,
            "normalized_scoring_cost": cost / top,
            "summary": report.reset_index().to_dict(orient="records"),
            # per-fold scores of the two cascades; the other methods' are in the data set's
            # "baseline_scores" (identical for every scorer, checked above)
            "scores": _split(res.scores[res.scores["kind"] == "cascade"]),
            "vs_router": compare_to_router(res),
            "threshold_vs_router": compare_to_router(res, cascade=THRESHOLD),
            "wall_time_s": elapsed,
        }
        row = report.loc[CASCADE]
        log(
            f"[{key} {label}] {elapsed:.0f}s: CascadeRouter quality {row['quality_mean']:.3f}, "
            f"APGR {row['apgr_mean']:.3f}, saving {row['saving_mean']:.2f}; router APGR "
            f"{report.loc[ROUTER, 'apgr_mean']:.3f}"
        )
    if key == TARGET_KEY and TARGET_SCORER in scorer_set and not args.no_diagnostics:
        S, cost, _ = scorer_set[TARGET_SCORER]
        entry["diagnostics"] = {"scorer": TARGET_SCORER, **diagnostics(data, S, cost, args, log)}
    entry["wall_time_s"] = time.perf_counter() - t0
    return entry


# --------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------


def _split(frame):
    """A DataFrame as ``{"columns": [...], "data": [[...], ...]}`` (compact JSON)."""
    frame = frame.drop(columns=[c for c in ("predict_time",) if c in frame.columns]).reset_index(drop=True)
    return {"columns": list(frame.columns), "data": frame.to_numpy(dtype=object).tolist()}


def dataset_table(entry):
    """Baseline rows once, then the two cascades per scorer, as one report-like frame."""
    parts, labels = [], []
    first = next(iter(entry["scorers"].values()))
    base = frame_from_records(first["summary"])
    best = entry["best_single"]
    for method in [best, "random mixture", ROUTER]:
        parts.append(base.loc[[method]])
        labels.append(f"best single ({best})" if method == best else method)
    for label, sc in entry["scorers"].items():
        rep = frame_from_records(sc["summary"])
        for method in (THRESHOLD, CASCADE):
            parts.append(rep.loc[[method]])
            labels.append(f"{method}, {label}")
    parts.append(base.loc[["oracle"]])
    labels.append("oracle (one image)")
    table = pd.concat(parts)
    table.index = pd.Index(labels, name="method")
    return table


def target_check(doc):
    entry = doc["datasets"].get(TARGET_KEY)
    if not entry or TARGET_SCORER not in entry["scorers"]:
        return None
    rep = frame_from_records(entry["scorers"][TARGET_SCORER]["summary"])
    out = {}
    for method in (CASCADE, THRESHOLD):
        row = rep.loc[method]
        out[method] = {
            m: {
                "value": float(row[f"{m}_mean"]),
                "std": float(row[f"{m}_std"]),
                "target": goal,
                "met": bool(row[f"{m}_mean"] >= goal),
            }
            for m, goal in TARGETS.items()
        }
    return out


def render_markdown(doc):
    meta = doc["meta"]
    out = [
        "# Cascade benchmark (generated by benchmarks/cascade_table.py)\n",
        f"Command: `{meta['command']}`; total wall time {meta['total_wall_time_s']:.0f} s on {meta['cpu_count']} "
        f"cores, {meta['threads']} thread(s), load average {load_text(meta['load_average_start'])} at start and "
        f"{load_text(meta['load_average_end'])} at the end. {meta['folds']}-fold CV by prompt x {meta['repeats']} "
        "repeats, the same folds for every method; mean ± std over the test folds.\n",
        "A cascade's cost per prompt is the sum of the normalised costs of every image generated plus every "
        "scoring (it may exceed 1), its quality the true quality of the image returned; its quality @λ=0 is "
        "its first operating point (CascadeRouter: λ = 0; threshold cascade: threshold +inf, i.e. always "
        "both images). Δ vs best single = quality @λ=0 minus the best single generator's mean quality on the "
        "fold. AUC = area under the running-max quality-cost curve on [c̃_min, 1] / (1 − c̃_min) (points "
        "beyond cost 1 add no area); APGR = (AUC − AUC_hull)/(AUC_oracle − AUC_hull) against the one-image "
        "oracle; saving = cost_hull(q_best)/cost(q_best), 0 on a fold where the curve never reaches q_best.\n",
    ]
    targets = doc.get("targets")
    if targets:
        rows = [
            "| target (GenAI-Bench USD, r = 0.7) | goal | CascadeRouter | threshold cascade |",
            "|---|---:|---:|---:|",
        ]
        names = {"apgr": "APGR", "gain": "quality @λ=0 − best single", "saving": "saving @q_best"}
        for m, goal in TARGETS.items():
            cells = []
            for method in (CASCADE, THRESHOLD):
                t = targets[method][m]
                value, std = (0.0 if abs(x) < 1e-12 else x for x in (t["value"], t["std"]))  # float noise
                cells.append(f"{value:.5g} ± {std:.3g} ({'met' if t['met'] else 'not met'})")
            rows.append(f"| {names[m]} | ≥ {goal:g} | " + " | ".join(cells) + " |")
        out += ["## Targets\n", "\n".join(rows) + "\n"]
    below = doc.get("below_router")
    if below:
        out.append(
            f"**Is the CascadeRouter ever below the router alone (GenAI-Bench USD, {BELOW_SCORER})?** Comparing "
            "the running-max curves at the costs of the router's own operating points: on "
            f"{below['folds_below_somewhere']} of {below['n_folds']} folds somewhere, at "
            f"{100 * below['share_of_router_points_below']:.1f} % of the router's points; worst deficit "
            f"{below['worst_deficit']:.4f} at cost {below['worst_at_cost'] if below['worst_at_cost'] is not None else float('nan'):.4g}; "
            f"mean difference {below['mean_diff']:+.4f} (cascade − router).\n"
        )
        rows = ["| router's points at cost | points | cascade below at | worst deficit |", "|---|---:|---:|---:|"]
        for band in below["bands"]:
            share = band["below"] / band["router_points"] if band["router_points"] else float("nan")
            rows.append(
                f"| [{band['from']:g}, {min(band['to'], 1.0):g}{']' if band['to'] >= 1 else ')'} | "
                f"{band['router_points']} | {band['below']} ({100 * share:.0f} %) | {band['worst']:.4f} |"
            )
        out.append("\n".join(rows) + "\n")
    for key, entry in doc["datasets"].items():
        costs = ", ".join(f"{n} {v:.4g}" for n, v in zip(entry["generators"], entry["normalized_costs"]))
        sc_lines = []
        for label, sc in entry["scorers"].items():
            sc_lines.append(
                f"{label}: {sc['description']}, realised within-prompt r = {sc['within_prompt_r']:.3f}, scoring "
                f"cost {sc['scoring_cost']:.4g} {entry['cost_unit']} per image (normalised {sc['normalized_scoring_cost']:.3g}); "
                f"CascadeRouter below the router on {sc['vs_router']['folds_below_somewhere']}/{sc['vs_router']['n_folds']} "
                f"folds (worst {sc['vs_router']['worst_deficit']:.4f}), mean Δ {sc['vs_router']['mean_diff']:+.4f}; "
                f"{sc['wall_time_s']:.0f} s."
            )
        out += [
            f"## {entry['title']} (`{key}`)\n",
            f"{entry['n_prompts']} prompts x {len(entry['generators'])} generators; normalised costs: {costs}. "
            f"Wall time {entry['wall_time_s']:.0f} s.\n",
            "\n".join(f"- {line}" for line in sc_lines) + "\n",
            report_to_markdown(dataset_table(entry), list(METRICS), headers=HEADERS),
        ]
        diag = entry.get("diagnostics")
        if diag:
            out += [
                f"### What limits the CascadeRouter ({diag['scorer']}, same folds)\n",
                "`default λ grid only`: CascadeRouter.deferral_points' own 32-point grid, without the router's "
                "exact breakpoints; `free scoring`: scoring cost 0; `perfect scorer`: scores = the true quality "
                "(the ceiling of each policy with this router).\n",
                report_to_markdown(
                    frame_from_records(diag["summary"]),
                    ["quality", "gain", "cost", "auc", "apgr", "saving"],
                    headers={**HEADERS, "cost": "cost @λ=0"},
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
        help="skip the extra CascadeRouter variants on GenAI-Bench USD at r = 0.7",
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
    below = doc["datasets"].get(BELOW_KEY, {}).get("scorers", {}).get(BELOW_SCORER)
    doc["below_router"] = None if below is None else {k: v for k, v in below["vs_router"].items() if k != "per_fold"}
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
        log("targets (GenAI-Bench USD, r = 0.7): " + json.dumps(doc["targets"]))


if __name__ == "__main__":
    main()
