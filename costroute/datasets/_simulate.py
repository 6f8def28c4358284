"""A simulated image scorer: quality plus Gaussian noise at a chosen within-prompt correlation."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = ["simulate_scores"]


def _check_correlation(correlation: Any) -> float:
    if isinstance(correlation, bool) or not isinstance(correlation, numbers.Real):
        raise TypeError(
            f"correlation must be a real number in (0, 1], got {type(correlation).__name__}: {correlation!r}"
        )
    value = float(correlation)
    if math.isnan(value) or not 0 < value <= 1:
        raise ValueError(
            f"correlation must be in (0, 1] (the within-prompt correlation of the scores with the "
            f"quality), got {correlation!r}"
        )
    return value


def simulate_scores(quality: Any, correlation: float, random_state: Any = None) -> Any:
    """Scores of a simulated image scorer whose within-prompt deviations correlate with quality at ``correlation``.

    A scorer is only useful to a cascade through how it orders the images *of one prompt*,
    so the target is the within-prompt correlation: the Pearson correlation, over all cells
    pooled, of ``S[i, k] - mean_k S[i, k]`` with ``Q[i, k] - mean_k Q[i, k]`` (the
    GenAI-Bench teaser gives r = 0.74 for VQAScore and 0.26 for CLIPScore,
    :func:`load_genai_bench_teaser`). The simulated scores are

        S = Q + sigma * Z,   Z i.i.d. standard normal,

    with sigma derived from the quality's own within-prompt spread. Let ``D = Q - rowmean(Q)``
    and ``v = mean(D**2)`` over the cells (the within-prompt deviation variance). The noise's
    deviation from its row mean, ``Z - rowmean(Z)``, has variance ``sigma**2 * (1 - 1/K)`` in a
    row of K cells and is independent of D, so in expectation

        cov(D_S, D) = v,   var(D_S) = v + sigma**2 * c,   c = mean over cells of (1 - 1/K_i),

    and the correlation is ``sqrt(v / (v + sigma**2 * c))``. Setting it to r gives

        sigma**2 = v * (1 / r**2 - 1) / c.

    ``r = 1`` adds no noise (the scores are the quality). The realised correlation is close to
    ``r`` on a large matrix and scatters around it on a small one. Scores are on the quality's
    scale (not squashed into [0, 1]): only their order within a prompt carries information.

    Parameters
    ----------
    quality : array-like or pandas.DataFrame of shape (n, K)
        Quality of each prompt (row) and generator (column). NaN cells (a missing image)
        stay NaN and are left out of ``v`` and ``c``; ``K_i`` counts a row's non-NaN cells.
    correlation : float in (0, 1]
        The within-prompt correlation of the scores with the quality, in expectation.
    random_state : int, numpy.random.RandomState or None, default=None
        Seed of the noise (:func:`sklearn.utils.check_random_state`); an int gives the same
        scores on every call.

    Returns
    -------
    scores : ndarray or pandas.DataFrame of shape (n, K)
        Same type, shape, index and columns as ``quality`` (a DataFrame in gives a DataFrame
        out; anything else gives an ndarray).

    Raises
    ------
    TypeError
        ``correlation`` is not a real number, or ``quality`` holds non-numbers.
    ValueError
        ``correlation`` is NaN, <= 0 or > 1; ``quality`` is not 2-D, holds infinities, or has
        no within-prompt variation (every row constant, or one column), so the correlation
        is undefined.

    Examples
    --------
    >>> import numpy as np
    >>> from costroute.datasets import simulate_scores
    >>> quality = np.random.default_rng(0).normal(3, 1, size=(20000, 4))
    >>> scores = simulate_scores(quality, correlation=0.74, random_state=0)
    >>> dq = quality - quality.mean(axis=1, keepdims=True)
    >>> ds = scores - scores.mean(axis=1, keepdims=True)
    >>> r = np.corrcoef(dq.ravel(), ds.ravel())[0, 1]
    >>> bool(abs(r - 0.74) < 0.01)
    True
    """
    from sklearn.utils import check_random_state

    r = _check_correlation(correlation)
    import pandas as pd

    frame = quality if isinstance(quality, pd.DataFrame) else None
    try:
        q = np.array(quality, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"quality must be a numeric (n, K) matrix, got {type(quality).__name__}") from None
    if q.ndim != 2:
        raise ValueError(f"quality must be a 2-D (n prompts, K generators) matrix, got shape {q.shape}")
    if np.isinf(q).any():
        raise ValueError("quality holds infinite values; use finite numbers (NaN marks a missing cell)")
    valid = ~np.isnan(q)
    per_row = valid.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        row_mean = np.where(per_row > 0, np.nansum(q, axis=1, keepdims=True) / per_row, np.nan)
        deviation = q - row_mean
        share = np.broadcast_to(1.0 - 1.0 / per_row, q.shape)
    v = float(np.mean(deviation[valid] ** 2)) if valid.any() else 0.0
    c = float(np.mean(share[valid])) if valid.any() else 0.0
    if not v > 0 or not c > 0:
        raise ValueError(
            f"quality of shape {q.shape} has no within-prompt variation (every row is constant or has one "
            "value), so a within-prompt correlation is undefined"
        )
    sigma = math.sqrt(v * (1.0 / r**2 - 1.0) / c)
    noise = check_random_state(random_state).standard_normal(q.shape)
    scores = q + sigma * noise
    scores[~valid] = np.nan
    if frame is not None:
        return pd.DataFrame(scores, index=frame.index.copy(), columns=frame.columns.copy())
    return scores
