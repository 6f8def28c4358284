"""How well routing can be predicted at all: the prompt x generator interaction and its rating noise.

A routing decision depends only on the *interaction* part of the quality matrix -- quality
minus its prompt mean and its generator mean (the double-centred matrix): the prompt mean
moves every generator alike, and the generator mean is the same for every prompt.
:func:`interaction_r` measures how well a prediction recovers it; :func:`noise_ceiling`
measures how much of it the ratings themselves can reproduce.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


def _double_centre(X: np.ndarray) -> np.ndarray:
    return X - X.mean(axis=1, keepdims=True) - X.mean(axis=0, keepdims=True) + X.mean()


def _interaction(X: np.ndarray) -> np.ndarray:
    """The double-centred matrix, exactly zero when it is zero up to rounding."""
    D = _double_centre(X)
    scale = float(np.max(np.abs(X - X.mean()))) if X.size else 0.0
    if float(np.max(np.abs(D))) <= 1e-12 * scale:
        return np.zeros_like(D)
    return D


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    if den <= 0 or not np.isfinite(den):
        return float("nan")
    return float(np.clip((a @ b) / den, -1.0, 1.0))


def _as_quality(x: Any, name: str) -> np.ndarray:
    try:
        X = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric (n_prompts, n_generators) matrix: {exc}") from exc
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-d (n_prompts, n_generators), got shape {X.shape}")
    return X


def interaction_r(pred: Any, true: Any) -> float:
    """Correlation of the predicted and true prompt x generator interaction.

    Both matrices are double-centred (each cell minus its row mean and its column mean, plus
    the grand mean) and the Pearson correlation of the centred cells is returned. It ignores
    what the routing ignores -- a prompt's overall level and a generator's overall level --
    and rewards a prediction for knowing *which generator suits which prompt*.

    Parameters
    ----------
    pred : array-like of shape (n_prompts, n_generators)
        Predicted quality (e.g. out-of-fold predictions).
    true : array-like of shape (n_prompts, n_generators)
        True quality, same generator order.

    Returns
    -------
    float
        In [-1, 1]; NaN when either interaction is zero (a prediction that is the sum of a
        prompt effect and a generator effect routes every prompt alike).

    Raises
    ------
    ValueError
        On shapes that differ or are not 2-d, or on a NaN or infinite value.

    Examples
    --------
    >>> import numpy as np
    >>> true = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    >>> interaction_r(true + 5.0, true)     # shifting every cell changes nothing
    1.0
    >>> interaction_r(true[::-1], true)      # the opposite preference
    -1.0
    """
    P = _as_quality(pred, "pred")
    T = _as_quality(true, "true")
    if P.shape != T.shape:
        raise ValueError(
            f"pred has shape {P.shape} but true has shape {T.shape}; both must be (n_prompts, n_generators) "
            "with the same generator order"
        )
    for name, X in (("pred", P), ("true", T)):
        if not np.all(np.isfinite(X)):
            raise ValueError(
                f"{name} holds {int((~np.isfinite(X)).sum())} NaN or infinite value(s); drop those prompts first"
            )
    return _corr(_interaction(P), _interaction(T))


@dataclass(frozen=True)
class NoiseCeiling:
    """Reliability of the prompt x generator interaction of a rated quality matrix.

    Attributes
    ----------
    single_rater_r : float
        Mean over rater pairs of the correlation of their double-centred matrices: how well
        one rater's interaction predicts another's.
    reliability : float
        Spearman-Brown reliability of the mean of ``n_raters`` ratings,
        ``R r / (1 + (R - 1) r)``: the share of the mean rating's interaction variance that is
        not rating noise (negative when raters disagree more than chance).
    ceiling_r : float
        ``sqrt(max(reliability, 0))``: the correlation with the rater mean's interaction that a
        perfect predictor of the noise-free interaction would reach. A router's
        :func:`interaction_r` against the rater mean is to be read against it.
    n_raters : int
        Ratings per image (R).
    n_prompts : int
        Prompts used (those with every rating).
    pairwise_r : ndarray of shape (R, R)
        Correlation of every pair of raters' interactions (1 on the diagonal).
    """

    single_rater_r: float
    reliability: float
    ceiling_r: float
    n_raters: int
    n_prompts: int
    pairwise_r: np.ndarray

    def to_dict(self) -> dict[str, float | int]:
        """The scalars as a dict (JSON-ready)."""
        return {
            "single_rater_r": self.single_rater_r,
            "reliability": self.reliability,
            "ceiling_r": self.ceiling_r,
            "n_raters": self.n_raters,
            "n_prompts": self.n_prompts,
        }


def noise_ceiling(ratings: Any) -> NoiseCeiling:
    """How reproducible the prompt x generator interaction of individual ratings is.

    Each rater's (or seed's) matrix is double-centred; the mean correlation ``r`` over rater
    pairs is a single rater's reliability, and the Spearman-Brown formula gives the
    reliability of the R-rater mean, ``R r / (1 + (R - 1) r)``. Its square root is the ceiling
    of :func:`interaction_r` against the rater mean: even a predictor that knew the noise-free
    interaction exactly would correlate with the noisy mean no better.

    Parameters
    ----------
    ratings : array-like of shape (n_prompts, n_generators, n_raters)
        Individual ratings (or scores of R seeds), generators in a fixed order. A prompt with
        a missing (NaN) rating is left out (``n_prompts`` counts the prompts used).

    Returns
    -------
    NoiseCeiling

    Raises
    ------
    ValueError
        If ``ratings`` is not 3-d, has fewer than 2 raters, fewer than 2 generators, an
        infinite value, or fewer than 2 prompts with every rating.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.normal(size=(200, 4))
    >>> identical = np.stack([truth, truth, truth], axis=2)
    >>> round(noise_ceiling(identical).reliability, 6)
    1.0
    """
    try:
        R3 = np.asarray(ratings, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"ratings must be a numeric (n_prompts, n_generators, n_raters) array: {exc}") from exc
    if R3.ndim != 3:
        raise ValueError(
            f"ratings must be 3-d (n_prompts, n_generators, n_raters), got shape {R3.shape}; a mean "
            "quality matrix has no rater axis -- pass the individual ratings"
        )
    n, k, n_raters = R3.shape
    if n_raters < 2:
        raise ValueError(
            f"ratings must hold at least 2 raters (or seeds) per image to measure their agreement, got "
            f"shape {R3.shape} with n_raters={n_raters}"
        )
    if k < 2:
        raise ValueError(f"ratings must cover at least 2 generators (an interaction needs two), got shape {R3.shape}")
    if np.isinf(R3).any():
        raise ValueError(f"ratings holds {int(np.isinf(R3).sum())} infinite value(s); use NaN for a missing rating")
    complete = ~np.isnan(R3).any(axis=(1, 2))
    if complete.sum() < 2:
        raise ValueError(
            f"ratings has {int(complete.sum())} prompt(s) with every rating (a prompt with a NaN is left "
            "out); at least 2 are needed"
        )
    R3 = R3[complete]
    centred = [_interaction(R3[:, :, j]) for j in range(n_raters)]
    pair = np.eye(n_raters)
    for i in range(n_raters):
        for j in range(i + 1, n_raters):
            pair[i, j] = pair[j, i] = _corr(centred[i], centred[j])
    r1 = float(np.mean(pair[np.triu_indices(n_raters, 1)]))
    if np.isnan(r1):
        rel = float("nan")
    else:
        den = 1 + (n_raters - 1) * r1
        rel = float(n_raters * r1 / den) if den > 0 else float("nan")
    ceiling = math.sqrt(max(rel, 0.0)) if not np.isnan(rel) else float("nan")
    return NoiseCeiling(r1, rel, ceiling, n_raters, int(complete.sum()), pair)


def _add_interaction(report: Any, result: Any) -> Any:
    """The interaction-r columns (and the ceiling, with ratings), placed before ``fit_time_mean``."""
    mean = pd.Series(np.nan, index=report.index)
    std = pd.Series(np.nan, index=report.index)
    for name, preds in result.oof_predictions.items():
        values = [interaction_r(p, result.true_quality) for p in preds if not np.isnan(p).any()]
        if name in report.index and values:
            mean[name] = float(np.mean(values))
            std[name] = float(np.std(values, ddof=1)) if len(values) > 1 else np.nan
    columns = {"interaction_r_mean": mean, "interaction_r_std": std}
    if getattr(result, "ratings", None) is not None:
        ceiling = noise_ceiling(result.ratings).ceiling_r
        columns["interaction_ceiling_mean"] = pd.Series(
            np.where(report["kind"] == "router", ceiling, np.nan), index=report.index
        )
    at = report.columns.get_loc("fit_time_mean") if "fit_time_mean" in report.columns else len(report.columns)
    for offset, (col, values) in enumerate(columns.items()):
        report.insert(at + offset, col, values)
    return report


def _check_ratings(ratings: Any, n: int, K: int) -> np.ndarray | None:
    if ratings is None:
        return None
    try:
        R3 = np.asarray(ratings, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"ratings must be a numeric (n_prompts, n_generators, n_raters) array: {exc}") from exc
    if R3.ndim != 3 or R3.shape[:2] != (n, K) or R3.shape[2] < 2:
        raise ValueError(
            f"ratings must have shape (n_prompts, n_generators, n_raters>=2) = ({n}, {K}, R) to match "
            f"quality, got {R3.shape}"
        )
    return R3
