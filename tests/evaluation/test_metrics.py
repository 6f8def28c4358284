"""AUC, cost at quality, quality at cost, APGR and the headline saving, checked by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costroute.evaluation import (
    DeferralCurve,
    apgr,
    auc,
    cost_at_quality,
    cost_saving,
    deferral_curve,
    hull_curve,
    oracle_curve,
    quality_at_cost,
)

from ._helpers import C2, DIP, Q2, problems


def test_auc_by_hand():
    area = 0.24 * 1.0 + 0.16 * (1.0 + 3.0) / 2 + 0.4 * 3.0  # = 1.76
    assert auc(*DIP, 0.2) == pytest.approx(area / 0.8)
    assert auc([0.0, 1.0], [0.0, 1.0], 0.0) == pytest.approx(0.5)
    # left of the first point counts as zero, right of the last one is flat
    assert auc([0.5], [2.0], 0.0) == pytest.approx(1.0)
    assert auc([0.5], [2.0], 0.5) == pytest.approx(2.0)
    # all generators cost the same
    assert auc([1.0], [2.0], 1.0) == pytest.approx(2.0)
    # a point left of c_min is clipped by interpolation: (0, 0) -> (1, 1) on [0.5, 1]
    assert auc([0.0, 1.0], [0.0, 1.0], 0.5) == pytest.approx(0.75)


def test_cost_and_quality_at_by_hand():
    assert cost_at_quality(DIP, 2.0) == pytest.approx(0.52)
    assert cost_at_quality(DIP, 1.0) == pytest.approx(0.2)
    assert cost_at_quality(DIP, 0.7) == pytest.approx(0.2)
    assert cost_at_quality(DIP, 3.0) == pytest.approx(0.6)
    assert cost_at_quality(DIP, 3.01) == math.inf
    assert quality_at_cost(DIP, 0.3) == pytest.approx(1.0)
    assert quality_at_cost(DIP, 0.52) == pytest.approx(2.0)
    assert quality_at_cost(DIP, 0.9) == pytest.approx(3.0)
    assert math.isnan(quality_at_cost(DIP, 0.1))
    frame = pd.DataFrame({"cost": DIP[0], "quality": DIP[1]})
    assert cost_at_quality(frame, 2.0) == pytest.approx(0.52)


def test_cost_at_quality_tolerates_rounding():
    assert cost_at_quality(([0.5, 1.0], [1.0, 3.0 - 1e-14]), 3.0) == 1.0


def test_headline_saving_by_hand():
    oracle, hull = oracle_curve(Q2, C2), hull_curve(Q2, C2)
    # q_best = 2.5: hull needs cost 1.0, the oracle 0.75
    assert cost_saving(oracle, hull) == pytest.approx(1.0 / 0.75)
    assert cost_saving(hull, hull) == pytest.approx(1.0)
    # at q = 2: hull 0.75, oracle 0.5 + 0.25 * 0.5
    assert cost_saving(oracle, hull, 2.0) == pytest.approx(0.75 / 0.625)
    never = DeferralCurve([0.0], [0.5], [1.5], 0.5)
    assert cost_saving(never, hull) == 0.0


def test_apgr_by_hand_and_degenerate():
    assert apgr(3.5, 3.0, 4.0) == 0.5
    assert apgr(2.5, 3.0, 4.0) == -0.5
    assert math.isnan(apgr(3.0, 3.0, 3.0))
    with pytest.raises(TypeError):
        apgr("1", 0.0, 2.0)


def test_metric_validation_errors():
    with pytest.raises(ValueError, match="c_min"):
        auc([0.5], [1.0], 1.5)
    with pytest.raises(ValueError, match="equal"):
        auc([0.5, 1.0], [1.0], 0.5)
    with pytest.raises(ValueError, match="q must be"):
        cost_at_quality(DIP, float("nan"))
    with pytest.raises(TypeError, match="curve"):
        cost_at_quality([1.0, 2.0, 3.0], 1.0)
    with pytest.raises(TypeError, match="curve"):
        cost_at_quality((1.0, 2.0, 3.0), 1.0)  # a tuple of three is not (costs, qualities)
    with pytest.raises(TypeError, match="curve"):
        cost_at_quality(pd.DataFrame({"cost": [0.5]}), 1.0)  # no quality column


def test_metrics_read_a_deferral_curve_like_its_points():
    curve = DeferralCurve([0.0, 1.0, 2.0], DIP[0], DIP[1], 0.2)
    frame = pd.DataFrame({"cost": DIP[0], "quality": DIP[1]})
    for q in (0.7, 2.0, 3.0):
        assert cost_at_quality(curve, q) == cost_at_quality(DIP, q) == cost_at_quality(frame, q)
        assert curve.cost_at_quality(q) == cost_at_quality(DIP, q)
    assert quality_at_cost(curve, 0.52) == quality_at_cost(DIP, 0.52) == curve.quality_at_cost(0.52)
    assert curve.auc() == auc(*DIP, 0.2)


@settings(max_examples=40, deadline=None)
@given(problems(), st.floats(-3, 3))
def test_cost_at_quality_inverts_quality_at_cost(problem, q):
    pred, Q, c = problem
    curve = deferral_curve(pred, Q, c)
    cost = curve.cost_at_quality(q)
    if math.isinf(cost):
        assert curve.qualities.max() < q
    else:
        assert curve.quality_at_cost(cost) >= q - 1e-9
        if cost > curve.costs.min() + 1e-9:
            assert curve.quality_at_cost(cost - 1e-7) < q + 1e-9
