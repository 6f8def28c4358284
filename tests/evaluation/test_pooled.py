"""Pooled out-of-fold curves of cascades, per-fold medians, and which saving a report gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from costroute import CascadeRouter, CostAwareRouter
from costroute.cascade import ThresholdCascade
from costroute.evaluation import (
    auc,
    cost_saving,
    cross_validate_routing,
    hull_curve,
    lambda_grid,
    report_to_markdown,
    routing_report,
)
from costroute.evaluation._cascades import N_POOLED_LAMBDAS

from ._helpers import LookupCascade, varied_prompts

COSTS = {"cheap": 1.0, "mid": 3.0, "big": 10.0}
NAMES = list(COSTS)
C = np.array([0.1, 0.3, 1.0])
METRICS = ["quality", "gain", "cost", "auc", "apgr", "saving", "cost_50", "cost_80", "reached_best"]


def world(n=50, seed=0, noise=0.5):
    """Prompts whose best generator is drawn at random (dearer ones a little better on average),
    and a noisy scorer of every image."""
    rng = np.random.default_rng(seed)
    best = rng.integers(0, 3, size=n)
    Q = rng.normal(3.0, 0.3, size=(n, 1)) + 0.1 * rng.normal(size=(n, 3)) + 2.0 * np.eye(3)[best] + [0, 0.3, 0.6]
    S = Q + noise * rng.normal(size=Q.shape)
    return varied_prompts(n), pd.DataFrame(Q, columns=NAMES), pd.DataFrame(S, columns=NAMES)


def router():
    return CostAwareRouter(COSTS, features="complexity", quality_model="ridge")


def methods():
    return {
        "router": router(),
        "cascade": CascadeRouter(router(), scoring_cost=0.2, random_state=0),
        "threshold": ThresholdCascade(COSTS, scoring_cost=0.2),
    }


@pytest.fixture(scope="module")
def cv_result():
    prompts, Q, S = world()  # 50 prompts in 3 folds: 17, 17 and 16 test prompts
    res = cross_validate_routing(
        methods(), prompts, Q, cv=3, n_repeats=2, random_state=3, scores=S, return_models=True, progress=False
    )
    return prompts, Q, S, res


def test_a_pooled_cascade_curve_is_the_prompt_weighted_mean_over_folds_at_a_common_grid(cv_result):
    prompts, Q, S, res = cv_result
    n = len(prompts)
    assert sorted(res.pooled_cascade_curves) == [0, 1] and res.info["unpooled_cascades"] == []
    for rep in (0, 1):
        assert sorted(res.pooled_cascade_curves[rep]) == ["cascade", "threshold"]
        for name, key in (("cascade", "lambdas"), ("threshold", "thresholds")):
            totals = res.pooled_cascade_totals[rep][name]
            grid = totals.sweep
            assert totals.parameter == key and totals.folds.tolist() == [0, 1, 2]
            assert totals.n_prompts.tolist() == [len(res.test_indices[(rep, f)]) for f in range(3)]
            assert sorted(totals.n_prompts.tolist()) == [16, 17, 17]
            cost_sum, qual_sum = np.zeros(grid.size), np.zeros(grid.size)
            for fold in range(3):
                test = res.test_indices[(rep, fold)]
                model = res.models[(rep, fold)][name]
                _, costs, quals = model.deferral_points(
                    [prompts[i] for i in test], Q.iloc[test], S.iloc[test], **{key: grid}
                )
                cost_sum += costs * test.size
                qual_sum += quals * test.size
            curve = res.pooled_cascade_curves[rep][name]
            np.testing.assert_array_equal(curve.lambdas, grid)
            np.testing.assert_allclose(curve.costs, cost_sum / n, rtol=1e-13)
            np.testing.assert_allclose(curve.qualities, qual_sum / n, rtol=1e-13)
            assert curve.c_min == pytest.approx(0.1) and curve.label == name


def test_the_threshold_cascades_pooled_curve_by_hand(cv_result):
    """At each threshold, every prompt escalates when its fold model's cheap image scores below it."""
    prompts, Q, S, res = cv_result
    Qv, Sv = Q.to_numpy(), S.to_numpy()
    for rep in (0, 1):
        own = [res.cascade_curves[(rep, f)]["threshold"].lambdas for f in range(3)]
        grid = res.pooled_cascade_curves[rep]["threshold"].lambdas
        np.testing.assert_array_equal(grid, np.unique(np.concatenate(own))[::-1])  # inf first, as per fold
        cost, qual = np.zeros((grid.size, len(prompts))), np.zeros((grid.size, len(prompts)))
        for fold in range(3):
            test = res.test_indices[(rep, fold)]
            m = res.models[(rep, fold)]["threshold"]
            a, b = m.cheap_index_, m.strong_index_
            assert a == 0 and b > 0  # a dearer generator is the best on every training fold
            for j, t in enumerate(grid):
                up = Sv[test, a] < t
                cost[j, test] = C[a] + 0.02 + np.where(up, C[b], 0.0)
                qual[j, test] = Qv[test, np.where(up, b, a)]
        curve = res.pooled_cascade_curves[rep]["threshold"]
        np.testing.assert_allclose(curve.costs, cost.mean(axis=1), rtol=1e-13)
        np.testing.assert_allclose(curve.qualities, qual.mean(axis=1), rtol=1e-13)


