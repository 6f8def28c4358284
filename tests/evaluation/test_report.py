"""Mean ± std reports of cross-validated routing and their Markdown tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from costroute.evaluation import RoutingCVResult, cross_validate_routing, report_to_markdown, routing_report


def test_routing_report_and_markdown(toy):
    prompts, Q, frame, routers, c = toy
    res = cross_validate_routing(routers, prompts, frame, cv=3, n_repeats=2, random_state=0)
    rep = routing_report(res)
    assert rep.index.tolist() == ["cheap", "mid", "best", "random mixture", "perfect", "constant", "oracle"]
    assert (rep["n_folds"] == 6).all()
    assert rep.loc["oracle", "apgr_mean"] == pytest.approx(1.0)
    assert rep.loc["random mixture", "apgr_mean"] == 0.0
    assert math.isnan(rep.loc["cheap", "auc_mean"])
    assert {"quality_mean", "quality_std", "saving_mean", "cost_50_mean", "cost_80_std"} <= set(rep.columns)
    pd.testing.assert_frame_equal(rep, res.summary())
    md = report_to_markdown(rep, ["quality", "apgr", "saving", "cost_80"])
    assert md.count("\n") == 2 + len(rep)
    assert "±" in md and "| perfect |" in md
    # routing_report can also run the CV itself
    direct = routing_report(routers, prompts, frame, cv=3, n_repeats=2, random_state=0)
    pd.testing.assert_frame_equal(direct.drop(columns="fit_time_mean"), rep.drop(columns="fit_time_mean"))


def test_report_cost_targets_average_over_reached_folds():
    scores = pd.DataFrame(
        {
            "repeat": 0,
            "fold": [0, 1, 2, 0, 1, 2],
            "method": ["a"] * 3 + ["b"] * 3,
            "kind": "router",
            "quality": 1.0,
            "cost_50": [0.2, 0.4, np.inf, np.inf, np.inf, np.inf],
        }
    )
    res = RoutingCVResult(scores, ("quality", "cost_50"), ["g"], np.ones(1), np.ones((1, 1)))
    rep = routing_report(res)
    assert rep.loc["a", "cost_50_mean"] == pytest.approx(0.3)
    assert rep.loc["a", "cost_50_reached"] == pytest.approx(2 / 3)
    assert rep.loc["b", "cost_50_mean"] == math.inf
    md = report_to_markdown(rep, ["cost_50"])
    assert "0.300 ± 0.141 (2/3)" in md and "| b | never |" in md
    assert "1.0e-04" in report_to_markdown(
        pd.DataFrame({"x_mean": [1e-4], "x_std": [np.nan], "n_folds": [1]}, index=["m"]), ["x"]
    )
