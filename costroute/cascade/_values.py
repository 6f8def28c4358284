"""What each next step of a cascade is worth: opening a generator, or scoring an image again.

A prompt's state is what the cascade knows: the images made (``tried``, minus ``failed``), the
score cells observed, and from them, through :class:`~costroute.cascade._posterior.QualityPosterior`,
the expected quality ``m`` of every generator's image and the *gains* of each unseen score cell
(how far observing it moves each ``m``, per standard normal). Two kinds of steps:

* **open** generator ``k`` and score its image with scorer ``s`` (a *box*, cost
  ``λ (c̃_k + c̃_s)``). Its value is the expected improvement of the best candidate,
  ``E[max(m_best', m_k')] − m_best``. The *myopic* policy opens the box of highest net value;
  the *index* policy the box of highest reservation value ``σ`` (:mod:`._index`), with spread
  ``e = |gains[k, (s, k)]|``, and only when ``σ`` exceeds ``m_best``.
* **look**: score an image already made with a scorer not yet run on it (cost ``λ c̃_s``),
  worth its value of information: the expected value, over the score's preposterior
  (Gauss-Hermite quadrature), of the best candidate after it plus the best box then, minus the
  same now. For the first image, whose alternative is to stop, the baseline is stopping.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from ._index import reservation_value
from ._posterior import QualityPosterior, expected_improvement

_NODES, _WEIGHTS = hermegauss(24)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def own_cells(K: int, M: int) -> np.ndarray:
    """``cells[k, s] = s K + k``: the score cell of scorer ``s`` on generator ``k``'s image."""
    return np.arange(M)[None, :] * K + np.arange(K)[:, None]


def _conditional_gains(post: QualityPosterior, mask: np.ndarray) -> np.ndarray:
    """Gains (K, C) of every score cell not in ``mask`` on every expected quality, given ``mask``."""
    K = post.n_generators_
    cond, _ = post._conditional(mask)
    var = np.diag(cond)[K:]
    informative = (~mask) & (var > 1e-12)
    sd = np.sqrt(np.where(informative, var, 1.0))
    return np.where(informative[None, :], cond[:K, K:] / sd[None, :], 0.0)