def test_the_pooled_lambda_grid_spans_the_folds_own_grids(cv_result):
    _, Q, _, res = cv_result
    top = float(lambda_grid(Q.to_numpy(), C, n=2)[-1])
    for rep in (0, 1):
        grid = res.pooled_cascade_curves[rep]["cascade"].lambdas
        own = [res.cascade_curves[(rep, f)]["cascade"].lambdas for f in range(3)]
        ends = {float(x) for s in own for x in (s[s > 0].min(), s.max())}
        assert grid[0] == 0.0 and np.all(np.diff(grid) > 0)
        assert ends <= set(grid.tolist())
        assert grid[1] == min([top * 1e-3, *ends]) and grid[-1] == max([top * 10.0, *ends])
        assert N_POOLED_LAMBDAS + 1 <= grid.size <= N_POOLED_LAMBDAS + 1 + len(ends)


def test_pooled_cascade_rows_go_through_the_routers_metrics(cv_result):
    _, Q, _, res = cv_result
    Qv = Q.to_numpy()
    pooled = res.pooled_scores().set_index(["repeat", "method"])
    hull, q_best = hull_curve(Qv, C), float(Qv.mean(axis=0).max())
    for rep in (0, 1):
        for name in ("cascade", "threshold"):
            curve = res.pooled_cascade_curves[rep][name]
            row = pooled.loc[(rep, name)]
            assert row["kind"] == "cascade" and row["fold"] == -1
            assert row["quality"] == curve.qualities[0] and row["cost"] == curve.costs[0]
            assert row["auc"] == auc(curve.costs, curve.qualities, 0.1)
            assert row["saving"] == cost_saving(curve, hull, q_best)
    report = routing_report(res, pooled=True)
    assert report.loc[["cascade", "threshold"], "kind"].tolist() == ["cascade", "cascade"]
    assert (report["n_folds"] == 2).all()
    for name in ("cascade", "threshold"):
        assert report.loc[name, "saving_mean"] == pytest.approx(pooled.loc[[(0, name), (1, name)], "saving"].mean())
    assert res.curves(1)["cascade"] is res.pooled_cascade_curves[1]["cascade"]


def test_a_routers_pooled_rows_are_unchanged_by_cascades(cv_result):
    prompts, Q, _, res = cv_result
    alone = cross_validate_routing(
        {"router": router()}, prompts, Q, cv=3, n_repeats=2, random_state=3, progress=False
    ).pooled_scores()
    both = res.pooled_scores()
    both = both[both["kind"] != "cascade"].reset_index(drop=True)
    cols = ["repeat", "fold", "method", "kind", *METRICS]
    pd.testing.assert_frame_equal(alone[cols], both[cols], check_exact=True)


