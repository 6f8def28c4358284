"""Reservation values (Weitzman's index) of Gaussian boxes.

Making and scoring generator ``k``'s image is opening a box: it costs ``c`` (in quality units,
``λ x`` the normalised cost of the image and its scoring) and reveals ``X_k``, the expected
quality of that image once its score is known. Before the score, ``X_k`` is Gaussian with mean
``m_k`` (the current expected quality) and spread ``e_k`` (how far the score may move it, the
preposterior standard deviation). The box's reservation value ``σ_k`` solves

    E[(X_k − σ_k)^+] = c,

i.e. ``e ψ((σ − m)/e) = c`` with ``ψ(z) = φ(z) − z (1 − Φ(z))``. For independent boxes the
optimal search (Weitzman, 1979) opens the unopened box with the highest ``σ`` and stops as soon
as the best value found is at least every unopened ``σ``.

``ψ`` is positive, decreasing and log-concave, so Newton's method on ``log ψ(z) = log(c/e)``
converges monotonically after its first step; it is run on all boxes at once.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erfcx, ndtr

_SQRT2 = np.sqrt(2.0)
_INV_SQRT2PI = 1.0 / np.sqrt(2.0 * np.pi)
#: ψ(0) = φ(0)
_PSI0 = _INV_SQRT2PI


def _log_psi_and_slope(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log ψ(z)`` and ``d log ψ / dz = −Q(z) / ψ(z)``, stable for large positive ``z``."""
    pos = z > 0
    zp = np.where(pos, z, 0.0)
    # z > 0: ψ(z) = exp(−z²/2) [1/√(2π) − z erfcx(z/√2) / 2], Q(z) = exp(−z²/2) erfcx(z/√2) / 2
    tail = 0.5 * erfcx(zp / _SQRT2)
    bracket = np.maximum(_INV_SQRT2PI - zp * tail, 1e-300)
    log_pos = -0.5 * zp * zp + np.log(bracket)
    slope_pos = -tail / bracket
    zn = np.where(pos, 0.0, z)
    q = ndtr(-zn)
    psi = np.exp(-0.5 * zn * zn) * _INV_SQRT2PI - zn * q
    log_neg = np.log(psi)
    slope_neg = -q / psi
    return np.where(pos, log_pos, log_neg), np.where(pos, slope_pos, slope_neg)


def expected_excess(mean, spread, threshold) -> np.ndarray:
    """``E[(X − threshold)^+]`` for ``X ~ N(mean, spread²)``, elementwise (``spread >= 0``)."""
    m = np.asarray(mean, dtype=float)
    e = np.asarray(spread, dtype=float)
    t = np.asarray(threshold, dtype=float)
    d = m - t
    pos = e > 0
    z = np.where(pos, -d / np.where(pos, e, 1.0), 0.0)
    phi = np.exp(-0.5 * z * z) * _INV_SQRT2PI
    value = e * (phi - z * ndtr(-z))
    return np.where(pos, value, np.maximum(d, 0.0))


def reservation_value(mean, spread, cost, *, tol: float = 1e-12, max_iter: int = 60) -> np.ndarray:
    """Weitzman's reservation value ``σ`` of Gaussian boxes: ``E[(X − σ)^+] = cost``.

    Parameters
    ----------
    mean, spread, cost : array-like, broadcast together
        ``X ~ N(mean, spread²)`` (``spread >= 0``) and the cost of opening the box, in the same
        units as ``X`` (``cost >= 0``; ``inf`` allowed).

    Returns
    -------
    ndarray
        ``σ``. A box with no spread has ``σ = mean − cost``; a free box with spread has
        ``σ = +inf`` (it is always worth opening); an infinitely dear one ``−inf``.

    Examples
    --------
    >>> import numpy as np
    >>> s = reservation_value(0.0, 1.0, 0.1)
    >>> bool(np.isclose(expected_excess(0.0, 1.0, s), 0.1))
    True
    >>> float(reservation_value(2.0, 0.0, 0.5))
    1.5
    """
    m, e, c = np.broadcast_arrays(
        np.asarray(mean, dtype=float), np.asarray(spread, dtype=float), np.asarray(cost, dtype=float)
    )
    if np.any(e < 0) or np.any(c < 0) or np.isnan(e).any() or np.isnan(c).any():
        raise ValueError("spread and cost must be >= 0")
    out = np.where(np.isinf(c), -np.inf, m - c)  # no spread: σ = m − c
    live = (e > 0) & np.isfinite(c)
    free = live & (c == 0)
    out = np.where(free, np.inf, out)
    solve = live & (c > 0)
    if np.any(solve):
        t = c[solve] / e[solve]
        log_t = np.log(t)
        # start left of the root (ψ(z) > −z and ψ(0) = φ(0)); Newton then approaches it from the right
        z = np.where(t >= _PSI0, -t, 0.0)
        for _ in range(max_iter):
            log_psi, slope = _log_psi_and_slope(z)
            step = (log_psi - log_t) / slope
            z = z - step
            if np.all(np.abs(step) <= tol * np.maximum(1.0, np.abs(z))):
                break
        out[solve] = m[solve] + e[solve] * z
    return out
