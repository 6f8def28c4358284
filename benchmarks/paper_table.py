"""CATImage-style routing table on real human ratings (GenAI-Bench, AGIQA-3K).

For each dataset: 5-fold cross-validation by prompt, 3 repeats (the same folds for every
method), comparing every single generator, the random mixture (hull of the single-model
points), the oracle and CostAwareRouter with every combination of features
{minilm, complexity, minilm+complexity} x quality models {knn, mlp, gbm, ridge, lowrank}. All
router rows are reported side by side; the one "best configuration" row is CostAwareRouterCV,
chosen by *nested* selection (inner 3-fold CV on each outer training set, by deferral AUC),
never on the test folds. GenAI-Bench USD and AGIQA-3K alignment get the low-rank model pooled
over both sets, GenAI-Bench USD the fine-tuned transformer (see ``_paper_rows.py``; these slow
rows run on the first ``--extra-repeats`` repeats). GenAI-Bench also gets the split-rater
analysis (train on two raters, score on the third) that measures how much of the oracle's
advantage is rating noise.

Usage::

    COSTROUTE_DATA=../shared/data .venv/bin/python benchmarks/paper_table.py          # full
    COSTROUTE_DATA=../shared/data .venv/bin/python benchmarks/paper_table.py --quick  # smoke

Every figure of the main tables is read off the pooled out-of-fold curve (for each repeat,
every prompt routed by the fold model that did not see it, one curve over all prompts; mean
± std over repeats), with the median over the test folds of the per-fold value beside it;
the target checks use the pooled value. The per-fold mean ± std follows in a second table.

Outputs (``--out``, default ``benchmarks/results``): ``paper_table.json`` (every per-fold
score, the per-fold and pooled summaries), ``paper_table.md`` (the tables) and one
``paper_table_<dataset>.png`` deferral plot per dataset (pooled out-of-fold curves of the
first repeat). Timings are printed as the run goes.

Threads: every BLAS/OpenMP pool is limited to ``--threads`` (default 1). Histogram gradient
boosting's OpenMP loops slow down by ~8x when their threads compete with other processes
for two cores, and one thread per process is the honest setting on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

# Thread limits must be set before numpy / torch start their pools.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import frame_from_records, limit_threads_from_argv, load_text, to_json  # noqa: E402

limit_threads_from_argv()

import pandas as pd  # noqa: E402
from _paper_rows import POOLED, SELECTED, TRANSFORMER, extra_routers, selection_name, selection_router  # noqa: E402

from costroute import CostAwareRouter  # noqa: E402
from costroute.evaluation import (  # noqa: E402
    cross_validate_routing,
    interaction_r,
    noise_ceiling,
    report_to_markdown,
    routing_report,
    split_rater_cross_validate,
)

FEATURES = ("minilm", "complexity", "minilm+complexity")
QUALITY_MODELS = ("knn", "mlp", "gbm", "ridge", "lowrank")
TABLE_METRICS = ("quality", "gain", "auc", "apgr", "saving", "reached_best", "cost_50", "cost_80")
HEADERS = {
    "quality": "quality @λ=0",
    "gain": "Δ vs best single",
    "auc": "AUC",
    "apgr": "APGR",
    "saving": "saving @q_best",
    "reached_best": "reaches q_best",
    "cost_50": "cost to 50 %",
    "cost_80": "cost to 80 %",
    "apgr_indep": "APGR vs other-rater oracle",
}
TARGETS = {"gain": 0.10, "apgr": 0.25, "saving": 3.0}


def router_name(features: str, quality_model: str) -> str:
    return f"{features}/{quality_model}"


# --------------------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------------------
def load_datasets(names):
    from costroute.datasets import load_agiqa3k, load_genai_bench

    loaders = {
        "genai_bench_flops": ("GenAI-Bench, FLOPs (4 open generators)", lambda: load_genai_bench(cost_unit="flops")),
        "genai_bench_usd": ("GenAI-Bench, USD (all 6 generators)", lambda: load_genai_bench(cost_unit="usd")),
        "agiqa3k_alignment": (
            "AGIQA-3K, alignment MOS (10 configurations, USD)",
            lambda: load_agiqa3k(target="alignment"),
        ),
        "agiqa3k_quality": (
            "AGIQA-3K, perceptual-quality MOS (10 configurations, USD)",
            lambda: load_agiqa3k(target="quality"),
        ),
    }
    unknown = [n for n in names if n not in loaders]
    if unknown:
        raise SystemExit(f"unknown datasets {unknown}; choose from {list(loaders)}")
    return {n: (loaders[n][0], loaders[n][1]()) for n in names}


# --------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------
def make_routers(generators, features, quality_models, seed):
    return {
        router_name(f, q): CostAwareRouter(generators, features=f, quality_model=q, random_state=seed)
        for f in features
        for q in quality_models
    }


def merge_results(main, extra):
    """Add ``extra``'s router rows to ``main``, checking that the shared folds are identical."""
    keys = ["repeat", "fold", "method"]
    base_main = main.scores[main.scores["kind"] != "router"].set_index(keys)
    base_extra = extra.scores[extra.scores["kind"] != "router"].set_index(keys)
    shared = base_main.loc[base_extra.index]
    pd.testing.assert_frame_equal(
        shared[["quality", "auc"]], base_extra[["quality", "auc"]], check_exact=False, rtol=1e-12
    )
    rows = extra.scores[extra.scores["kind"] == "router"]
    main.scores = pd.concat([main.scores, rows], ignore_index=True)
    for name, preds in extra.oof_predictions.items():
        main.oof_predictions[name] = preds
    return main


