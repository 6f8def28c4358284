"""A budget held over a stream of requests: :class:`SpendWindow` (the hard guard) and :class:`StreamBudget` (λ).

A batch's budget (:func:`costroute.routing.penalty_for_budget`) sees every prompt at once; a
server sees one request after another. :class:`StreamBudget` holds the mean normalised cost
per image over a sliding window of the last ``window`` images at or under the budget ``B``:

* **λ from the window.** Each image's λ is the one the exact batch rule would choose for the
  window's recent predicted-quality rows plus its own, at a target mean cost
  (``penalty_fn``; a router recomputes it per image, a cascade every few images).
* **Feedback.** Fallbacks, exploration and scoring make the realised cost differ from what
  the rule plans; the target moves by ``gain x (B - cost)`` after each image (an integral
  controller), so the realised window mean tracks ``B``; images the guard redirected are left
  out of it (anti-windup).
* **Hard guard** (:class:`SpendWindow`): no image may take the spend of any window of
  ``window`` consecutive images past ``B x window``; an image that would goes to the cheapest
  generator. The window starts full of images at cost ``B`` (so the first images, too, average
  at most ``B``), and a failed image counts at the cheapest cost in the guard (never in the
  spend reported), so the cheapest generator always fits: replacing the image that leaves the
  window by the cheapest one never raises its spend.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections import deque
from collections.abc import Callable

import numpy as np

from .._checks import check_nonnegative

__all__ = ["SpendWindow", "StreamBudget"]


class SpendWindow:
    """The normalised costs of the last ``size`` images, and the room left under ``budget x size``.

    Images are appended as *reservations* (their planned cost, before they are made) and
    *settled* with what they cost; positions ("slots") grow from 0 and stay valid.

    Parameters
    ----------
    budget : float
        Largest mean normalised cost per image over any ``size`` consecutive images.
    size : int
        Images in the window (>= 1).
    floor : float
        The cheapest generator's normalised cost: a failed image counts as it in the guard.
        The window starts full of images at ``max(budget, floor)``, so that the mean of the
        images served so far never exceeds the budget either.
    """

    def __init__(self, budget: float, size: int, floor: float):
        self.budget = float(budget)
        self.size = int(size)
        self.floor = float(floor)
        self.limit = self.budget * self.size
        # what the guard counts (reservations included); it starts full of images at the budget, so
        # that also the first images average at most the budget
        self._guard: list[float] = [max(self.budget, self.floor)] * self.size
        self._actual: list[float] = [math.nan] * self.size  # what was spent (NaN: the initial padding, pending)
        self._base = -self.size  # slot of _guard[0]

    # ------------------------------------------------------------------ reading
    def room(self) -> float:
        """Largest cost the next image may have: ``limit`` minus the spend of the last ``size - 1`` images."""
        return (
            self.limit - float(sum(self._guard[len(self._guard) - (self.size - 1) :])) if self.size > 1 else self.limit
        )

    def headroom(self, slot: int) -> float:
        """Largest cost ``slot`` may have so that every window holding it stays within ``limit``."""
        i = slot - self._base
        g = np.asarray(self._guard, dtype=float)
        csum = np.r_[0.0, np.cumsum(g)]
        ends = np.arange(i, min(i + self.size, len(g)))
        starts = np.maximum(ends - self.size + 1, 0)
        worst = float((csum[ends + 1] - csum[starts]).max())
        return self.limit - worst + g[i]

    def spend(self) -> tuple[float, int]:
        """``(spend, images)`` of the settled images among the last ``size``: what was really spent."""
        values = [v for v in self._actual[len(self._actual) - self.size :] if not math.isnan(v)]
        return float(sum(values)), len(values)

    # ------------------------------------------------------------------ writing
    def reserve(self, cost: float) -> int:
        """Append an image planned at ``cost``; returns its slot."""
        self._guard.append(max(float(cost), self.floor))
        self._actual.append(math.nan)
        return self._base + len(self._guard) - 1

    def fits(self, costs: list[float]) -> bool:
        """Whether images planned at ``costs``, appended in order, would all fit (nothing is reserved)."""
        tail = self._guard[len(self._guard) - (self.size - 1) :] if self.size > 1 else []
        for cost in costs:
            tail = tail + [max(float(cost), self.floor)]
            if sum(tail) > self.limit + 1e-12 * max(1.0, self.limit):
                return False
            tail = tail[len(tail) - (self.size - 1) :] if self.size > 1 else []
        return True

    def replan(self, slot: int, cost: float) -> None:
        """Change the planned cost of the pending image ``slot`` (it moved to another generator)."""
        self._guard[slot - self._base] = max(float(cost), self.floor)

    def settle(self, slot: int, cost: float | None) -> None:
        """Record what image ``slot`` cost (``None``: it failed, and costs nothing)."""
        i = slot - self._base
        self._guard[i] = self.floor if cost is None else max(float(cost), self.floor)
        self._actual[i] = 0.0 if cost is None else float(cost)
        self._trim()

    def _trim(self) -> None:
        pending = [i for i, v in enumerate(self._actual) if math.isnan(v) and self._base + i >= 0]
        keep_from = min([len(self._guard) - self.size] + pending)
        if keep_from > self.size:  # drop in chunks, not on every image
            del self._guard[:keep_from]
            del self._actual[:keep_from]
            self._base += keep_from


class StreamBudget:
    """Hold the mean normalised cost per image over the last ``window`` images at or under ``budget``.

    Thread-compatible: the server calls it from its one worker thread; :meth:`snapshot` may be
    read from any thread.

    Parameters
    ----------
    budget : float
        ``B``: target mean normalised cost per image (images, escalations and scoring).
    normalized_costs : array-like (K,)
        The generators' normalised costs (the cheapest is the guard's fallback).
    penalty_fn : callable
        ``penalty_fn(rows, target, floor) -> λ``: the λ the batch rule gives the predicted
        quality ``rows`` (n, K) at mean cost ``target``, at least ``floor``.
    window : int, default=256
        Images in the window.
    floor_penalty : float, default=0.0
        The least λ (the server's own cost penalty).
    recompute_every : int, default=1
        Images between two calls of ``penalty_fn`` (1: every image; a cascade's calibration is
        slower, so it is reused for a few images).
    gain : float or None, default=None
        Feedback per image, as a share of the error ``B - cost``; default ``1 / window``.
    """

    def __init__(
        self,
        budget: float,
        normalized_costs,
        penalty_fn: Callable[[np.ndarray, float, float], float],
        *,
        window: int = 256,
        floor_penalty: float = 0.0,
        recompute_every: int = 1,
        gain: float | None = None,
    ):
        self.budget = check_nonnegative(budget, "budget")
        self.costs = np.asarray(normalized_costs, dtype=float)
        self.cheapest = float(self.costs.min())
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be a positive integer (images), got {window!r}")
        self.window = SpendWindow(self.budget, window, self.cheapest)
        self.penalty_fn = penalty_fn
        self.floor_penalty = check_nonnegative(floor_penalty, "cost_penalty")
        self.recompute_every = max(1, int(recompute_every))
        self.gain = 1.0 / window if gain is None else check_nonnegative(gain, "gain")
        self.offset = 0.0
        self.rows: deque[np.ndarray] = deque(maxlen=max(window - 1, 1))
        self.penalty = self.floor_penalty
        self._since = self.recompute_every  # compute at the first image
        self._lock = threading.Lock()
        self._snapshot = (0.0, 0, self.penalty)

    @property
    def feasible(self) -> bool:
        """Whether the budget is at least the cheapest generator's cost (else every image goes there)."""
        return self.budget >= self.cheapest - 1e-12

    def target(self) -> float:
        """The mean cost the batch rule aims at now: ``B`` moved by the feedback."""
        return float(np.clip(self.budget + self.offset, self.cheapest, max(self.budget * 2.0, self.cheapest)))

    def penalty_for(self, row: np.ndarray, *, peek: bool = False) -> float:
        """λ for an image whose predicted quality is ``row`` (K,); ``peek=True`` changes nothing."""
        if not self.feasible:
            return math.inf
        if peek and self.recompute_every > 1 and self._since < self.recompute_every:
            return self.penalty  # a slow calibration is reused, also by decisions that change nothing
        if peek or self._since >= self.recompute_every:
            rows = np.vstack([*self.rows, np.asarray(row, dtype=float)[None, :]])
            with warnings.catch_warnings():  # a target below the cheapest is clipped above; nothing to say
                warnings.simplefilter("ignore")
                lam = float(self.penalty_fn(rows, self.target(), self.floor_penalty))
            if peek:
                return lam
            self.penalty = lam
            self._since = 0
        return self.penalty

    def observe(self, row: np.ndarray) -> None:
        """Add an image's predicted quality row to the window's rows."""
        self.rows.append(np.asarray(row, dtype=float))
        self._since += 1

    def record(self, slot: int, cost: float | None, guarded: bool = False) -> None:
        """Settle image ``slot`` at ``cost`` (``None``: failed) and feed the error back into the target.

        An image the hard guard sent to the cheapest generator (``guarded``) feeds nothing back:
        its cost says the window was full, not that λ was too high (raising the target for it
        would only make the guard bind more often).
        """
        self.window.settle(slot, cost)
        if cost is not None and not guarded:
            high = max(self.budget, 1.0)
            self.offset = float(np.clip(self.offset + self.gain * (self.budget - cost), -high, high))
        spend, n = self.window.spend()
        with self._lock:
            self._snapshot = (spend, n, self.penalty)

    def snapshot(self) -> tuple[float, int, float]:
        """``(spend, images, λ)``: the window's real spend, its settled images and the last λ."""
        with self._lock:
            return self._snapshot