def test_an_explicit_lambda_grid_is_pooled_from_the_folds_own_points():
    prompts, Q, S = world(n=40, seed=1)
    grid = np.r_[0.0, np.geomspace(1e-2, 50.0, 20)]
    res = cross_validate_routing(
        {"cascade": CascadeRouter(router(), scoring_cost=0.2, random_state=0)},
        prompts,
        Q,
        cv=4,
        n_repeats=1,
        random_state=0,
        scores=S,
        lambdas=grid,
        progress=False,
    )
    totals = res.pooled_cascade_totals[0]["cascade"]
    assert totals.parameter == "" and np.array_equal(totals.sweep, grid)
    folds = [res.cascade_curves[(0, f)]["cascade"] for f in range(4)]
    sizes = np.array([len(res.test_indices[(0, f)]) for f in range(4)])
    expected = sum(curve.costs * k for curve, k in zip(folds, sizes)) / sizes.sum()
    np.testing.assert_allclose(res.pooled_cascade_curves[0]["cascade"].costs, expected, rtol=1e-13)
    # without routers, curves() and pooled_scores() still have the cascade
    assert sorted(res.curves(0)) == ["cascade", "oracle", "random mixture"]
    assert "cascade" in set(res.pooled_scores()["method"])
    with pytest.raises(ValueError, match=r"repeat must be one of \[0\], got 1"):
        res.curves(1)


class _NoGridCascade(LookupCascade):
    """deferral_points takes no grid; its sweep is [0, 1], or [0, number of training prompts]."""

    def __init__(self, table=None, low=(0.2, 1.0), by_fold=False):
        super().__init__(table, low)
        self.by_fold = by_fold

    def deferral_points(self, prompts, y, scores):
        lams, costs, quals = super().deferral_points(prompts, y, scores)
        return (np.array([0.0, self.n_fit_]) if self.by_fold else lams), costs, quals


def test_a_cascade_without_a_grid_is_pooled_only_when_its_folds_share_a_sweep():
    prompts = [f"p{i}" for i in range(12)]
    table = {p: (0.5 + 0.05 * i, 2.0 + 0.1 * i) for i, p in enumerate(prompts)}
    Q = pd.DataFrame(np.tile([1.0, 3.0], (12, 1)), columns=["cheap", "dear"])
    common = dict(cv=3, n_repeats=1, random_state=0, scores=Q, normalized_costs=[0.2, 1.0], progress=False)
    res = cross_validate_routing(
        {"same": _NoGridCascade(table), "differ": _NoGridCascade(table, by_fold=True)}, prompts, Q, **common
    )
    assert res.info["unpooled_cascades"] == []  # 3 folds of 4: every fold trains on 8 prompts
    uneven = cross_validate_routing(
        {"same": _NoGridCascade(table), "differ": _NoGridCascade(table, by_fold=True)},
        prompts[:11],
        Q.iloc[:11],
        **{**common, "scores": Q.iloc[:11]},
    )
    assert uneven.info["unpooled_cascades"] == ["differ"]
    assert list(uneven.pooled_cascade_curves[0]) == ["same"]
    same = uneven.pooled_cascade_curves[0]["same"]
    np.testing.assert_allclose(same.costs, [np.mean([table[p][0] for p in prompts[:11]]), 0.2], rtol=1e-13)
    assert "differ" not in routing_report(uneven, pooled=True).index


# --------------------------------------------------------------------------------------
# medians, and which saving a report gives
# --------------------------------------------------------------------------------------
def test_median_columns_are_numpy_medians_of_the_per_fold_scores(cv_result):
    _, _, _, res = cv_result
    report = routing_report(res)
    pooled = routing_report(res, pooled=True)
    for method, rows in res.scores.groupby("method"):
        for m in METRICS:
            values = rows[m].to_numpy(dtype=float)
            expected = np.median(values[~np.isnan(values)]) if not np.isnan(values).all() else np.nan
            np.testing.assert_allclose(report.loc[method, f"{m}_median"], expected, rtol=1e-15)
            np.testing.assert_allclose(pooled.loc[method, f"{m}_fold_median"], expected, rtol=1e-15)
    # the existing columns keep their place relative to each other
    old = [c for c in report.columns if not c.endswith("_median")]
    assert old[:6] == ["kind", "n_folds", "quality_mean", "quality_std", "gain_mean", "gain_std"]
    assert report.columns.get_loc("saving_median") == report.columns.get_loc("saving_std") + 1


