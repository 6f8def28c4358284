"""Joint Gaussian model of an image's true quality and its score, given the router's prediction.

For one prompt with router prediction ``q̂`` (K,), the latent vector
``Z = (Q_1..Q_K, S^1_1..S^1_K, ..., S^M_1..S^M_K)`` holds the true quality of each generator's
image and the score each of ``M`` scorers would give it. The model is

    Q_k = q̂_k + r_k,        S^m_k = c_mk + d_mk q̂_k + r_{mK+K+k},        r ~ N(0, Σ),

with the score calibration fitted by least squares on *out-of-fold* router predictions and
``Σ`` (K(M+1) x K(M+1)) the shrunk (Ledoit-Wolf, on standardised residuals) covariance of the
residuals, the scorers of one image excepted (:func:`_shrunk_covariance`). Training data with
missing cells (NaN in the quality or a score: a service that made one or a few images per
prompt) are fitted with a pairwise-complete estimate of ``Σ``, see :func:`pairwise_covariance`.
The prior mean of the quality is the router's own prediction, uncalibrated, so that
before any score the cascade ranks generators exactly as the router does: with a scorer that
says nothing, it never escalates and is the router. ``Σ`` carries everything the cascade needs: how uncertain the router is about each
generator (``Σ_QQ``), how much a score says about its own image (``Cov(Q_k, S^m_k)``) and about
the other generators' images through the prompt (``Cov(Q_j, S^m_k)``, a hard prompt is hard for
all), and how scores co-vary, within and across scorers (a second scorer is worth little when
it says what the first said).

Score cells are indexed scorer-major: cell ``m K + k`` is scorer ``m``'s score of generator
``k``'s image; with one scorer the cells are the generators.

Observing some scores updates every generator's expected quality by Gaussian conditioning,
and the *preposterior* of a score not yet seen is a Gaussian whose effect on the expected
qualities is linear in one standard normal variable: :meth:`QualityPosterior.condition` returns
those gains, from which the cascade computes expected improvements in closed form.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy.special import ndtr
from sklearn.covariance import LedoitWolf

#: Variances below this are treated as zero (a constant score carries no information).
_VAR_EPS = 1e-12

#: Fewest rows in which two residuals are both observed for their covariance to be estimated;
#: below it the two are taken as uncorrelated (missing cells only).
MIN_PAIRS = 5

#: Fewest rows with a score for its calibration to get a slope; below it the slope is 0 and
#: the intercept the mean observed score (missing cells only).
MIN_CALIBRATION_ROWS = 3


def expected_improvement(d: np.ndarray, e: np.ndarray) -> np.ndarray:
    """``E[max(0, d + e Z)]`` for ``Z ~ N(0, 1)``, elementwise, ``e >= 0``.

    ``d Φ(d/e) + e φ(d/e)``; with ``e = 0`` it is ``max(d, 0)``.
    """
    d = np.asarray(d, dtype=float)
    e = np.asarray(e, dtype=float)
    out = np.maximum(d, 0.0)
    pos = e > 0
    if np.any(pos):
        z = np.where(pos, d / np.where(pos, e, 1.0), 0.0)
        phi = np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
        out = np.where(pos, d * ndtr(z) + e * phi, out)
    return out


def _linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares ``y ≈ a + b x``; a constant ``x`` gives ``b = 0``."""
    xc = x - x.mean()
    sxx = float(xc @ xc)
    b = float(xc @ (y - y.mean())) / sxx if sxx > _VAR_EPS * max(1.0, len(x)) else 0.0
    return float(y.mean() - b * x.mean()), b


def _shrunk_covariance(R: np.ndarray, scale: np.ndarray, K: int) -> np.ndarray:
    """Correlation of the standardised residuals, shrunk with Ledoit-Wolf, scorers of one image kept.

    ``(1 − δ) C + δ μ I`` (sklearn's ``LedoitWolf``, ``assume_centered=True``), except between two
    scorers' scores of the same image, where the measured entry is kept: a second scorer that
    repeats the first must stay perfectly correlated with it, or the model would believe it
    adds information. (A convex combination of ``C`` and a block-diagonal matrix whose blocks
    are principal submatrices of ``C``: positive semi-definite.) With one scorer this is
    exactly Ledoit-Wolf.
    """
    n, p = R.shape
    if n < 2:
        return np.eye(p)
    Z = R / scale
    shrunk = LedoitWolf(assume_centered=True).fit(Z).covariance_
    if p > 2 * K:  # several scorers
        empirical = Z.T @ Z / n
        shrunk = np.where(_same_image(p, K), empirical, shrunk)
    return shrunk


