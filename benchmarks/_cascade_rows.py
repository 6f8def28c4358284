"""Data sets, scorer configurations, methods and curve comparisons of benchmarks/cascade_table.py."""

from __future__ import annotations

import numpy as np

from costroute import CascadeRouter, CostAwareRouter
from costroute.cascade import ThresholdCascade
from costroute.evaluation import deferral_curve

CORRELATIONS = (0.3, 0.5, 0.7, 0.9)
ROUTER, THRESHOLD = "router (minilm/knn)", "threshold cascade"
INDEX, MYOPIC = "CascadeRouter (index)", "CascadeRouter (myopic)"
POLICIES = {INDEX: "index", MYOPIC: "myopic"}
#: the two-scorer configuration on simulated data: a weak scorer at CLIPScore's cost, a strong one at VQAScore's
PAIR = "r=0.3 (CLIP cost) + r=0.7"
TEASER_PAIR = "clipscore + vqascore"
#: Bands of normalised cost in which the cascade-vs-router comparison is also counted.
BANDS = (0.0, 0.001, 0.01, 0.1, 0.3, 0.6, 1.0 + 1e-9)

DATASETS = {
    "genai_bench_usd": "GenAI-Bench, USD (6 generators)",
    "genai_bench_flops": "GenAI-Bench, FLOPs (4 open generators)",
    "agiqa3k_alignment": "AGIQA-3K, alignment MOS (10 configurations, USD)",
    "agiqa3k_quality": "AGIQA-3K, perceptual-quality MOS (10 configurations, USD)",
    "teaser_usd": "GenAI-Bench teaser, real VQAScore and CLIPScore (4 generators, USD)",
}


class DefaultGridCascadeRouter(CascadeRouter):
    """A CascadeRouter whose deferral curve uses only its geometric λ grid (no router breakpoints)."""

    def default_lambdas(self, predicted, n: int = 32, exact: bool = False) -> np.ndarray:
        return super().default_lambdas(predicted, n, exact=False)


def load(key):
    from costroute.datasets import load_agiqa3k, load_genai_bench, load_genai_bench_teaser

    loaders = {
        "genai_bench_usd": lambda: load_genai_bench(cost_unit="usd"),
        "genai_bench_flops": lambda: load_genai_bench(cost_unit="flops"),
        "agiqa3k_alignment": lambda: load_agiqa3k(target="alignment"),
        "agiqa3k_quality": lambda: load_agiqa3k(target="quality"),
        "teaser_usd": lambda: load_genai_bench_teaser(cost_unit="usd"),
    }
    if key not in loaders:
        raise SystemExit(f"unknown data set {key!r}; choose from {list(loaders)}")
    return DATASETS[key], loaders[key]()


def scorer_costs(unit):
    from costroute.scoring import CLIPScorer, VQAScorer

    return {"vqascore": VQAScorer().cost_in(unit), "clipscore": CLIPScorer().cost_in(unit)}


def within_prompt_r(Q, S):
    dq = Q - Q.mean(axis=1, keepdims=True)
    ds = S - S.mean(axis=1, keepdims=True)
    return float(np.corrcoef(dq.ravel(), ds.ravel())[0, 1])


def scorer_configs(key, data, correlations, seed):
    """``{label: (scores, scoring cost(s), description)}``: one matrix and one cost, or lists of two.

    Simulated scorers (``simulate_scores``, once per r on the full matrix, the same seed for
    every r) are costed as VQAScore; the pair adds to the r = 0.7 scorer (the same matrix as
    the single r = 0.7 row) a weak r = 0.3 one, drawn with another seed, costed as CLIPScore.
    The teaser has its real VQAScore and CLIPScore, alone and together.
    """
    from costroute.datasets import simulate_scores

    costs = scorer_costs(data.cost_unit)
    if key.startswith("teaser"):
        out = {name: (data.scores[name], costs[name], f"real {name}") for name in ("vqascore", "clipscore")}
        out[TEASER_PAIR] = (
            [data.scores["clipscore"], data.scores["vqascore"]],
            [costs["clipscore"], costs["vqascore"]],
            "real CLIPScore (cheap) and VQAScore (dear), the policy choosing which to run on which image",
        )
        return out
    out = {
        f"r={r:g}": (
            simulate_scores(data.quality, r, random_state=seed),
            costs["vqascore"],
            f"simulated, within-prompt r = {r:g}, costed as VQAScore",
        )
        for r in correlations
    }
    if 0.7 in correlations:
        out[PAIR] = (
            [simulate_scores(data.quality, 0.3, random_state=seed + 1), out["r=0.7"][0]],
            [costs["clipscore"], costs["vqascore"]],
            "two simulated scorers: r = 0.3 costed as CLIPScore, and the r = 0.7 one above costed as VQAScore",
        )
    return out


