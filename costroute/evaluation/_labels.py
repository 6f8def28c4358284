"""Labels of plotted points that avoid each other (imports matplotlib: load it lazily).

Generators often sit close together on a deferral plot (the open models all cost a few
percent of the closed ones), so labels written at one fixed offset from their points pile up.
:class:`PointLabels` is an invisible artist that, every time the axes are drawn, moves each
label to the nearest free slot next to its point -- right of it, else left of it; at the
point's height, else alternately lower and higher -- and draws a thin leader line to the point when
the label had to move away from it. Laying out at draw time keeps the labels apart after a
change of scale (``ax.set_xscale("log")``), limits, figure size or dpi.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.artist import Artist
from matplotlib.text import Annotation, Text

#: Gap between a point and its label, in points.
_GAP = 4.0
#: Vertical gap between stacked labels, in points.
_PAD = 1.0
#: How many slots below and above the default one a label may take.
_MAX_STEPS = 12


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Area of the intersection of boxes ``(x0, y0, x1, y1)``."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


class PointLabels(Artist):
    """Lays out point annotations without overlaps each time the axes are drawn.

    Parameters
    ----------
    annotations : sequence of matplotlib.text.Annotation
        One per point, annotating its point in data coordinates with ``textcoords="offset
        points"`` and ``arrowprops`` (the leader line, shown only for moved labels).
    marker_size : float
        Scatter marker area in points², so that labels also keep off the markers.
    """

    def __init__(self, annotations: Sequence[Annotation], marker_size: float) -> None:
        super().__init__()
        self.annotations = list(annotations)
        self.marker_radius = float(np.sqrt(marker_size) / 2)
        self.set_in_layout(False)
        # drawn just before the labels (Text zorder 3), so they are drawn where it puts them
        self.set_zorder(min((a.get_zorder() for a in self.annotations), default=3.0) - 0.01)

    def draw(self, renderer) -> None:
        if not self.get_visible() or not self.annotations or self.axes is None:
            return
        px = renderer.points_to_pixels(1.0)
        anchors = self.axes.transData.transform(np.array([a.xy for a in self.annotations], dtype=float))
        frame = self.axes.bbox
        r = self.marker_radius * px
        markers = [np.array([x - r, y - r, x + r, y + r]) for x, y in anchors if np.isfinite([x, y]).all()]
        placed: list[np.ndarray] = []
        order = sorted((i for i in range(len(anchors)) if np.isfinite(anchors[i]).all()), key=lambda i: -anchors[i][1])
        for i in order:
            ann, (x, y) = self.annotations[i], anchors[i]
            size = Text.get_window_extent(ann, renderer)
            w, h = size.width, size.height
            gap = _GAP * px + r
            first = -0.5 * h - 0.5 * r  # centre just below the point, clear of lines rising to the right
            sides = (True, False) if x + gap + w <= frame.x1 else (False, True)  # right of it if it fits
            best = None
            for step in [0] + [s for k in range(1, _MAX_STEPS + 1) for s in (-k, k)]:
                cy = y + first + step * (h + _PAD * px)
                for right in sides:
                    x0 = x + gap if right else x - gap - w
                    box = np.array([x0, cy - h / 2, x0 + w, cy + h / 2])
                    clash = sum(_overlap(box, other) for other in placed + markers)
                    outside = _overlap(box, box) - _overlap(box, np.asarray(frame.extents))
                    cost = (clash > 0 or outside > 0, clash + outside, abs(step))
                    if best is None or cost < best[0]:
                        best = (cost, step, right, box)
                if not best[0][0]:
                    break
            _, step, right, box = best
            placed.append(box)
            offset = (((box[0] if right else box[2]) - x) / px, ((box[1] + box[3]) / 2 - y) / px)
            self._move(ann, offset, "left" if right else "right", leader=step != 0)

    @staticmethod
    def _move(ann: Annotation, offset: tuple[float, float], ha: str, leader: bool) -> None:
        """Set a label's offset and alignment, touching it only on a change (no redraw loop)."""
        if not np.allclose(ann.xyann, offset, atol=0.01):
            ann.xyann = offset
        if ann.get_horizontalalignment() != ha:
            ann.set_horizontalalignment(ha)
        if ann.get_verticalalignment() != "center":
            ann.set_verticalalignment("center")
        if ann.arrow_patch is not None and ann.arrow_patch.get_visible() != leader:
            ann.arrow_patch.set_visible(leader)