def _same_image(p: int, K: int) -> np.ndarray:
    """(p, p) mask of the pairs of distinct score cells of one image (two scorers of generator ``k``)."""
    image = np.r_[np.full(K, -1), np.arange(p - K) % K]
    return (image[:, None] == image[None, :]) & (image[:, None] >= 0) & ~np.eye(p, dtype=bool)


def _calibration(p: np.ndarray, s: np.ndarray, min_rows: int) -> tuple[float, float]:
    """:func:`_linear_fit` of ``s`` on ``p`` over the rows where ``s`` is observed; slope 0 (the mean)
    with fewer than ``min_rows`` of them."""
    seen = ~np.isnan(s)
    if seen.sum() >= min_rows:
        return _linear_fit(p[seen], s[seen])
    return float(s[seen].mean()), 0.0


def pairwise_covariance(Z: np.ndarray, min_pairs: int = MIN_PAIRS, keep: np.ndarray | None = None) -> np.ndarray:
    """Ledoit-Wolf shrunk second-moment matrix of ``Z`` (n, p) with NaN for missing entries.

    The estimator of :class:`sklearn.covariance.LedoitWolf` (``assume_centered=True``),
    computed from pairwise-complete rows:

    1. each entry ``E[z_i z_j]`` is the mean of ``z_i z_j`` over the ``n_ij`` rows where both
       are observed; an off-diagonal entry with ``n_ij < min_pairs`` is set to 0 (no
       correlation), as too few pairs say nothing reliable about it;
    2. that matrix, which need not be positive semidefinite any more, is replaced by the
       nearest positive-semidefinite one in Frobenius norm (negative eigenvalues clipped to 0);
    3. it is shrunk toward ``μ I`` (``μ`` its mean eigenvalue) with the Ledoit-Wolf intensity,
       whose sampling-variance term sums each entry's ``Var(z_i z_j) / n_ij`` -- the complete-data
       formula with each entry's own number of rows.

    On a complete ``Z`` every step reduces to :class:`~sklearn.covariance.LedoitWolf` (up to
    rounding in step 2). Every column needs at least one observed entry. The entries in
    ``keep`` are left unshrunk (the projected matrix's), as :func:`_shrunk_covariance` keeps
    two scorers' scores of one image (and, should that make the matrix indefinite, it is
    projected once more).

    Parameters
    ----------
    Z : ndarray of shape (n, p)
        Residuals (standardised), NaN where not observed.
    min_pairs : int, default=MIN_PAIRS
        Fewest co-observed rows for an off-diagonal entry to be estimated.
    keep : ndarray of bool of shape (p, p) or None, default=None
        Off-diagonal entries not to shrink.

    Returns
    -------
    ndarray of shape (p, p)
        Symmetric, positive semidefinite (positive definite when the shrinkage is positive).
    """
    seen = ~np.isnan(Z)
    X = np.where(seen, Z, 0.0)
    O = seen.astype(float)  # noqa: E741 - the indicator matrix
    counts = O.T @ O
    if np.any(np.diag(counts) == 0):
        raise ValueError(f"columns {np.flatnonzero(np.diag(counts) == 0).tolist()} have no observed entry")
    enough = counts >= min_pairs
    np.fill_diagonal(enough, True)
    safe = np.where(enough, counts, 1.0)
    emp = np.where(enough, (X.T @ X) / safe, 0.0)
    fourth = np.where(enough, ((X * X).T @ (X * X)) / safe, 0.0)
    evals, evecs = np.linalg.eigh(emp)
    psd = (evecs * np.clip(evals, 0.0, None)) @ evecs.T
    psd = (psd + psd.T) / 2
    p = len(psd)
    mu = float(np.trace(psd)) / p
    delta = float(np.sum((psd - mu * np.eye(p)) ** 2)) / p
    beta = min(float(np.sum(np.where(enough, (fourth - emp**2) / safe, 0.0))) / p, delta)
    shrinkage = 0.0 if beta <= 0 else beta / delta
    shrunk = (1.0 - shrinkage) * psd + shrinkage * mu * np.eye(p)
    if keep is None:
        return shrunk
    kept = np.where(keep, psd, shrunk)
    evals, evecs = np.linalg.eigh(kept)
    if evals.min() >= 0:
        return kept
    return (evecs * np.clip(evals, 0.0, None)) @ evecs.T  # keeping entries unshrunk can lose definiteness