def run_dataset(key, title, data, args, log):
    t0 = time.perf_counter()
    gens = data.generators
    fast_models = [q for q in args.quality_models if q != "gbm"]
    routers_fast = make_routers(gens, args.features, fast_models, args.seed)
    # gbm on the cheap complexity features runs with the fast group; gbm on the 384-d
    # embeddings costs ~10 s per fit and may run on fewer repeats (--gbm-repeats)
    gbm_cheap = [f for f in args.features if f == "complexity"] if "gbm" in args.quality_models else []
    gbm_heavy = [f for f in args.features if f != "complexity"] if "gbm" in args.quality_models else []
    routers_fast.update(make_routers(gens, gbm_cheap, ["gbm"], args.seed))
    routers_heavy = make_routers(gens, gbm_heavy, ["gbm"], args.seed)
    # keep the grid order in the report
    order = [router_name(f, q) for f in args.features for q in args.quality_models]
    nested = not args.no_nested and (args.nested_all or key == "genai_bench_usd")
    if nested:
        routers_fast[SELECTED] = selection_router(gens, args.features, args.quality_models, args.seed, args.quick)
        order.append(SELECTED)
    extra = {} if args.no_extra else extra_routers(key, gens, args.seed)
    order += list(extra)
    log(
        f"[{key}] {len(data.prompts)} prompts x {len(gens)} generators; "
        f"{len(routers_fast)} routers on {args.folds}x{args.repeats} folds, "
        f"{len(routers_heavy)} embedding-gbm routers on {args.folds}x{min(args.gbm_repeats, args.repeats)} folds"
    )
    res = cross_validate_routing(
        routers_fast,
        data.prompts,
        data.quality,
        cv=args.folds,
        n_repeats=args.repeats,
        random_state=args.seed,
        return_models=nested,
        verbose=args.verbose,
        progress=args.progress,
    )
    log(f"[{key}] main CV done in {time.perf_counter() - t0:.0f}s")
    selections = {}
    if nested:
        for (rep, fold), models in sorted(res.models.items()):
            selections[f"{rep}/{fold}"] = selection_name(models[SELECTED])
        res.models = {}
        counts = pd.Series(list(selections.values())).value_counts().to_dict()
        log(f"[{key}] nested selection picked {counts}")
    if routers_heavy:
        t1 = time.perf_counter()
        heavy = cross_validate_routing(
            routers_heavy,
            data.prompts,
            data.quality,
            cv=args.folds,
            n_repeats=min(args.gbm_repeats, args.repeats),
            random_state=args.seed,
            verbose=args.verbose,
            progress=args.progress,
        )
        res = merge_results(res, heavy)
        log(f"[{key}] embedding-gbm CV done in {time.perf_counter() - t1:.0f}s")
    if extra:
        t1 = time.perf_counter()
        slow = cross_validate_routing(
            extra,
            data.prompts,
            data.quality,
            cv=args.folds,
            n_repeats=min(args.extra_repeats, args.repeats),
            random_state=args.seed,
            verbose=args.verbose,
            progress=args.progress,
        )
        res = merge_results(res, slow)
        log(f"[{key}] {list(extra)} CV done in {time.perf_counter() - t1:.0f}s")
    report = routing_report(res)
    routers_in_report = [m for m in report.index if report.loc[m, "kind"] == "router"]
    ordered = (
        [m for m in report.index if report.loc[m, "kind"] in ("single", "hull")]
        + [m for m in order if m in routers_in_report]
        + [m for m in report.index if report.loc[m, "kind"] == "oracle"]
    )
    report = report.loc[ordered]
    pooled = routing_report(res, pooled=True)
    pooled = pooled.loc[[m for m in ordered if m in pooled.index]]
    elapsed = time.perf_counter() - t0
    log(f"[{key}] done in {elapsed:.0f}s")
    return res, report, pooled, selections, elapsed


