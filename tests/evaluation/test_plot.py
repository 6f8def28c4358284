"""Deferral plots (matplotlib, the ``plot`` extra)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from costroute.evaluation import cross_validate_routing, hull_curve, oracle_curve, plot_deferral, single_model_points

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


# Mean quality and normalised price of GenAI-Bench's six generators: the four open ones cost
# under 4 % of Midjourney's price and sit within 0.4 of each other in quality.
CROWDED = pd.DataFrame(
    {
        "cost": [0.000177, 0.009264, 0.028823, 0.037166, 0.8, 1.0],
        "quality": [3.083, 2.851, 3.109, 3.228, 3.722, 3.491],
    },
    index=["SDXL_Turbo", "SDXL_2_1", "SDXL_Base", "DeepFloyd_I_XL_v1", "DALLE_3", "Midjourney_6"],
)


def _label_boxes(ax):
    from matplotlib.text import Text

    renderer = ax.figure.canvas.get_renderer()
    return {t.get_text(): Text.get_window_extent(t, renderer) for t in ax.texts}


@pytest.mark.parametrize("xscale", ["linear", "log"])
def test_labels_of_crowded_points_avoid_each_other_and_the_markers(xscale):
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    hull = hull_curve(np.tile(CROWDED["quality"].to_numpy(), (2, 1)), CROWDED["cost"].to_numpy())
    ax = plot_deferral({"random mixture": hull}, CROWDED)
    ax.set_xscale(xscale)  # the labels are laid out when drawn, after any change of scale
    ax.figure.canvas.draw()
    boxes = _label_boxes(ax)
    assert set(boxes) == set(CROWDED.index)
    names = list(boxes)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not boxes[a].overlaps(boxes[b]), f"labels {a} and {b} overlap"
    markers = ax.transData.transform(CROWDED[["cost", "quality"]].to_numpy())
    for name, box in boxes.items():
        assert ax.bbox.x0 <= box.x0 and box.x1 <= ax.bbox.x1, f"label {name} leaves the axes"
        assert not any(box.contains(x, y) for x, y in markers), f"label {name} covers a point"
    # every label annotates its own point; the ones moved off it get a leader line
    by_name = {t.get_text(): t for t in ax.texts}
    for name, (cost, quality) in CROWDED[["cost", "quality"]].iterrows():
        assert by_name[name].xy == (cost, quality)
    moved = {name for name, t in by_name.items() if t.arrow_patch.get_visible()}
    for name in moved:
        centre_y = (boxes[name].y0 + boxes[name].y1) / 2
        point_y = ax.transData.transform((CROWDED.loc[name, "cost"], CROWDED.loc[name, "quality"]))[1]
        assert abs(centre_y - point_y) > boxes[name].height  # only a label moved off its point
    plt.close("all")