def _two_kinds_of_prompts(n=6):
    """Half the prompts reach quality 3 at cost 0.25 (kind A), half at cost 1 (kind B)."""
    prompts = [f"prompt {i}" for i in range(n)]
    table = {p: ((0.25 if i % 2 == 0 else 1.0), 3.0) for i, p in enumerate(prompts)}
    Q = pd.DataFrame(np.tile([1.0, 3.0], (n, 1)), columns=["cheap", "dear"])
    return prompts, table, Q


def test_the_pooled_saving_is_not_the_mean_of_per_fold_savings():
    """Every fold: q_best = 3 and cost_hull(3) = 1, so a fold's saving is 1 / (its mean cost at λ = 0)."""
    prompts, table, Q = _two_kinds_of_prompts()
    res = cross_validate_routing(
        {"lookup": LookupCascade(table)},
        prompts,
        Q,
        cv=2,
        n_repeats=2,
        random_state=0,
        scores=Q,
        normalized_costs=[0.2, 1.0],
        progress=False,
    )
    cost0 = {i: table[p][0] for i, p in enumerate(prompts)}
    per_fold = {key: 1.0 / np.mean([cost0[i] for i in test]) for key, test in res.test_indices.items()}
    pooled_saving = 1.0 / np.mean(list(cost0.values()))  # 6 / (3 x 0.25 + 3 x 1) = 1.6
    assert pooled_saving == pytest.approx(1.6)
    rows = res.scores[res.scores["method"] == "lookup"].set_index(["repeat", "fold"])
    for key, value in per_fold.items():
        assert rows.loc[key, "saving"] == pytest.approx(value, rel=1e-12)
    mean_of_folds = np.mean(list(per_fold.values()))
    assert mean_of_folds > pooled_saving + 0.05  # 1/x is convex: a mean of ratios flatters
    report = routing_report(res)
    pooled = routing_report(res, pooled=True)
    assert report.loc["lookup", "saving_mean"] == pytest.approx(mean_of_folds, rel=1e-12)
    assert pooled.loc["lookup", "saving_mean"] == pytest.approx(pooled_saving, rel=1e-12)
    assert pooled.loc["lookup", "saving_std"] == pytest.approx(0.0, abs=1e-12)
    assert pooled.loc["lookup", "saving_fold_median"] == pytest.approx(np.median(list(per_fold.values())))
    md = report_to_markdown(pooled.loc[["lookup"]], ["saving"], median=True)
    median = np.median(list(per_fold.values()))
    assert f"| lookup | 1.600 ± 0.000 (median {median:.3f}) |" in md


def test_report_to_markdown_median_cells():
    report = pd.DataFrame(
        {
            "n_folds": [3, 3],
            "saving_mean": [2.1, np.nan],
            "saving_std": [np.nan, np.nan],
            "saving_median": [3.4, np.nan],
            "cost_80_mean": [np.inf, 0.5],
            "cost_80_std": [np.nan, 0.1],
            "cost_80_median": [np.inf, np.inf],
            "cost_80_reached": [0.0, 1 / 3],
        },
        index=["a", "b"],
    )
    md = report_to_markdown(report, ["saving", "cost_80"], median=True, digits=2)
    assert "| a | 2.10 (median 3.40) | never |" in md
    assert "| b | — | 0.50 ± 0.10 (1/3) (median never) |" in md
    assert "median" not in report_to_markdown(report, ["saving"])
    with pytest.raises(ValueError, match="median=True needs a apgr_median or apgr_fold_median column"):
        report_to_markdown(report.assign(apgr_mean=1.0), ["apgr"], median=True)
