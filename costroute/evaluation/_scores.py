"""Per-fold scores of every method, and their mean ± std (and median) summary.

One test fold gives one row per method (single generators, random mixture, routers,
cascades, oracles) with the metrics of :data:`METRICS`; :func:`_summarise` averages the rows
of many folds into one row per method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..routing import route_with_penalty
from ._curves import DeferralCurve, hull_curve, operating_point, oracle_curve, single_model_points
from ._metrics import apgr, cost_saving

#: Metrics of :func:`~costroute.evaluation.cross_validate_routing`, in report order.
METRICS = (
    "quality",
    "gain",
    "cost",
    "auc",
    "apgr",
    "saving",
    "cost_50",
    "cost_80",
    "reached_best",
)

_KIND_ORDER = {"single": 0, "hull": 1, "router": 2, "cascade": 3, "oracle": 4}


def _fold_metrics(
    curves: Mapping[str, tuple[str, DeferralCurve, float, float]],
    hull: DeferralCurve,
    oracle: DeferralCurve,
    points: pd.DataFrame,
    fractions: Sequence[float],
    extra_oracle: DeferralCurve | None = None,
) -> list[dict[str, Any]]:
    """Metrics of every method on one test fold.

    ``curves`` maps method -> (kind, curve, quality at λ=0, cost at λ=0).
    """
    q_best = float(points["quality"].max())
    c_min = float(points["cost"].min())
    q_cheap = float(points.loc[points["cost"] == c_min, "quality"].max())
    targets = {f"cost_{int(round(100 * f))}": q_cheap + f * (q_best - q_cheap) for f in fractions}
    auc_h, auc_o = hull.auc(), oracle.auc()
    auc_oi = extra_oracle.auc() if extra_oracle is not None else None
    rows = []
    for method, (kind, curve, q0, c0) in curves.items():
        a = curve.auc() if kind != "single" else float("nan")
        row = {
            "method": method,
            "kind": kind,
            "quality": q0,
            "gain": q0 - q_best,
            "cost": c0,
            "auc": a,
            "apgr": apgr(a, auc_h, auc_o) if kind != "single" else float("nan"),
            "saving": cost_saving(curve, hull, q_best),
            "reached_best": float(np.isfinite(curve.cost_at_quality(q_best))),
        }
        for key, q in targets.items():
            row[key] = curve.cost_at_quality(q)
        if auc_oi is not None:
            row["apgr_indep"] = apgr(a, auc_h, auc_oi) if kind != "single" else float("nan")
        rows.append(row)
    return rows


def _baseline_curves(
    Q: np.ndarray, c: np.ndarray, names: Sequence[str], lambdas: Any
) -> tuple[dict[str, tuple[str, DeferralCurve, float, float]], DeferralCurve, DeferralCurve, pd.DataFrame]:
    points = single_model_points(Q, c, names)
    curves: dict[str, tuple[str, DeferralCurve, float, float]] = {}
    for name, (cost, qual) in points.iterrows():
        curves[name] = ("single", DeferralCurve([np.nan], [cost], [qual], float(c.min()), name), qual, cost)
    hull = hull_curve(Q, c)
    best = int(np.argmax(hull.qualities))
    curves["random mixture"] = ("hull", hull, float(hull.qualities[best]), float(hull.costs[best]))
    oracle = oracle_curve(Q, c, lambdas=lambdas)
    return curves, hull, oracle, points


def _lambda0_point(pred: np.ndarray, Q: np.ndarray, c: np.ndarray) -> tuple[float, float]:
    a = route_with_penalty(pred, c, 0.0)
    cost, qual = operating_point(a, Q, c)
    return qual, cost


def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    out = tuple(float(f) for f in fractions)
    if any(not (0 < f <= 1) for f in out):
        raise ValueError(f"fractions must lie in (0, 1], got {list(fractions)}")
    return out


def _metric_names(fractions: Sequence[float], extra: Sequence[str] = ()) -> tuple[str, ...]:
    costs = tuple(f"cost_{int(round(100 * f))}" for f in fractions)
    base = ("quality", "gain", "cost", "auc", "apgr", "saving") + costs + ("reached_best",)
    return base + tuple(extra)


def _tidy_scores(rows: list[dict[str, Any]], fractions: Sequence[float], extra: Sequence[str] = ()) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    lead = [col for col in ("repeat", "fold", "rater", "method", "kind") if col in frame.columns]
    metrics = list(_metric_names(fractions, extra))
    rest = [col for col in frame.columns if col not in lead and col not in metrics]
    return frame[lead + metrics + rest]


def _is_cost_target(metric: str) -> bool:
    return metric.startswith("cost_") and metric[5:].isdigit()


def _summarise(scores: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Mean ± std and median per method of per-fold ``scores``; the table :func:`routing_report` returns."""
    metrics = list(metrics)
    grouped = scores.groupby("method", sort=False)
    finite = scores[metrics].where(np.isfinite(scores[metrics].to_numpy(dtype=float)))
    finite["method"] = scores["method"]
    fgrouped = finite.groupby("method", sort=False)
    with np.errstate(invalid="ignore"):
        mean = grouped[metrics].mean()
        std = grouped[metrics].std(ddof=1)
        fmean = fgrouped[metrics].mean()
        fstd = fgrouped[metrics].std(ddof=1)
        median = grouped[metrics].median()  # NaN skipped; an unreached cost target counts as inf
        reached = fgrouped[metrics].count().div(grouped.size(), axis=0)
    out = pd.DataFrame(index=mean.index)
    out["kind"] = grouped["kind"].first()
    out["n_folds"] = grouped.size()
    for m in metrics:
        if _is_cost_target(m):
            out[f"{m}_mean"] = fmean[m].where(reached[m] > 0, np.inf)
            out[f"{m}_std"] = fstd[m]
            out[f"{m}_median"] = median[m]
            out[f"{m}_reached"] = reached[m]
        else:
            out[f"{m}_mean"] = mean[m]
            out[f"{m}_std"] = std[m]
            out[f"{m}_median"] = median[m]
    if "fit_time" in scores.columns:
        out["fit_time_mean"] = grouped["fit_time"].mean()
    # singles by cost, then hull, routers and cascades (each in given order), oracles
    first_pos = {m: i for i, m in enumerate(scores["method"].drop_duplicates())}
    key = [
        (
            _KIND_ORDER.get(out.loc[m, "kind"], 9),
            out.loc[m, "cost_mean"] if out.loc[m, "kind"] == "single" else 0.0,
            first_pos[m],
        )
        for m in out.index
    ]
    out = out.iloc[sorted(range(len(key)), key=key.__getitem__)]
    out.index.name = "method"
    return out
