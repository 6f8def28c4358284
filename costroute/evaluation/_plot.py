"""Plots of deferral curves (matplotlib, imported only when a plot is drawn)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._curves import DeferralCurve

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes


def plot_deferral(
    curves: DeferralCurve | Sequence[DeferralCurve] | Mapping[str, DeferralCurve],
    points: pd.DataFrame | None = None,
    *,
    ax: Any = None,
    title: str | None = None,
    xlabel: str = "mean normalised cost",
    ylabel: str = "mean quality",
    annotate: bool = True,
) -> Axes:
    """Draw deferral curves and single-generator points (matplotlib, the ``plot`` extra).

    Curves labelled ``"oracle..."`` are drawn dotted black, the random mixture dashed grey and
    every other curve (routers) solid. Each curve is drawn through its operating points in
    cost order (the straight-line joins that :func:`auc` uses, before the running max).

    Parameters
    ----------
    curves : DeferralCurve, sequence of them, or dict label -> DeferralCurve
    points : DataFrame, optional
        :func:`single_model_points` output; drawn as labelled markers.
    ax : matplotlib Axes, optional
        Default: a new figure.
    title, xlabel, ylabel : str
    annotate : bool, default=True
        Write each generator's name next to its point. Whenever the figure is drawn, labels
        that would overlap another label or point move to the nearest free slot below or
        above and get a thin leader line to their point.

    Returns
    -------
    matplotlib.axes.Axes
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plot_deferral needs matplotlib: pip install 'costroute[plot]'") from exc
    if isinstance(curves, DeferralCurve):
        items = [(curves.label or "router", curves)]
    elif isinstance(curves, Mapping):
        items = list(curves.items())
    else:
        items = [(cv.label or f"curve {i}", cv) for i, cv in enumerate(curves)]
    for label, cv in items:
        if not isinstance(cv, DeferralCurve):
            raise TypeError(f"curve {label!r} must be a DeferralCurve, got {type(cv).__name__}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.8))
    for label, cv in items:
        order = np.lexsort((cv.qualities, cv.costs))
        x, y = cv.costs[order], cv.qualities[order]
        low = label.lower()
        if low.startswith("oracle"):
            style = {"color": "black", "linestyle": ":" if "other" not in low else "-.", "linewidth": 1.5}
        elif "mixture" in low or "hull" in low:
            style = {"color": "0.45", "linestyle": "--", "linewidth": 1.5}
        else:
            style = {"linewidth": 1.8}
        ax.plot(x, y, label=f"{label} (AUC {cv.auc():.3f})", **style)
    if points is not None:
        marker_size = 28
        ax.scatter(
            points["cost"], points["quality"], color="tab:red", zorder=5, s=marker_size, label="single generators"
        )
        if annotate:
            from ._labels import PointLabels

            leader = {"arrowstyle": "-", "color": "0.4", "linewidth": 0.6, "shrinkA": 0, "shrinkB": 3}
            labels = [
                ax.annotate(
                    str(name),
                    (cost, qual),
                    textcoords="offset points",
                    xytext=(6, -6),
                    fontsize=8,
                    va="center",
                    arrowprops=leader,
                )
                for name, (cost, qual) in points[["cost", "quality"]].iterrows()
            ]
            for label in labels:
                label.arrow_patch.set_visible(False)  # shown only for a label moved off its point
            ax.add_artist(PointLabels(labels, marker_size))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return ax
