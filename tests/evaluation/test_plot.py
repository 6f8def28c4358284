"""Deferral plots (matplotlib, the ``plot`` extra)."""

from __future__ import annotations

import pytest

from costroute.evaluation import cross_validate_routing, oracle_curve, plot_deferral, single_model_points

from ._helpers import C2, Q2


def test_plot_deferral_returns_axes(toy):
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    prompts, Q, frame, routers, c = toy
    res = cross_validate_routing(routers, prompts, frame, cv=3, n_repeats=1, random_state=0)
    ax = res.plot(title="toy")
    assert len(ax.lines) == 4
    assert ax.get_title() == "toy"
    assert {t.get_text() for t in ax.texts} == {"cheap", "mid", "best"}
    plt.close("all")
    ax = plot_deferral(oracle_curve(Q2, C2), single_model_points(Q2, C2))
    assert len(ax.lines) == 1
    plt.close("all")
    with pytest.raises(TypeError):
        plot_deferral({"x": (1, 2)})