def methods(data, scoring_cost, seed, pair: bool):
    router = CostAwareRouter(data.generators, features="minilm", quality_model="knn", random_state=seed)
    out = {ROUTER: router}
    if not pair:
        out[THRESHOLD] = ThresholdCascade(data.generators, scoring_cost=scoring_cost)
    for name, policy in POLICIES.items():
        out[name] = CascadeRouter(router, scoring_cost=scoring_cost, random_state=seed, policy=policy)
    return out


def _compare(pairs, c):
    """Cascade minus router quality at the router's points, over ``(label, router curve, cascade curve)``."""
    per, below, total, worst = [], 0, 0, (0.0, None, None)
    bands = [{"from": lo, "to": hi, "router_points": 0, "below": 0, "worst": 0.0} for lo, hi in zip(BANDS, BANDS[1:])]
    for label, r_curve, c_curve in pairs:
        xs = np.unique(np.clip(r_curve.costs, c.min(), 1.0))
        diff = np.array([c_curve.quality_at_cost(float(x)) - r_curve.quality_at_cost(float(x)) for x in xs])
        k = int(np.nanargmin(diff))
        per.append(
            {"curve": label, "min_diff": float(diff[k]), "at_cost": float(xs[k]), "mean_diff": float(np.nanmean(diff))}
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
            worst = (float(diff[k]), float(xs[k]), label)
    return {
        "curves_below_somewhere": int(sum(p["min_diff"] < -1e-9 for p in per)),
        "n_curves": len(per),
        "share_of_router_points_below": below / max(total, 1),
        "worst_deficit": worst[0],
        "worst_at_cost": worst[1],
        "worst_curve": worst[2],
        "mean_diff": float(np.mean([p["mean_diff"] for p in per])),
        "bands": bands,
        "per_curve": per,
    }


def compare_to_router(res, cascade, router=ROUTER):
    """Quality of the cascade's curve minus the router's, at the costs of the router's curve points.

    Both curves are the running-max, straight-line-joined curves the AUC integrates; only
    router points with cost in [c̃_min, 1] are compared. ``pooled``: the pooled out-of-fold
    curves, one per repeat (the headline); ``per_fold``: each test fold's curves.
    """
    Q, c = res.true_quality, res.normalized_costs
    folds = []
    for (rep, fold), test in sorted(res.test_indices.items()):
        r_curve = deferral_curve(res.oof_predictions[router][rep][test], Q[test], c)
        folds.append((f"{rep}/{fold}", r_curve, res.cascade_curves[(rep, fold)][cascade]))
    pooled = []
    for rep in sorted(res.pooled_cascade_curves):
        curves = res.curves(rep)
        pooled.append((f"repeat {rep}", curves[router], curves[cascade]))
    return {"pooled": _compare(pooled, c), "per_fold": _compare(folds, c)}


def scoring_use(res, name, prompts, scores, data, lambdas):
    """What a cascade spent on scoring, from each fold's fitted model replayed on its test fold.

    For every λ of ``lambdas``: pooled mean cost, quality and scoring cost per prompt, and the
    share of images each scorer ran on. Needs ``res`` from ``return_models=True``.
    """
    Q = data.quality.to_numpy(dtype=float)
    n = len(Q)
    stacked = np.stack([np.asarray(s, dtype=float) for s in (scores if isinstance(scores, list) else [scores])], 2)
    per_rep = []
    for rep in sorted({r for r, _ in res.test_indices}):
        cost, quality, scoring = np.zeros(len(lambdas)), np.zeros(len(lambdas)), np.zeros(len(lambdas))
        ran = np.zeros((len(lambdas), stacked.shape[2]))
        images = np.zeros(len(lambdas))
        for (r, fold), test in res.test_indices.items():
            if r != rep:
                continue
            model = res.models[(r, fold)][name]
            pred = model.router_.predict_quality([prompts[i] for i in test])
            for j, lam in enumerate(lambdas):
                out = model.simulate_predicted(
                    pred, Q[test], [stacked[test, :, s] for s in range(stacked.shape[2])], cost_penalty=float(lam)
                )
                cost[j] += out.cost.sum()
                quality[j] += out.quality.sum()
                scoring[j] += out.scoring_cost.sum()
                ran[j] += out.scored_by.sum(axis=(0, 1))
                images[j] += out.n_images.sum()
        per_rep.append(
            {
                "cost": cost / n,
                "quality": quality / n,
                "scoring_cost": scoring / n,
                "share_scored_by": (ran / np.maximum(images, 1)[:, None]).tolist(),
            }
        )
    return {
        "lambdas": list(map(float, lambdas)),
        "cost": np.mean([p["cost"] for p in per_rep], axis=0).tolist(),
        "quality": np.mean([p["quality"] for p in per_rep], axis=0).tolist(),
        "scoring_cost": np.mean([p["scoring_cost"] for p in per_rep], axis=0).tolist(),
        "share_scored_by": np.mean([p["share_scored_by"] for p in per_rep], axis=0).tolist(),
    }