def run_split_rater(key, data, args, log):
    t0 = time.perf_counter()
    models = [q for q in args.quality_models if q != "gbm"]
    routers = make_routers(data.generators, args.features, models, args.seed)
    if "gbm" in args.quality_models and "complexity" in args.features:
        routers.update(make_routers(data.generators, ["complexity"], ["gbm"], args.seed))
    res = split_rater_cross_validate(
        routers,
        data.prompts,
        data.ratings,
        generator_names=data.generators.names,
        cv=args.folds,
        n_repeats=1,
        random_state=args.seed,
        verbose=args.verbose,
        progress=args.progress,
    )
    report = routing_report(res)
    elapsed = time.perf_counter() - t0
    log(f"[{key} split-rater] {len(routers)} routers x {args.folds} folds x 3 raters in {elapsed:.0f}s")
    return res, report, elapsed


def interaction_diagnostics(res, ratings=None):
    """How well routers predict *which generator suits which prompt* (repeat 0), and its ceiling.

    :func:`costroute.evaluation.interaction_r` of each router's out-of-fold predictions and,
    with individual ratings, :func:`costroute.evaluation.noise_ceiling` of the interaction.
    """
    out = {
        "router_interaction_r": {
            name: interaction_r(preds[0], res.true_quality) for name, preds in res.oof_predictions.items()
        }
    }
    if ratings is not None:
        ceiling = noise_ceiling(ratings)
        out.update(
            single_rater_r=ceiling.single_rater_r,
            mean_rating_reliability=ceiling.reliability,
            ceiling_r=ceiling.ceiling_r,
        )
    return out


# --------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------


def target_check(pooled, method):
    """Each target against ``method``'s pooled value (mean over repeats), with the per-fold median beside it."""
    row = pooled.loc[method]
    out = {}
    for metric, goal in TARGETS.items():
        value = float(row[f"{metric}_mean"])
        out[metric] = {
            "value": value,
            "std": float(row[f"{metric}_std"]),
            "fold_median": float(row[f"{metric}_fold_median"]),
            "target": goal,
            "met": bool(value >= goal),
        }
    return out


