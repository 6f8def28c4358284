"""The verify-and-escalate policy, one round at a time, for simulation and for real generation.

A run starts with the router's choice for every prompt (its image is generated). Each round
then decides, for every prompt still open, one of:

* **score the first image** -- only worth it if what the score may reveal could lead to an
  escalation that pays: the value of that information (a two-step look-ahead, integrated over
  the score's preposterior by Gauss-Hermite quadrature) must exceed ``λ x`` the scoring cost;
* **escalate** to the generator ``k`` not yet tried whose expected improvement of the best
  candidate, ``E[max(m_best', m_k')] - m_best``, minus ``λ x (c̃_k + c̃_score)`` is largest, when
  that is positive (the new image is scored);
* **stop**.

Expected qualities ``m`` and the effect of an unseen score on them come from
:class:`~costroute.cascade._posterior.QualityPosterior`; the expected improvement of two candidates
whose means move linearly with one standard normal is closed-form
(:func:`~costroute.cascade._posterior.expected_improvement`). A prompt returns its tried image with the
highest expected quality.

With a spend limit (a budget's hard guard) the round's actions are taken in decreasing order
of net value per unit cost while the batch's total spend stays within the limit; the others
stop.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from ..routing import assign_generators
from ._posterior import QualityPosterior, expected_improvement

_NODES, _WEIGHTS = hermegauss(24)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


class PolicyRun:
    """State of one cascade over a batch: what was generated and scored, and what comes next.

    Parameters
    ----------
    posterior : QualityPosterior
    predicted : ndarray (n, K)
        The router's predicted quality.
    normalized_costs : ndarray (K,)
    scoring_cost : float
        Normalised cost of scoring one image.
    cost_penalty : float
        λ; ``math.inf`` (no finite λ meets a budget) sends every prompt to the cheapest
        generator (the best predicted among equally cheap ones) and closes it unscored.
    max_images : int
        Most images generated per prompt (1: the plain router).
    spend_limit : float or None
        Hard limit on the batch's total normalised cost.
    """

    def __init__(
        self,
        posterior: QualityPosterior,
        predicted: np.ndarray,
        normalized_costs: np.ndarray,
        scoring_cost: float,
        cost_penalty: float,
        max_images: int,
        spend_limit: float | None = None,
    ):
        self.posterior = posterior
        self.predicted = np.asarray(predicted, dtype=float)
        self.costs = np.asarray(normalized_costs, dtype=float)
        self.scoring_cost = float(scoring_cost)
        self.lam = float(cost_penalty)
        self.max_images = int(max_images)
        self.spend_limit = spend_limit
        n, K = self.predicted.shape
        self.first = assign_generators(self.predicted, self.costs, self.lam)
        self.tried = np.zeros((n, K), dtype=bool)
        self.tried[np.arange(n), self.first] = True
        self.scored = np.zeros((n, K), dtype=bool)
        self.failed = np.zeros((n, K), dtype=bool)  # tried, but no image came back
        self.scores = np.full((n, K), np.nan)
        self.order: list[list[int]] = [[int(k)] for k in self.first]
        self.active = np.full(n, self.max_images > 1 and np.isfinite(self.lam))
        self.cost = self.costs[self.first].copy()

    # ------------------------------------------------------------------ decisions
    def _value_of_first_score(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Net value of scoring the (only) image of each prompt in ``rows``, and its cost."""
        post, K = self.posterior, self.costs.size
        cov = post.covariance_
        mu, _ = post.prior(self.predicted[rows])
        first = self.first[rows]
        value = np.empty(rows.size)
        step_cost = self.costs + self.scoring_cost  # (K,)
        for a in np.unique(first):
            sel = np.flatnonzero(first == a)
            var_a = cov[K + a, K + a]
            if var_a <= 0:
                value[sel] = 0.0
                continue
            h = cov[:K, K + a] / np.sqrt(var_a)  # prior gains of S_a on every E[Q_j]
            mask = np.zeros(K, dtype=bool)
            mask[a] = True
            cond, _ = post._conditional(mask)
            var = np.diag(cond)[K:]
            sd = np.sqrt(np.where(var > 0, var, 1.0))
            gains = np.where(var[None, :] > 0, cond[:K, K:] / sd[None, :], 0.0)  # (j, k)
            spread = np.abs(np.diag(gains) - gains[a])  # (k,)
            m = mu[sel][:, None, :] + h[None, None, :] * _NODES[None, :, None]  # (r, G, K)
            d = m - m[..., a : a + 1]
            net = expected_improvement(d, spread[None, None, :]) - self.lam * step_cost[None, None, :]
            net = np.where(self.tried[rows[sel]][:, None, :], -np.inf, net)  # a, and any failed fallback
            value[sel] = np.maximum(net.max(axis=-1), 0.0) @ _WEIGHTS
        return value - self.lam * self.scoring_cost, np.full(rows.size, self.scoring_cost)

    def _best_escalation(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For prompts with scored images: the best generator to try next, its net value and cost."""
        mean, gains = self.posterior.condition(self.predicted[rows], self.scored[rows], self.scores[rows])
        tried = self.tried[rows]
        best = np.where(tried & ~self.failed[rows], mean, -np.inf).argmax(axis=1)
        idx = np.arange(rows.size)
        d = mean - mean[idx, best][:, None]
        diag = np.diagonal(gains, axis1=1, axis2=2)  # gains[i, k, k]
        spread = np.abs(diag - gains[idx, best, :])
        step_cost = self.costs + self.scoring_cost
        net = expected_improvement(d, spread) - self.lam * step_cost[None, :]
        net[tried] = -np.inf
        k = net.argmax(axis=1)
        return k, net[idx, k], step_cost[k]

    def decide(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The next round: ``(score_first, escalate, to)``.

        ``score_first``: prompts whose first image is to be scored; ``escalate``: prompts that
        generate (and score) an image of generator ``to[i]``. Prompts in neither are closed.
        """
        open_rows = np.flatnonzero(self.active)
        if open_rows.size == 0:
            empty = np.zeros(0, dtype=np.intp)
            return empty, empty, empty
        unscored = ~self.scored[open_rows].any(axis=1)
        fresh, later = open_rows[unscored], open_rows[~unscored]
        v_fresh, c_fresh = self._value_of_first_score(fresh) if fresh.size else (np.zeros(0), np.zeros(0))
        n_images = (self.tried[later] & ~self.failed[later]).sum(axis=1)
        k_later, v_later, c_later = (
            self._best_escalation(later) if later.size else (np.zeros(0, np.intp), np.zeros(0), np.zeros(0))
        )
        v_later = np.where(n_images < self.max_images, v_later, -np.inf)
        rows = np.r_[fresh, later]
        value = np.r_[v_fresh, v_later]
        cost = np.r_[c_fresh, c_later]
        take = value > 0
        if self.spend_limit is not None and take.any():
            ratio = np.where(cost > 0, value / np.where(cost > 0, cost, 1.0), np.inf)
            order = np.flatnonzero(take)[np.argsort(-ratio[take], kind="stable")]
            room = self.spend_limit - self.cost.sum() + 1e-12 * max(1.0, abs(self.spend_limit))
            take[:] = False
            for j in order:  # best value per cost first; an action that does not fit is skipped, not a stop
                if cost[j] <= room:
                    take[j] = True
                    room -= cost[j]
        self.active[rows[~take]] = False
        score_first = fresh[take[: fresh.size]]
        later_take = take[fresh.size :]
        return score_first, later[later_take], k_later[later_take].astype(np.intp)

    # ------------------------------------------------------------------ outcomes
    def generated(self, rows: np.ndarray, generator: np.ndarray) -> None:
        """Record that ``rows`` generated an image with ``generator`` (one per row)."""
        self.tried[rows, generator] = True
        self.cost[rows] += self.costs[generator]
        for i, k in zip(rows.tolist(), np.asarray(generator).tolist()):
            self.order[i].append(int(k))

    def failed_image(self, rows: np.ndarray, generator: np.ndarray) -> None:
        """Record that ``rows`` tried ``generator`` and got no image: never tried again, not charged."""
        self.tried[rows, generator] = True
        self.failed[rows, generator] = True
        for i, k in zip(np.asarray(rows).tolist(), np.asarray(generator).tolist()):
            self.order[i].append(int(k))

    def first_failed(self, rows: np.ndarray) -> None:
        """The first image of ``rows`` could not be made: uncharge it and mark it failed."""
        k = self.first[rows]
        self.failed[rows, k] = True
        self.cost[rows] -= self.costs[k]

    def replace_first(self, rows: np.ndarray, generator: np.ndarray) -> None:
        """The first image of ``rows`` failed and ``generator`` made it instead (a fallback)."""
        self.first[rows] = generator
        self.generated(rows, generator)

    def close(self, rows: np.ndarray) -> None:
        """Stop ``rows``: no more scoring or escalation for them."""
        self.active[rows] = False

    def observed(self, rows: np.ndarray, generator: np.ndarray, scores: np.ndarray) -> None:
        """Record the scores of the images of ``generator`` for ``rows``."""
        scores = np.asarray(scores, dtype=float)
        if not np.isfinite(scores).all():
            raise ValueError(f"scores must be finite, got {scores[~np.isfinite(scores)][:5].tolist()}")
        self.scored[rows, generator] = True
        self.scores[rows, generator] = scores
        self.cost[rows] += self.scoring_cost

    def returned(self) -> np.ndarray:
        """The generator whose image each prompt returns: the tried one with the best expected quality.

        -1 for a prompt that got no image at all.
        """
        out = self.first.copy()
        rows = np.flatnonzero(self.scored.any(axis=1))
        if rows.size:
            mean, _ = self.posterior.condition(self.predicted[rows], self.scored[rows], self.scores[rows])
            out[rows] = np.where(self.tried[rows] & ~self.failed[rows], mean, -np.inf).argmax(axis=1)
        n = len(out)
        out[self.failed[np.arange(n), out]] = -1
        return out


def replay(run: PolicyRun, scores: np.ndarray, generator_names=None) -> PolicyRun:
    """Drive ``run`` to the end with known scores (n, K) of every generator's image.

    Only the cells the policy asks for are read; a NaN among them raises a ``ValueError``
    naming the prompt (row) and the generator (``generator_names``, else its column).
    """
    scores = np.asarray(scores, dtype=float)

    def read(rows: np.ndarray, ks: np.ndarray) -> np.ndarray:
        values = scores[rows, ks]
        missing = np.flatnonzero(np.isnan(values))
        if missing.size:
            i, k = int(rows[missing[0]]), int(ks[missing[0]])
            name = repr(generator_names[k]) if generator_names is not None else f"column {k}"
            raise ValueError(
                f"scores is NaN for prompt {i} and generator {name}, and the policy asks for that score "
                f"({missing.size} such cell(s) in this round); measure it, or leave out that prompt"
            )
        return values

    while True:
        score_first, escalate, to = run.decide()
        if score_first.size == 0 and escalate.size == 0:
            return run
        first_values = read(score_first, run.first[score_first])
        escalate_values = read(escalate, to)
        run.generated(escalate, to)
        run.observed(score_first, run.first[score_first], first_values)
        run.observed(escalate, to, escalate_values)