def box_values(
    mean: np.ndarray,
    gains: np.ndarray,
    best: np.ndarray,
    blocked: np.ndarray,
    box_costs: np.ndarray,
    lam: np.ndarray,
    policy: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The box each prompt would open next, by ``policy``: ``(k, s, net value, open?)``.

    Parameters
    ----------
    mean : (r, K) expected qualities; gains : (r, K, C); best : (r,) the best candidate;
    blocked : (r, K) generators that may not be opened; box_costs : (K, M) normalised
    ``c̃_k + c̃_s``; lam : (r,) λ per prompt; policy : ``"index"`` or ``"myopic"``.

    Returns
    -------
    k, s : (r,) ints
    net : (r,) ``E[improvement] − λ x cost`` of that box (``-inf`` when none may be opened)
    go : (r,) bool, whether the policy opens it
    """
    r, K = mean.shape
    M = box_costs.shape[1]
    idx = np.arange(r)
    cells = own_cells(K, M)  # (K, M)
    own = gains[:, np.arange(K)[:, None], cells]  # (r, K, M): gains[i, k, (s, k)]
    d = (mean - mean[idx, best][:, None])[:, :, None]  # (r, K, 1)
    spread = np.abs(own - gains[idx, best][:, cells])
    lam_costs = lam[:, None, None] * box_costs[None]
    net = expected_improvement(d, spread) - lam_costs
    net = np.where(blocked[:, :, None], -np.inf, net)
    if policy == "index":
        sigma = mean[idx, best][:, None, None] + reservation_value(d, spread, lam_costs)
        sigma = np.where(blocked[:, :, None], -np.inf, sigma)
        flat = sigma.reshape(r, K * M).argmax(axis=1)
        k, s = np.divmod(flat, M)
        go = sigma[idx, k, s] > mean[idx, best]
    else:
        flat = net.reshape(r, K * M).argmax(axis=1)
        k, s = np.divmod(flat, M)
        go = net[idx, k, s] > 0
    return k, s, net[idx, k, s], go & np.isfinite(net[idx, k, s])


def _escalation_at_nodes(
    m: np.ndarray, gains: np.ndarray, usable: np.ndarray, blocked: np.ndarray, box_costs: np.ndarray, lam: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """At quadrature nodes: the best candidate's mean and the best box's net value (myopic rule).

    ``m`` (r, G, K) means at the nodes; ``gains`` (K, C) of the cells still unseen after the
    look; ``usable`` (r, K) candidates; ``blocked`` (r, K) boxes not allowed.
    """
    K, M = box_costs.shape
    cells = own_cells(K, M)
    best = np.where(usable[:, None, :], m, -np.inf).argmax(axis=-1)  # (r, G)
    m_best = np.take_along_axis(m, best[..., None], axis=-1)  # (r, G, 1)
    own = gains[np.arange(K)[:, None], cells]  # (K, M)
    spread = np.abs(own[None, None] - gains[best][..., cells])  # (r, G, K, M)
    net = expected_improvement((m - m_best)[..., None], spread) - lam[:, None, None, None] * box_costs[None, None]
    net = np.where(blocked[:, None, :, None], -np.inf, net)
    return m_best[..., 0], net.max(axis=(-1, -2), initial=-np.inf)


def first_look_values(
    post: QualityPosterior,
    prior_mean: np.ndarray,
    first: np.ndarray,
    blocked: np.ndarray,
    box_costs: np.ndarray,
    scorer_costs: np.ndarray,
    lam: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """For prompts with one image and no score: the scorer worth running on it and its net value.

    The value of scoring image ``a`` with scorer ``s`` is the expected best escalation net
    value once the score is known (zero where none pays), integrated over the score's
    preposterior, minus ``λ c̃_s``: the alternative is to stop.

    Returns ``(s, net)``, each (r,).
    """
    K, M = box_costs.shape
    r = len(first)
    value = np.full((r, M), -np.inf)
    cov = post.covariance_
    for a in np.unique(first):
        sel = np.flatnonzero(first == a)
        for s in range(M):
            cell = s * K + a
            var = cov[K + cell, K + cell]
            if var <= 0:
                value[sel, s] = -lam[sel] * scorer_costs[s]
                continue
            h = cov[:K, K + cell] / np.sqrt(var)
            mask = np.zeros(K * M, dtype=bool)
            mask[cell] = True
            gains = _conditional_gains(post, mask)
            m = prior_mean[sel][:, None, :] + h[None, None, :] * _NODES[None, :, None]
            usable = np.zeros((sel.size, K), dtype=bool)
            usable[:, a] = True
            _, esc = _escalation_at_nodes(m, gains, usable, blocked[sel], box_costs, lam[sel])
            value[sel, s] = np.maximum(esc, 0.0) @ _WEIGHTS - lam[sel] * scorer_costs[s]
    s = value.argmax(axis=1)
    return s, value[np.arange(r), s]


def look_values(
    post: QualityPosterior,
    mean: np.ndarray,
    gains: np.ndarray,
    observed: np.ndarray,
    usable: np.ndarray,
    blocked: np.ndarray,
    box_costs: np.ndarray,
    scorer_costs: np.ndarray,
    lam: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For prompts with scores: the image and scorer best worth running again, and its net value.

    The value of observing cell ``c`` (a usable image, a scorer not yet run on it) is
    ``E[V(after)] − V(now) − λ c̃_s`` with ``V = m_best + max(0, best box net value)``.

    Returns ``(k, s, net)``, each (r,); ``net = -inf`` where no look is possible.
    """
    r, K = mean.shape
    M = box_costs.shape[1]
    cells = own_cells(K, M)
    best_k, best_s = np.zeros(r, dtype=np.intp), np.zeros(r, dtype=np.intp)
    best_net = np.full(r, -np.inf)
    # candidate cells: a usable image, a scorer not yet run on it
    open_cells = np.zeros((r, K * M), dtype=bool)
    for s in range(M):
        open_cells[:, s * K : (s + 1) * K] = usable & ~observed[:, s * K : (s + 1) * K]
    if not open_cells.any():
        return best_k, best_s, best_net
    rows_all = np.arange(r)
    best_now = np.where(usable, mean, -np.inf).argmax(axis=1)
    # V(now), with each row's own gains
    m_best_now = mean[rows_all, best_now]
    own = gains[:, np.arange(K)[:, None], cells]
    spread_now = np.abs(own - gains[rows_all, best_now][:, cells])
    net_now = (
        expected_improvement((mean - m_best_now[:, None])[:, :, None], spread_now)
        - lam[:, None, None] * box_costs[None]
    )
    net_now = np.where(blocked[:, :, None], -np.inf, net_now).max(axis=(1, 2), initial=-np.inf)
    v_now = m_best_now + np.maximum(net_now, 0.0)
    codes = np.unique(observed, axis=0, return_inverse=True)
    masks, group = codes[0], codes[1].ravel()
    for g, mask in enumerate(masks):
        rows = np.flatnonzero(group == g)
        cond, _ = post._conditional(mask)
        for c in np.flatnonzero(open_cells[rows].any(axis=0)):
            sub = rows[open_cells[rows, c]]
            var = cond[K + c, K + c]
            s = c // K
            if var <= 1e-12:
                net = -lam[sub] * scorer_costs[s]
            else:
                h = cond[:K, K + c] / np.sqrt(var)
                after = mask.copy()
                after[c] = True
                gains_after = _conditional_gains(post, after)
                m = mean[sub][:, None, :] + h[None, None, :] * _NODES[None, :, None]
                m_best, esc = _escalation_at_nodes(m, gains_after, usable[sub], blocked[sub], box_costs, lam[sub])
                v_after = (m_best + np.maximum(esc, 0.0)) @ _WEIGHTS
                net = v_after - v_now[sub] - lam[sub] * scorer_costs[s]
            better = net > best_net[sub]
            best_net[sub[better]] = net[better]
            best_k[sub[better]] = c % K
            best_s[sub[better]] = s
    return best_k, best_s, best_net