def headline_frame(entry):
    """The pooled summary of a results entry with the per-fold medians (from the per-fold scores
    when the summary predates the ``<metric>_fold_median`` columns)."""
    frame = frame_from_records(entry["pooled_summary"])
    if not any(col.endswith("_fold_median") for col in frame.columns):
        scores = frame_from_records(entry["scores"])
        medians = scores.groupby(level="method")[list(TABLE_METRICS)].median()
        for m in TABLE_METRICS:
            frame[f"{m}_fold_median"] = medians[m].reindex(frame.index)
    return frame


def render_targets(pooled):
    """The GenAI-Bench USD target table: pooled values, per-fold median beside them."""
    routers = [m for m in pooled.index if pooled.loc[m, "kind"] == "router" and m != SELECTED]
    rows = [
        "| target | goal | CostAwareRouterCV, nested: pooled (per-fold median) | best router row, pooled (optimistic) |",
        "|---|---:|---:|---:|",
    ]
    labels = {"gain": "quality @λ=0 − best single", "apgr": "APGR", "saving": "saving @q_best"}
    for m, goal in TARGETS.items():
        if SELECTED in pooled.index:
            row = pooled.loc[SELECTED]
            std = "" if pd.isna(row[f"{m}_std"]) else f" ± {row[f'{m}_std']:.3f}"
            verdict = "met" if row[f"{m}_mean"] >= goal else "not met"
            nested = f"{row[f'{m}_mean']:.3f}{std} (median {row[f'{m}_fold_median']:.3f}) ({verdict})"
        else:
            nested = "—"
        best = pooled.loc[routers, f"{m}_mean"].max() if routers else float("nan")
        rows.append(f"| {labels[m]} | ≥ {goal:g} | {nested} | {best:.3f} |")
    return "\n".join(rows) + "\n"


