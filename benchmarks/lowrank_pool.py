"""Low-rank quality model, pooled data sets and new generators, on real human ratings.

Two targets: GenAI-Bench (USD costs, 527 prompts x 6 generators) and AGIQA-3K alignment
(287 complete prompts x 10 configurations). MiniLM embeddings are computed once. For each
target, 5-fold cross-validation by prompt (the same folds for every method, ``--repeats``
seeds), scored on the target's test fold with its own costs:

* ``minilm/ridge``          -- RidgeCV per generator (the reference of ``paper_table.py``);
* ``minilm/lowrank``        -- LowRankRegressor on the target's training fold alone;
* ``minilm/lowrank pooled`` -- LowRankRegressor on ``pool(target training fold, other set)``
  (every prompt of the other set added; each set standardised on its own cells), whose
  predictions for the target's generators are mapped back to the target's scale.

Metrics per fold: AUC, APGR (vs hull and oracle of the test fold) and the correlation of the
predicted with the true prompt x generator interaction (both double-centred on the test fold).

New generators: each generator of a target in turn is held out of training; the model is fitted
on the other generators' training-fold ratings, the held-out one is added with
``add_generator`` from m = 10, 25, 50, 100 of its rated training prompts (random draws), and
routing over all generators is scored on the test fold. ``m = all`` is the model trained with
every generator.

Usage::

    COSTROUTE_DATA=../shared/data .venv/bin/python benchmarks/lowrank_pool.py [--repeats 2] [--quick]

Writes ``benchmarks/results/lowrank_pool.json`` (per-fold values and summaries) and prints the
tables.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import limit_threads_from_argv, to_json  # noqa: E402

limit_threads_from_argv()

import json  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.linear_model import RidgeCV  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402
from sklearn.utils import Bunch  # noqa: E402

from costroute.datasets import load_agiqa3k, load_genai_bench, pool  # noqa: E402
from costroute.evaluation import apgr, deferral_curve, hull_curve, interaction_r, oracle_curve  # noqa: E402
from costroute.features import SentenceEmbedder  # noqa: E402
from costroute.quality_models import LowRankRegressor  # noqa: E402

M_VALUES = (10, 25, 50, 100)
# One setting for every low-rank fit (single, pooled, new-generator): 7 penalties, 3 inner folds
# (the pooled fits run EM on a half-empty matrix; the default 13 x 5 grid is ~3x slower).
LOWRANK = {"alphas": np.logspace(-2, 4, 7), "difficulty_alphas": np.logspace(-2, 4, 7), "cv": 3}
METHODS = ("minilm/ridge", "minilm/lowrank", "minilm/lowrank pooled")


def scores(pred: np.ndarray, Q: np.ndarray, c: np.ndarray) -> dict:
    a_router = deferral_curve(pred, Q, c).auc()
    a_hull, a_oracle = hull_curve(Q, c).auc(), oracle_curve(Q, c).auc()
    return {"auc": a_router, "apgr": apgr(a_router, a_hull, a_oracle), "interaction_r": interaction_r(pred, Q)}


def subset(data: Bunch, rows: np.ndarray) -> Bunch:
    return Bunch(prompts=[data.prompts[i] for i in rows], quality=data.quality.iloc[rows], generators=data.generators)


def summary(values) -> dict:
    arr = np.asarray(values, dtype=float)
    return {
        "mean": float(np.nanmean(arr)),
        "std": float(np.nanstd(arr, ddof=1)) if arr.size > 1 else 0.0,
        "n": int(arr.size),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--draws", type=int, default=3, help="random m-prompt draws per held-out generator and fold")
    parser.add_argument("--threads", default="1")
    parser.add_argument("--quick", action="store_true", help="1 repeat, 2 held-out generators per set (smoke)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    start = time.time()
    load_start = os.getloadavg()

    sets = {
        "genai_bench_usd": load_genai_bench(cost_unit="usd"),
        "agiqa3k_alignment": load_agiqa3k(target="alignment"),
    }
    embedder = SentenceEmbedder(progress=False)
    emb = {name: embedder.fit_transform(data.prompts) for name, data in sets.items()}
    print(f"loaded and embedded in {time.time() - start:.0f} s", flush=True)

    results: dict = {"routing": {}, "new_generator": {}, "fits": {}}
    for target, other in (("genai_bench_usd", "agiqa3k_alignment"), ("agiqa3k_alignment", "genai_bench_usd")):
        t0 = time.time()
        data, odata = sets[target], sets[other]
        Q_all = data.quality.to_numpy(dtype=float)
        c = data.generators.normalized_costs()
        X, Xo = emb[target], emb[other]
        K = Q_all.shape[1]
        per_fold = {m: [] for m in METHODS}
        new_gen = {str(m): [] for m in (*M_VALUES, "all")}
        fits = []
        held_out = range(K) if not args.quick else range(2)
        for rep in range(repeats):
            folds = KFold(args.folds, shuffle=True, random_state=rep).split(X)
            for f, (tr, te) in enumerate(folds):
                Q_tr, Q_te = Q_all[tr], Q_all[te]
                ridge = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(X[tr], Q_tr)
                per_fold["minilm/ridge"].append(scores(ridge.predict(X[te]), Q_te, c))
                single = LowRankRegressor(**LOWRANK, random_state=rep).fit(X[tr], Q_tr)
                per_fold["minilm/lowrank"].append(scores(single.predict(X[te]), Q_te, c))
                pooled_data = pool(subset(data, tr), odata, names=[target, other])
                tp = time.time()
                pooled = LowRankRegressor(**LOWRANK, random_state=rep).fit(np.vstack([X[tr], Xo]), pooled_data.quality)
                fit_s = time.time() - tp
                cols = [pooled_data.quality.columns.get_loc(g) for g in data.quality.columns]
                pred = pooled_data.to_source_scale(pooled.predict(X[te])[:, cols], target)
                per_fold["minilm/lowrank pooled"].append(scores(pred, Q_te, c))
                fits.append(
                    {
                        "repeat": rep,
                        "fold": f,
                        "single": {
                            "rank": single.rank_,
                            "alpha": single.alpha_,
                            "difficulty_alpha": single.difficulty_alpha_,
                        },
                        "pooled": {
                            "rank": pooled.rank_,
                            "alpha": pooled.alpha_,
                            "difficulty_alpha": pooled.difficulty_alpha_,
                            "em_iterations": pooled.n_iter_,
                            "seconds": fit_s,
                        },
                    }
                )
                # new generators
                rng = np.random.default_rng(1000 * rep + f)
                new_gen["all"].append(per_fold["minilm/lowrank"][-1]["apgr"])
                for j in held_out:
                    keep = [k for k in range(K) if k != j]
                    base = LowRankRegressor(**LOWRANK, random_state=rep).fit(X[tr], Q_tr[:, keep])
                    for m in M_VALUES:
                        for _ in range(args.draws):
                            rows = rng.choice(len(tr), size=min(m, len(tr)), replace=False)
                            model = copy.deepcopy(base).add_generator(X[tr][rows], Q_tr[rows, j], name="new")
                            p = model.predict(X[te])
                            order = np.argsort([*keep, j])  # back to the data's column order
                            new_gen[str(m)].append(scores(p[:, order], Q_te, c)["apgr"])
                print(f"  {target} repeat {rep} fold {f}: {time.time() - t0:.0f} s", flush=True)
        results["routing"][target] = {
            "folds": per_fold,
            "summary": {
                m: {k: summary([r[k] for r in rows]) for k in ("auc", "apgr", "interaction_r")}
                for m, rows in per_fold.items()
            },
        }
        results["new_generator"][target] = {
            "apgr": new_gen,
            "summary": {m: summary(v) for m, v in new_gen.items()},
            "held_out_generators": [data.quality.columns[j] for j in held_out],
        }
        results["fits"][target] = fits
        results["routing"][target]["seconds"] = time.time() - t0

    shared = sorted(set(sets["genai_bench_usd"].quality.columns) & set(sets["agiqa3k_alignment"].quality.columns))
    results["meta"] = {
        "command": " ".join(["lowrank_pool.py", *sys.argv[1:]]),
        "repeats": repeats,
        "folds": args.folds,
        "draws": args.draws,
        "shared_generator_names": shared,
        "wall_seconds": time.time() - start,
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "threads": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "lowrank_pool_quick.json" if args.quick else "lowrank_pool.json"
    (out / name).write_text(json.dumps(to_json(results), indent=1) + "\n")

    print(f"\nGenerators shared by name between the two sets: {shared or 'none'}")
    for target, res in results["routing"].items():
        print(f"\n{target}: {args.folds}-fold CV by prompt x {repeats} repeat(s), mean ± std over folds")
        print("| method | AUC | APGR | interaction r |\n|---|---:|---:|---:|")
        for m, s in res["summary"].items():
            cells = " | ".join(f"{s[k]['mean']:.3f} ± {s[k]['std']:.3f}" for k in ("auc", "apgr", "interaction_r"))
            print(f"| {m} | {cells} |")
    for target, res in results["new_generator"].items():
        print(
            f"\n{target}: APGR with one generator added from m rated prompts "
            f"(held out in turn: {len(res['held_out_generators'])} generators x folds x {args.draws} draws)"
        )
        print("| m | APGR |\n|---|---:|")
        for m, s in res["summary"].items():
            print(f"| {m} | {s['mean']:.3f} ± {s['std']:.3f} (n={s['n']}) |")
    print(f"\nwall time {time.time() - start:.0f} s; written {out / name}")


if __name__ == "__main__":
    main()