class QualityPosterior:
    """Gaussian model of (true quality, score) per generator, fitted on out-of-fold predictions.

    Attributes
    ----------
    n_generators_ : int
    n_scorers_ : int
    score_calibration_ : ndarray (M K, 2)
        ``(c, d)`` of ``E[S^m_k | q̂] = c + d q̂_k`` per score cell ``m K + k``.
    covariance_ : ndarray (K (M + 1), K (M + 1))
        Residual covariance of ``(Q, S)``.

    Both are set by :meth:`fit`.
    """

    def fit(
        self, predicted: np.ndarray, quality: np.ndarray, scores: np.ndarray, *, min_pairs: int = MIN_PAIRS
    ) -> QualityPosterior:
        """Fit on out-of-fold predictions (n, K), true quality (n, K) and scores (n, K) or (n, K, M).

        ``quality`` and ``scores`` may hold NaN where an image was not made or not scored (the
        predictions are complete). Each score cell's calibration is then fitted on the rows
        where it is observed (slope 0, the mean, with fewer than ``MIN_CALIBRATION_ROWS``),
        the residuals are standardised by their observed standard deviations, and ``Σ`` is
        :func:`pairwise_covariance` of them: pairs of cells observed together on fewer than
        ``min_pairs`` rows are uncorrelated, and two scorers' scores of one image keep their
        (projected) pairwise entry unshrunk, as in the complete-data fit. Every quality and
        score cell needs at least 2 observed rows. Without NaN the fit is the complete-data
        one (:func:`_shrunk_covariance`), exactly.
        """
        P = np.asarray(predicted, dtype=float)
        Q = np.asarray(quality, dtype=float)
        S = np.asarray(scores, dtype=float)
        n, K = Q.shape
        if S.ndim == 2:
            S = S[:, :, None]
        M = S.shape[2]
        S = S.transpose(0, 2, 1).reshape(n, M * K)  # scorer-major cells
        self.n_generators_ = K
        self.n_scorers_ = M
        if np.isnan(Q).any() or np.isnan(S).any():
            return self._fit_incomplete(P, Q, S, min_pairs)
        self.score_calibration_ = np.array([_linear_fit(P[:, j % K], S[:, j]) for j in range(M * K)])
        mu, nu = self.prior(P)
        R = np.concatenate([Q - mu, S - nu], axis=1)
        scale = R.std(axis=0)
        scale = np.where(scale > np.sqrt(_VAR_EPS), scale, 1.0)
        self.covariance_ = _shrunk_covariance(R, scale, K) * scale[:, None] * scale[None, :]
        return self

    def _fit_incomplete(self, P: np.ndarray, Q: np.ndarray, S: np.ndarray, min_pairs: int) -> QualityPosterior:
        """:meth:`fit` when ``Q`` or ``S`` (n, M K) hold NaN: per-cell calibrations and a pairwise covariance."""
        K = self.n_generators_
        seen = np.concatenate([~np.isnan(Q), ~np.isnan(S)], axis=1).sum(axis=0)
        few = np.flatnonzero(seen < 2)
        if few.size:
            cells = [f"quality of generator {c}" if c < K else f"score cell {c - K}" for c in few]
            raise ValueError(f"every quality and score cell needs at least 2 observed rows; too few: {cells}")
        if isinstance(min_pairs, bool) or not isinstance(min_pairs, numbers.Integral) or min_pairs < 2:
            raise ValueError(f"min_pairs must be an int >= 2, got {min_pairs!r}")
        self.score_calibration_ = np.array(
            [_calibration(P[:, j % K], S[:, j], MIN_CALIBRATION_ROWS) for j in range(S.shape[1])]
        )
        mu, nu = self.prior(P)
        R = np.concatenate([Q - mu, S - nu], axis=1)
        scale = np.nanstd(R, axis=0)
        scale = np.where(scale > np.sqrt(_VAR_EPS), scale, 1.0)
        corr = pairwise_covariance(R / scale, int(min_pairs), keep=_same_image(R.shape[1], K))
        self.covariance_ = corr * scale[:, None] * scale[None, :]
        return self

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_conditional_cache", None)  # derived, rebuilt on demand
        return state

    def prior(self, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected quality (n, K) and expected score of every cell (n, M K), before any image."""
        P = np.asarray(predicted, dtype=float)
        c, d = self.score_calibration_.T
        return P.copy(), c + d * np.tile(P, (1, self.scorers))

    @property
    def scorers(self) -> int:
        """Number of scorers modelled (1 for a posterior fitted before several were supported)."""
        return getattr(self, "n_scorers_", 1)

    def condition(
        self, predicted: np.ndarray, observed: np.ndarray, scores: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Expected qualities given the observed scores, and the gains of the scores not yet seen.

        Parameters
        ----------
        predicted : ndarray (n, K)
            Router predictions.
        observed : ndarray of bool (n, M K)
            Which score cells have been observed (cell ``m K + k``: scorer ``m`` on generator
            ``k``'s image).
        scores : ndarray (n, M K)
            Their scores (other cells are ignored).

        Returns
        -------
        mean : ndarray (n, K)
            ``E[Q_j | q̂, observed scores]``.
        gains : ndarray (n, K, M K)
            ``gains[i, j, c]``: observing cell ``c`` (not yet observed) moves ``E[Q_j]`` by
            ``gains[i, j, c] * Z`` with ``Z ~ N(0, 1)`` (its preposterior); zero for observed
            cells.
        """
        mu, nu = self.prior(predicted)
        observed = np.asarray(observed, dtype=bool)
        scores = np.asarray(scores, dtype=float)
        n, K = mu.shape
        C = nu.shape[1]
        mean = mu.copy()
        gains = np.zeros((n, K, C))
        codes = observed.astype(np.int64) @ (np.int64(1) << np.arange(C, dtype=np.int64)) if C < 63 else None
        if codes is None:  # pragma: no cover - more than 62 score cells
            masks, group = np.unique(observed, axis=0, return_inverse=True)
            groups = [(mask, np.flatnonzero(group.ravel() == g)) for g, mask in enumerate(masks)]
        else:
            order = np.argsort(codes, kind="stable")
            bounds = np.flatnonzero(np.diff(codes[order])) + 1
            groups = [(observed[part[0]], part) for part in np.split(order, bounds) if part.size]
        for mask, rows in groups:
            cond_cov, solve = self._conditional(mask)
            if solve is not None:
                obs = np.flatnonzero(mask)
                innovation = scores[np.ix_(rows, obs)] - nu[np.ix_(rows, obs)]
                mean[rows] += innovation @ solve.T
            var = np.diag(cond_cov)[K:]
            informative = (~mask) & (var > _VAR_EPS)
            sd = np.sqrt(np.where(informative, var, 1.0))
            gains[rows] = np.where(informative[None, :], cond_cov[:K, K:] / sd[None, :], 0.0)[None]
        return mean, gains

    def _conditional(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Covariance of Z given the scores in ``mask``, and the map innovations -> ΔE[Q] (cached per mask)."""
        cache = self.__dict__.setdefault("_conditional_cache", {})
        key = np.asarray(mask, dtype=bool).tobytes()
        if key not in cache:
            cache[key] = self._conditional_uncached(mask)
        return cache[key]

    def _conditional_uncached(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        K = self.n_generators_
        cov = self.covariance_
        obs = K + np.flatnonzero(mask)
        if obs.size == 0:
            return cov, None
        s_oo = cov[np.ix_(obs, obs)]
        cross = cov[:, obs]
        weights = np.linalg.lstsq(s_oo, cross.T, rcond=None)[0].T  # (K (M + 1), |obs|)
        return cov - weights @ cross.T, weights[:K]

    def sample_scores(self, predicted: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Scores drawn from the model for every cell (n, M K): ``E[S | q̂]`` plus residuals."""
        _, nu = self.prior(predicted)
        K = self.n_generators_
        draws = rng.multivariate_normal(np.zeros(len(self.covariance_)), self.covariance_, size=len(nu), method="eigh")
        return nu + draws[:, K:]