def plot_dataset(key, title, res, features, path):
    """One column per feature set; top row linear cost (the scale of the AUC), bottom log cost."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from costroute.evaluation import plot_deferral, single_model_points

    curves = res.curves(0)
    points = single_model_points(res.true_quality, res.normalized_costs, res.generator_names)
    c_min = float(res.normalized_costs.min())
    fig, axes = plt.subplots(2, len(features), figsize=(5.0 * len(features), 8.4), sharey=True, squeeze=False)
    for col, feat in enumerate(features):
        chosen = {k.split("/", 1)[1]: v for k, v in curves.items() if k.startswith(feat + "/")}
        if SELECTED in curves and col == len(features) - 1:
            chosen[SELECTED] = curves[SELECTED]
        chosen["random mixture"] = curves["random mixture"]
        chosen["oracle"] = curves["oracle"]
        for row in range(2):
            ax = axes[row, col]
            plot_deferral(
                chosen, points, ax=ax, annotate=True, title=f"features = {feat}" + (" (log cost)" if row else "")
            )
            if row:
                ax.set_xscale("log")
                ax.set_xlim(max(c_min, 1e-6) * 0.5, 1.3)
            if row and ax.get_legend() is not None:
                ax.get_legend().remove()
    fig.suptitle(f"{title}: pooled out-of-fold deferral curves (repeat 0)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _fold_note(meta, entry):
    note = f"{meta['folds']}-fold CV by prompt x {meta['repeats']} repeats"
    if meta["gbm_repeats"] < meta["repeats"] and "gbm" in meta["quality_models"]:
        note += f" (gbm on embedding features: {meta['gbm_repeats']} repeat(s), the same first folds)"
    slow = [f"`{r['method']}`" for r in entry["summary"] if r["method"] in (POOLED, TRANSFORMER)]
    if slow and meta.get("extra_repeats", meta["repeats"]) < meta["repeats"]:
        note += f"; {' and '.join(slow)}: {meta['extra_repeats']} repeat(s), the same first folds"
    return note


def render_markdown(doc):
    """The Markdown report from the JSON document (so tables can be re-rendered without rerunning)."""
    meta, datasets = doc["meta"], doc["datasets"]
    out = [
        "# Routing benchmark (generated by benchmarks/paper_table.py)\n",
        f"Command: `{meta['command']}`; total wall time {meta['total_wall_time_s']:.0f} s on "
        f"{meta['cpu_count']} cores, {meta['threads']} thread(s), load average "
        f"{load_text(meta['load_average_start'])} at start and {load_text(meta['load_average_end'])} at the end "
        "(1/5/15 min; other processes share the machine).\n",
        "Main tables: every figure is read off the pooled out-of-fold curve (for each repeat, every prompt "
        "routed by the fold model that did not see it, one curve over all prompts), mean ± std over the "
        "repeats, with the median over the test folds of the per-fold value in parentheses; a mean of "
        "per-fold savings, a ratio with a long tail over folds, is never the headline. The per-fold "
        "mean ± std over the test folds follows each table.\n",
        "Columns (each on the prompts it is scored on: all of them for a pooled curve, a fold's for a per-fold "
        "value): quality @λ=0 = mean true quality routing with λ = 0; Δ vs best single = that minus the "
        "best single generator's mean quality on the same prompts; AUC = area under the running-max "
        "quality–cost curve on [c̃_min, 1] / (1 − c̃_min); APGR = (AUC − AUC_hull)/(AUC_oracle − AUC_hull); "
        "saving = cost_hull(q_best)/cost(q_best) (0 where the curve never reaches q_best); "
        "reaches q_best = share of curves (repeats or folds) that do; "
        "cost to 50 %/80 % = least mean normalised cost reaching 50 %/80 % of the way from the cheapest to "
        "the best single generator's quality (the mean over the curves that reach it, with (k/n) when "
        'only k of n do); "never" when none does. The split-rater tables leave out gbm on the embedding '
        "features (time).\n",
    ]
    usd = datasets.get("genai_bench_usd", {})
    if "pooled_summary" in usd:
        out += ["## Targets on GenAI-Bench USD\n", render_targets(headline_frame(usd))]
    for key, entry in datasets.items():
        costs = ", ".join(f"{n} {v:.4g}" for n, v in zip(entry["generators"], entry["normalized_costs"]))
        out += [
            f"## {entry['title']} (`{key}`)\n",
            f"{entry['n_prompts']} prompts x {len(entry['generators'])} generators; normalised costs: {costs}. "
            f"{_fold_note(meta, entry)}; wall time {entry['wall_time_s']:.0f} s. Pooled out-of-fold curves, "
            f"mean ± std over repeats (median over the test folds):\n",
            report_to_markdown(headline_frame(entry), TABLE_METRICS, headers=HEADERS, median=True),
        ]
        if entry.get("nested_selection"):
            counts = pd.Series(list(entry["nested_selection"].values())).value_counts()
            picked = ", ".join(f"{k} ({v}x)" for k, v in counts.items())
            out.append(f"`{SELECTED}` picked, per outer fold (inner 3-fold CV by deferral AUC): {picked}.\n")
        if entry.get("plot"):
            out.append(f"![{entry['title']}]({entry['plot']})\n")
        diag = entry.get("diagnostics")
        if diag:
            rs = diag["router_interaction_r"]
            text = (
                "Which generator suits which prompt? Correlation between the out-of-fold predicted and the "
                "true prompt x generator interaction (quality minus prompt mean and generator mean; "
                "repeat 0): " + ", ".join(f"{k} {v:.2f}" for k, v in rs.items()) + "."
            )
            if "single_rater_r" in diag:
                text += (
                    f" Two single raters agree on that interaction at r = {diag['single_rater_r']:.2f}; the "
                    f"rater mean's reliability is {diag['mean_rating_reliability']:.2f}, so a perfect "
                    f"predictor of the noise-free interaction would reach r ≈ {diag['ceiling_r']:.2f}."
                )
            out.append(text + "\n")
        out += [
            "### Per-fold mean ± std\n",
            f"The same methods scored on each test fold of about {entry['n_prompts'] // meta['folds']} prompts, "
            "mean ± std over the folds.\n",
            report_to_markdown(frame_from_records(entry["summary"]), TABLE_METRICS, headers=HEADERS),
        ]
        sr = entry.get("split_rater")
        if sr:
            share = sr["noise_share_of_oracle_gap"]
            split = frame_from_records(sr["summary"])
            out += [
                "### Split-rater evaluation\n",
                "Train on the mean of two raters, score every method on the held-out third rater (each rater "
                f"in turn; {meta['folds']} folds x 3 raters). `oracle` routes on the held-out rater's own "
                "ratings; `oracle (other raters)` routes on the other two raters' mean for the test images "
                "and is scored on the held-out rater. Share of the oracle's AUC gain over the random mixture "
                "that disappears when the oracle cannot see the scoring rater's noise: "
                f"**{'n/a' if share is None else format(share, '.0%')}**. Mean ± std over folds and raters "
                "(median in parentheses; no pooled curve: each rater is its own target). "
                f"Wall time {sr['wall_time_s']:.0f} s.\n",
                report_to_markdown(
                    split,
                    ("quality", "gain", "auc", "apgr", "apgr_indep", "saving"),
                    headers=HEADERS,
                    median="saving_median" in split.columns,  # results written before medians have none
                ),
            ]
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2 folds, 1 repeat, knn/ridge only, no slow rows"
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--gbm-repeats",
        type=int,
        default=None,
        help="repeats for gbm on embedding features (slow, ~5 s per fit); default all. "
        "Fewer repeats use the first repeats' folds, which every other method shares",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["genai_bench_flops", "genai_bench_usd", "agiqa3k_alignment", "agiqa3k_quality"],
    )
    parser.add_argument("--features", nargs="+", default=list(FEATURES), choices=FEATURES)
    parser.add_argument("--quality-models", nargs="+", default=list(QUALITY_MODELS), choices=QUALITY_MODELS)
    parser.add_argument("--no-nested", action="store_true", help="skip the CostAwareRouterCV (nested selection) row")
    parser.add_argument("--no-extra", action="store_true", help="skip the pooled low-rank and transformer rows")
    parser.add_argument(
        "--extra-repeats",
        type=int,
        default=1,
        help="repeats of the slow pooled low-rank and transformer rows (the first repeats' folds)",
    )
    parser.add_argument(
        "--nested-all", action="store_true", help="nested selection on every dataset (default: GenAI-Bench USD)"
    )
    parser.add_argument("--no-split-rater", action="store_true")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads (set before imports)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--verbose", type=int, default=0, help="1: one line per fold on stdout")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="progress bar of every cross-validation on stderr (default: on)",
    )
    parser.add_argument(
        "--render-only", type=Path, metavar="JSON", help="only re-render the Markdown next to an existing results JSON"
    )
    args = parser.parse_args(argv)
    if args.render_only:
        doc = json.loads(args.render_only.read_text())
        md_path = args.render_only.with_suffix(".md")
        md_path.write_text(render_markdown(doc))
        print(f"wrote {md_path}")
        return doc
    if args.gbm_repeats is None:
        args.gbm_repeats = args.repeats
    if args.quick:
        args.folds, args.repeats, args.gbm_repeats = 2, 1, 1
        args.quality_models = ["knn", "ridge"]
        args.features = ["minilm", "complexity"]
        args.no_extra = True
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    except ImportError:  # pragma: no cover
        pass
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:  # pragma: no cover
        pass

    t_start = time.perf_counter()
    load0 = os.getloadavg() if hasattr(os, "getloadavg") else None

    def log(msg):
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", flush=True)

    log(
        f"settings: folds={args.folds} repeats={args.repeats} gbm_repeats={args.gbm_repeats} "
        f"threads={args.threads} seed={args.seed} load average at start={load0}"
    )
    datasets = load_datasets(args.datasets)
    log(f"loaded {list(datasets)}")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "paper_table_quick" if args.quick else "paper_table"
    results = {}
    for key, (title, data) in datasets.items():
        res, report, pooled, selections, elapsed = run_dataset(key, title, data, args, log)
        entry = {
            "title": title,
            "n_prompts": len(data.prompts),
            "generators": data.generators.names,
            "cost_unit": data.generators.cost_unit,
            "normalized_costs": data.generators.normalized_costs(),
            "wall_time_s": elapsed,
            "summary": report.reset_index().to_dict(orient="records"),
            "pooled_summary": pooled.reset_index().to_dict(orient="records"),
            "scores": res.scores.to_dict(orient="records"),
            "nested_selection": selections,
            "diagnostics": interaction_diagnostics(res, getattr(data, "ratings", None)),
        }
        if key == "genai_bench_usd":
            # pooled values decide; the per-fold medians stand beside them
            routers = [m for m in pooled.index if pooled.loc[m, "kind"] == "router" and m != SELECTED]
            best_auc = max(routers, key=lambda m: pooled.loc[m, "auc_mean"])
            entry["targets"] = {
                "nested_selection": target_check(pooled, SELECTED) if SELECTED in pooled.index else None,
                "best_auc_pooled": {"method": best_auc, **target_check(pooled, best_auc)},
                "max_over_grid_pooled": {m: float(pooled.loc[routers, f"{m}_mean"].max()) for m in TARGETS},
            }
        if not args.no_split_rater and key.startswith("genai_bench"):
            sres, sreport, selapsed = run_split_rater(key, data, args, log)
            oracle_gap = sreport.loc["oracle", "auc_mean"] - sreport.loc["random mixture", "auc_mean"]
            indep_gap = sreport.loc["oracle (other raters)", "auc_mean"] - sreport.loc["random mixture", "auc_mean"]
            entry["split_rater"] = {
                "wall_time_s": selapsed,
                "summary": sreport.reset_index().to_dict(orient="records"),
                "scores": sres.scores.to_dict(orient="records"),
                "noise_share_of_oracle_gap": 1 - indep_gap / oracle_gap if oracle_gap > 0 else None,
            }
        if not args.no_plots:
            png = args.out / f"{stem}_{key}.png"
            plot_dataset(key, title, res, args.features, png)
            entry["plot"] = png.name
            log(f"[{key}] wrote {png}")
        results[key] = entry
    total = time.perf_counter() - t_start
    load1 = os.getloadavg() if hasattr(os, "getloadavg") else None
    meta = {
        "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
        "folds": args.folds,
        "repeats": args.repeats,
        "gbm_repeats": min(args.gbm_repeats, args.repeats),
        "extra_repeats": min(args.extra_repeats, args.repeats),
        "seed": args.seed,
        "threads": args.threads,
        "features": args.features,
        "quality_models": args.quality_models,
        "total_wall_time_s": total,
        "load_average_start": load0,
        "load_average_end": load1,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "metric_definitions": "see the costroute.evaluation module docstring",
        "json_conventions": 'NaN -> null, inf -> "inf", floats rounded to 7 significant digits',
    }
    doc = to_json({"meta": meta, "datasets": results})
    (args.out / f"{stem}.json").write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    (args.out / f"{stem}.md").write_text(render_markdown(doc))
    log(f"wrote {args.out / (stem + '.json')} and {args.out / (stem + '.md')}; total {total:.0f}s")
    if "genai_bench_usd" in results and "targets" in results["genai_bench_usd"]:
        log("targets on GenAI-Bench USD: " + json.dumps(to_json(results["genai_bench_usd"]["targets"])))
    return results


if __name__ == "__main__":
    main()
