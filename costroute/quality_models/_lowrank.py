"""LowRankRegressor: generator means + prompt difficulty + a rank-r prompt x generator interaction."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["DEFAULT_ALPHAS", "LowRankRegressor"]

#: EM tolerance of the inner cross-validation fits (the final fit uses ``tol``).
_CV_TOL = 1e-5

#: Ridge penalties tried by the inner cross-validation when ``alphas=None``.
DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-2, 4, 13))


class _Fit:
    """Parameters of one fit: q = mu + (Xc w)[:, None] + (Xc A^T) V^T."""

    __slots__ = ("mu", "w", "A", "V")

    def __init__(self, mu, w, A, V):
        self.mu, self.w, self.A, self.V = mu, w, A, V

    def predict(self, Xc: np.ndarray) -> np.ndarray:
        return self.mu + (Xc @ self.w)[:, None] + (Xc @ self.A.T) @ self.V.T


class _Design:
    """The centred training features and their thin SVD (reused along the penalty path)."""

    def __init__(self, X: np.ndarray, mean: np.ndarray | None = None):
        self.mean = X.mean(axis=0) if mean is None else mean
        self.Xc = X - self.mean
        self.U, self.s, self.Vt = np.linalg.svd(self.Xc, full_matrices=False)

    def ridge(self, T: np.ndarray, alpha: float) -> np.ndarray:
        """Ridge coefficients (d, ...) of the centred targets ``T`` on the centred features."""
        return self.Vt.T @ ((self.s / (self.s**2 + alpha))[:, None] * (self.U.T @ T.reshape(len(T), -1)))


def _complement_basis(K: int) -> np.ndarray:
    """An orthonormal basis (K, K-1) of the vectors that sum to zero."""
    q, _ = np.linalg.qr(np.eye(K) - 1.0 / K)
    return q[:, : K - 1]


def _fit_complete(design: _Design, Y: np.ndarray, alpha_b: float, alpha: float, rank: int) -> _Fit:
    """Exact minimiser of the penalised least squares on a complete ``Y``.

    The loss splits into a ridge regression of the prompts' mean quality (difficulty, penalty
    ``alpha_b``) and a reduced-rank ridge regression of the double-centred ``Y`` (interaction,
    penalty ``alpha`` on the coefficient matrix, rank at most ``rank``).
    """
    K = Y.shape[1]
    mu = Y.mean(axis=0)
    Yc = Y - mu
    m = Yc.mean(axis=1)
    w = design.ridge(m, alpha_b)[:, 0]
    d = design.Xc.shape[1]
    if rank == 0:
        return _Fit(mu, w, np.zeros((0, d)), np.zeros((K, 0)))
    R = Yc - m[:, None]
    Z = design.U.T @ R  # (p, K)
    shrink = design.s**2 / (design.s**2 + alpha)
    Q = _complement_basis(K)
    ZQ = Z @ Q
    G = ZQ.T @ (shrink[:, None] * ZQ)  # Gram of the augmented ridge fit, within the zero-sum space
    evals, evecs = np.linalg.eigh(G)
    top = evecs[:, ::-1][:, :rank]
    V = Q @ top  # (K, r), orthonormal columns summing to zero
    for j in range(V.shape[1]):  # a fixed sign: the largest entry positive
        if V[np.argmax(np.abs(V[:, j])), j] < 0:
            V[:, j] = -V[:, j]
    B = design.ridge(R, alpha)  # (d, K)
    A = (B @ V).T  # (r, d)
    return _Fit(mu, w, A, V)


def _fit_difficulty_masked(design: _Design, Y: np.ndarray, mask: np.ndarray, alpha_b: float) -> _Fit:
    """Exact rank-0 fit (means + difficulty) over the observed cells: ``μ_k`` profiled out,
    ``w`` from one ridge system whose Gram sums, over columns, the features of the prompts
    that column rated, centred on those prompts."""
    Xc = design.Xc
    K, d = Y.shape[1], Xc.shape[1]
    G, h = np.zeros((d, d)), np.zeros(d)
    patterns, inverse = np.unique(mask.T, axis=0, return_inverse=True)
    for g, rows in enumerate(patterns):
        cols = np.flatnonzero(inverse.ravel() == g)
        if not rows.any():
            continue
        Xo = Xc[rows] - Xc[rows].mean(axis=0)
        Yo = Y[np.ix_(rows, cols)]
        G += len(cols) * (Xo.T @ Xo)
        h += Xo.T @ (Yo - Yo.mean(axis=0)).sum(axis=1)
    w = np.linalg.solve(G + K * alpha_b * np.eye(d), h)
    resid = np.where(mask, Y - (Xc @ w)[:, None], np.nan)
    return _Fit(np.nanmean(resid, axis=0), w, np.zeros((0, d)), np.zeros((K, 0)))


def _fit_masked(design, Y, mask, alpha_b, alpha, rank, max_iter, tol, start=None, warn=False):
    """Minimise the penalised loss over the observed cells by EM: missing cells are refilled with
    the current predictions and the complete-data problem is solved exactly, which never
    increases the masked loss. Starts from the exact rank-0 fit (or ``start``); rank 0 is
    solved directly. Returns the fit, the filled matrix and the complete-data solves run."""
    if mask.all():
        return _fit_complete(design, Y, alpha_b, alpha, rank), Y, 1
    if rank == 0 or start is None:
        base = _fit_difficulty_masked(design, Y, mask, alpha_b)
        if rank == 0:
            return base, np.where(mask, Y, base.predict(design.Xc)), 1
        start = base.predict(design.Xc)
    filled = np.where(mask, Y, start)
    scale = max(float(np.std(Y[mask])), 1e-12)
    for it in range(1, max_iter + 1):  # noqa: B007 - the number of passes is returned
        fit = _fit_complete(design, filled, alpha_b, alpha, rank)
        new = np.where(mask, Y, fit.predict(design.Xc))
        change = float(np.max(np.abs(new - filled)))
        filled = new
        if change <= tol * scale:
            break
    else:
        if warn:
            warnings.warn(
                f"the low-rank fit with missing cells stopped after max_iter={max_iter} passes before "
                f"converging (last change {change / scale:.2g} of the quality's std, tol={tol:g}); raise "
                "max_iter or tol",
                ConvergenceWarning,
                stacklevel=3,
            )
    return fit, filled, it


def _check_rank(rank) -> list[int]:
    values = [rank] if isinstance(rank, numbers.Integral) or not isinstance(rank, Sequence) else list(rank)
    bad = [r for r in values if isinstance(r, bool) or not isinstance(r, numbers.Integral) or r < 1]
    if not values or bad:
        raise ValueError(
            f"rank must be an int >= 1 or a non-empty list of them (the candidates for the inner "
            f"cross-validation), got {rank!r}"
        )
    return sorted({int(r) for r in values})


def _check_alphas(alphas, name: str) -> np.ndarray:
    if alphas is None:
        return np.asarray(DEFAULT_ALPHAS)
    if isinstance(alphas, numbers.Real) and not isinstance(alphas, bool):
        alphas = [alphas]
    try:
        arr = np.asarray(alphas, dtype=float).ravel()
    except (TypeError, ValueError):
        arr = np.array([np.nan])
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be None or positive finite ridge penalties, e.g. [0.1, 1, 10], got {alphas!r}")
    return np.unique(arr)


class LowRankRegressor(RegressorMixin, BaseEstimator):
    """Quality of every generator as mean + prompt difficulty + a low-rank interaction.

    For features ``x`` (centred on the training mean ``x̄``) and generator ``k``::

        q̂_k(x) = μ_k + b(x) + u(x)·v_k,   b(x) = w·(x − x̄),   u(x) = A (x − x̄)

    with generator means ``μ_k``, a prompt-difficulty term ``b`` that moves every generator
    together, and a rank-``r`` interaction: ``A`` (r, d) maps a prompt to ``r`` factors and
    ``v_k`` (r,) are the generator's loadings (orthonormal columns of
    ``generator_factors_``, summing to zero over generators). Only ``μ_k + u(x)·v_k`` can
    change which generator a router picks; ``b`` only moves the predicted level.

    ``fit`` minimises, over the observed cells of ``y`` (NaN = not rated)::

        Σ_obs (y_ik − q̂_k(x_i))² + K·α_b·‖w‖² + α·‖Aᵀ Vᵀ‖²_F

    On a complete ``y`` the solution is exact: ridge regression of each prompt's mean quality
    (``α_b``) and reduced-rank ridge regression of the double-centred ``y`` (``α``, rank
    ``r``). With missing cells, an EM loop refills them with the current predictions and
    solves the complete problem again until the filled cells move less than ``tol`` (relative
    to the standard deviation of the observed cells). ``α_b`` is chosen first by inner K-fold
    cross-validation (by prompt, held-out observed cells, squared error) on the rank-0 model,
    then ``α`` and the rank on the full model.

    Parameters
    ----------
    rank : int or list of int, default=2
        Rank of the interaction, or candidates for the inner cross-validation. Capped at
        ``min(K − 1, n_features)`` (a double-centred ``y`` has rank at most ``K − 1``); with
        one generator there is no interaction and the model is a ridge regression.
    alphas : list of float or None, default=None
        Candidate interaction penalties ``α``; ``None``: 13 values from 0.01 to 10⁴.
    difficulty_alphas : list of float or None, default=None
        Candidate difficulty penalties ``α_b``; ``None``: the same 13 values.
    cv : int, default=5
        Folds of the inner cross-validation by prompt (at most the number of prompts).
    max_iter : int, default=500
        Most EM iterations per fit when ``y`` has missing cells.
    tol : float, default=1e-9
        EM stops when no filled cell moves more than ``tol`` times the observed cells' std
        (the inner cross-validation fits stop at ``max(tol, 1e-5)``).
    random_state : int, RandomState or None, default=0
        Shuffles the inner folds; the default makes the fit deterministic.

    Attributes
    ----------
    generator_means_ : ndarray of shape (K,)
        ``μ_k``.
    difficulty_coef_ : ndarray of shape (n_features,)
        ``w``.
    components_ : ndarray of shape (``rank_``, n_features)
        ``A``: the prompt side of the interaction.
    generator_factors_ : ndarray of shape (K, ``rank_``)
        ``v_k`` as rows.
    feature_means_ : ndarray of shape (n_features,)
        ``x̄``.
    alpha_, difficulty_alpha_ : float
        The chosen penalties.
    rank_ : int
        The chosen rank.
    noise_variance_ : float
        Inner cross-validated mean squared error of the chosen model on held-out observed
        cells (the noise level :meth:`add_generator` shrinks with).
    cv_results_ : dict
        ``difficulty_alphas``, ``difficulty_mse`` (one per candidate), ``params`` (list of
        ``(rank, alpha)``) and ``mse`` (one per pair).
    n_iter_ : int
        Complete-data solves of the final fit: EM iterations, 1 for a complete ``y``.
    n_features_in_ : int
    n_outputs_ : int
        ``K``, grows with :meth:`add_generator`.
    generator_names_ : list of str
        Column names of ``y`` when it is a DataFrame, else ``"0"``, ``"1"``, ...; plus the
        names given to :meth:`add_generator`.

    Examples
    --------
    >>> import numpy as np
    >>> from costroute.quality_models import LowRankRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 5))
    >>> Y = 1 + X[:, :1] + np.outer(X[:, 1], [1.0, -1.0, 0.0])   # rank-1 interaction
    >>> Y[0, 2] = np.nan                                        # a cell nobody rated
    >>> model = LowRankRegressor(rank=1, alphas=[1e-8]).fit(X, Y)
    >>> model.rank_, model.predict(X[:2]).shape
    (1, (2, 3))
    """

    def __init__(self, rank=2, alphas=None, difficulty_alphas=None, cv=5, max_iter=500, tol=1e-9, random_state=0):
        self.rank = rank
        self.alphas = alphas
        self.difficulty_alphas = difficulty_alphas
        self.cv = cv
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    # ------------------------------------------------------------------ validation
    def _check_y(self, y, n: int) -> tuple[np.ndarray, list[str]]:
        if y is None:
            raise ValueError(
                "requires y to be passed, but the target y is None: y holds the quality of each "
                "generator (n_samples, n_generators), NaN where not rated"
            )
        names = [str(c) for c in y.columns] if hasattr(y, "columns") else None
        try:
            Y = np.asarray(y, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"y must hold numbers (quality scores, NaN where not rated): {exc}") from exc
        self._y_1d = Y.ndim == 1
        if Y.ndim == 1:
            Y = Y[:, None]
        if Y.ndim != 2 or Y.shape[0] != n or Y.shape[1] < 1:
            raise ValueError(
                f"y must have shape (n_samples, n_generators) with n_samples = {n} (the rows of X), "
                f"got shape {np.shape(y)}"
            )
        if np.isinf(Y).any():
            raise ValueError("y contains inf; quality must be finite, or NaN where a generator did not rate a prompt")
        empty = np.flatnonzero(np.isnan(Y).all(axis=0))
        if empty.size:
            cols = [names[k] if names else int(k) for k in empty]
            raise ValueError(
                f"y has no rated cell in column(s) {cols}: every generator needs at least one rated "
                "prompt; drop those columns or rate some prompts with them"
            )
        return Y, names or [str(k) for k in range(Y.shape[1])]

    def _folds(self, n: int):
        cv = self.cv
        if isinstance(cv, bool) or not isinstance(cv, numbers.Integral) or cv < 2:
            raise ValueError(f"cv must be an int >= 2 (folds of the inner cross-validation), got {cv!r}")
        if cv > n:
            raise ValueError(f"cv={cv} folds need at least {cv} prompts, got {n}; lower cv")
        return list(KFold(int(cv), shuffle=True, random_state=self.random_state).split(np.zeros(n)))

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y):
        """Fit on features ``X`` (n, d) and quality ``y`` (n, K), NaN where not rated.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Prompt features (finite).
        y : array-like or DataFrame of shape (n_samples, n_generators) or (n_samples,)
            Quality; NaN marks a cell not rated. Every column needs at least one rated cell.

        Returns
        -------
        self : LowRankRegressor

        Raises
        ------
        ValueError
            Bad ``rank``, ``alphas``, ``cv``, ``max_iter`` or ``tol``, ``X`` and ``y`` of
            different lengths, inf in ``y`` or a column of ``y`` with no rated cell.
        """
        ranks = _check_rank(self.rank)
        alphas = _check_alphas(self.alphas, "alphas")
        b_alphas = _check_alphas(self.difficulty_alphas, "difficulty_alphas")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, numbers.Integral) or self.max_iter < 1:
            raise ValueError(f"max_iter must be an int >= 1, got {self.max_iter!r}")
        if not isinstance(self.tol, numbers.Real) or not 0 < self.tol < 1:
            raise ValueError(f"tol must be a float in (0, 1), got {self.tol!r}")
        X = validate_data(self, X, reset=True, dtype=float, ensure_min_samples=2)
        Y, names = self._check_y(y, X.shape[0])
        n, d = X.shape
        K = Y.shape[1]
        mask = ~np.isnan(Y)
        max_rank = min(K - 1, d)
        ranks = sorted({min(r, max_rank) for r in ranks})
        folds = self._folds(n)
        for tr, _ in folds:
            unrated = np.flatnonzero(~mask[tr].any(axis=0))
            if unrated.size:
                cols = [names[k] if names else int(k) for k in unrated]
                counts = [int(mask[:, k].sum()) for k in unrated]
                raise ValueError(
                    f"column(s) {cols} of y are rated on only {counts} prompt(s), and an inner training fold "
                    f"of cv={self.cv} holds none of them, so the penalties cannot be chosen; rate more prompts "
                    "of that generator, lower cv, or add it later with add_generator"
                )
        fold_designs = [_Design(X[tr]) for tr, _ in folds]

        def cv_mse(alpha_b, alpha, rank, starts):
            err = cnt = 0.0
            for f, (tr, te) in enumerate(folds):
                design = fold_designs[f]
                fit, filled, _ = _fit_masked(
                    design, Y[tr], mask[tr], alpha_b, alpha, rank, self.max_iter, max(self.tol, _CV_TOL), starts[f]
                )
                starts[f] = filled  # warm start of the next candidate
                pred = fit.predict(X[te] - design.mean)
                obs = mask[te]
                err += float(np.sum((pred[obs] - Y[te][obs]) ** 2))
                cnt += obs.sum()
            return err / max(cnt, 1)

        starts = [None] * len(folds)
        b_mse = [cv_mse(a, 1.0, 0, starts) for a in b_alphas[::-1]][::-1]
        alpha_b = float(b_alphas[int(np.argmin(b_mse))])
        params, mse = [], []
        for rank in ranks:
            if rank == 0:
                params.append((0, float(alphas[-1])))
                mse.append(b_mse[int(np.argmin(b_mse))])
                continue
            starts = [None] * len(folds)
            for a in alphas[::-1]:  # strongest penalty first: warm starts move little
                params.append((rank, float(a)))
                mse.append(cv_mse(alpha_b, float(a), rank, starts))
        best = int(np.argmin(mse))
        self.rank_, self.alpha_ = params[best]
        self.difficulty_alpha_ = alpha_b
        self.noise_variance_ = float(mse[best])
        self.cv_results_ = {
            "difficulty_alphas": b_alphas.copy(),
            "difficulty_mse": np.asarray(b_mse),
            "params": params,
            "mse": np.asarray(mse),
        }
        design = _Design(X)
        fit, _, self.n_iter_ = _fit_masked(
            design, Y, mask, alpha_b, self.alpha_, self.rank_, self.max_iter, self.tol, warn=True
        )
        self.feature_means_ = design.mean
        self.generator_means_ = fit.mu
        self.difficulty_coef_ = fit.w
        self.components_ = fit.A
        self.generator_factors_ = fit.V
        self.n_outputs_ = K
        self.generator_names_ = names
        return self

    # ------------------------------------------------------------------ prediction
    def _centred(self, X) -> np.ndarray:
        check_is_fitted(self, "generator_factors_")
        X = validate_data(self, X, reset=False, dtype=float)
        return X - self.feature_means_

    def predict(self, X) -> np.ndarray:
        """Predicted quality of every generator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, K)
            (n_samples,) when ``fit`` was given a 1-D ``y`` and no generator was added.
        """
        Xc = self._centred(X)
        Q = _Fit(self.generator_means_, self.difficulty_coef_, self.components_, self.generator_factors_).predict(Xc)
        return Q[:, 0] if getattr(self, "_y_1d", False) and Q.shape[1] == 1 else Q

    def difficulty(self, X) -> np.ndarray:
        """The prompt-difficulty term ``b(x)`` (shared by every generator), shape (n_samples,)."""
        return self._centred(X) @ self.difficulty_coef_

    def prompt_factors(self, X) -> np.ndarray:
        """The prompt factors ``u(x) = A (x − x̄)``, shape (n_samples, ``rank_``)."""
        return self._centred(X) @ self.components_.T

    def add_generator(self, X, y, *, name: str | None = None, alpha: float | None = None):
        """Add a generator not seen in training from the quality of a few rated prompts.

        The prompt side (``feature_means_``, ``difficulty_coef_``, ``components_``) stays
        frozen; the new generator's mean ``μ`` (unpenalised) and loadings ``v`` are the ridge
        solution of ``y_i − b(x_i) ≈ μ + u(x_i)·v`` with ``v`` shrunk toward the mean ``v̄`` of
        the existing loadings: penalty ``(v − v̄)ᵀ P (v − v̄)`` with ``P = alpha·I``, or by
        default ``P = noise_variance_ · Σ_v⁻¹`` (``Σ_v`` the covariance of the existing
        loadings: a Gaussian prior fitted to them). With few prompts the generator gets the
        average interaction; ``v`` approaches its least-squares value as prompts accumulate.

        Parameters
        ----------
        X : array-like of shape (m, n_features)
            Features of the rated prompts (m >= 1).
        y : array-like of shape (m,)
            The new generator's quality on them, on the scale of the training ``y``.
        name : str, optional
            Its name in ``generator_names_``; default ``str(K)``.
        alpha : float, optional
            Fixed ridge penalty instead of the fitted prior.

        Returns
        -------
        self : LowRankRegressor
            With one more column: ``generator_means_``, ``generator_factors_``,
            ``generator_names_`` and ``n_outputs_`` grow by one.
        """
        U = self.prompt_factors(X)
        z = np.asarray(y, dtype=float)
        if z.ndim != 1 or z.shape[0] != U.shape[0]:
            raise ValueError(
                f"y must be a 1-D array of the new generator's quality on the {U.shape[0]} prompts of X, "
                f"got shape {z.shape}"
            )
        if not np.all(np.isfinite(z)):
            raise ValueError("y must be finite: pass only the prompts the new generator has rated")
        name = str(self.n_outputs_) if name is None else name
        if not isinstance(name, str) or name in self.generator_names_:
            raise ValueError(f"name must be a new generator name (str), got {name!r}; taken: {self.generator_names_}")
        r = U.shape[1]
        V = self.generator_factors_
        v_bar = V.mean(axis=0) if r else np.zeros(0)
        if alpha is None:
            cov = np.atleast_2d(np.cov(V, rowvar=False, bias=True)) if r else np.zeros((0, 0))
            P = self.noise_variance_ * np.linalg.inv(cov + 1e-12 * np.eye(r))
        else:
            if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not alpha > 0:
                raise ValueError(f"alpha must be None or a positive float, got {alpha!r}")
            P = float(alpha) * np.eye(r)
        target = z - (self._centred(X) @ self.difficulty_coef_)
        Uc = U - U.mean(axis=0)
        v = np.linalg.solve(Uc.T @ Uc + P, Uc.T @ (target - target.mean()) + P @ v_bar) if r else np.zeros(0)
        mu = float(np.mean(target - U @ v))
        self.generator_means_ = np.append(self.generator_means_, mu)
        self.generator_factors_ = np.vstack([V, v[None, :]])
        self.generator_names_ = [*self.generator_names_, name]
        self.n_outputs_ += 1
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
