"""The verify-and-escalate policy, one round at a time, for simulation and for real generation.

A run starts with one image per prompt. Each round then decides, for every prompt still open,
one of:

* **look**: score an image already made with a scorer not yet run on it -- for the first
  image, only if what the score may reveal could lead to an escalation that pays (its value of
  information, integrated over the score's preposterior, must exceed ``λ x`` the scoring cost);
  with several scorers, also a second opinion on any image made, when it is worth its cost;
* **open** another generator ``k``: make its image and score it with scorer ``s``;
* **stop**.

Two policies choose what to open, and the first image (:mod:`costroute.cascade._values`):

* ``"index"`` (Pandora's box, Weitzman 1979): each (generator, scorer) pair gets a reservation
  value ``σ`` from its expected quality, the spread of its preposterior and its cost
  (:func:`~costroute.cascade._index.reservation_value`); the first image is the pair of highest
  ``σ`` (the router's choice on ties, and wherever the image of highest ``σ`` would not be worth
  scoring once made), and a prompt opens the unopened pair of highest ``σ``
  while that ``σ`` exceeds the best expected quality found. The indices are recomputed after
  every score, so correlated generators are conditioned on what was seen.
* ``"myopic"``: the first image is the router's choice, and a prompt opens the pair whose
  expected improvement of the best candidate minus ``λ x`` its cost is largest, while positive.

Expected qualities and the effect of an unseen score on them come from
:class:`~costroute.cascade._posterior.QualityPosterior`. A prompt returns its image with the
highest expected quality. With a spend limit (a budget's hard guard) the round's actions are
taken in decreasing order of net value per unit cost while the batch's total spend stays within
the limit; the others stop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..routing import assign_generators
from ._index import reservation_value
from ._posterior import QualityPosterior
from ._values import box_values, first_look_values, look_values, own_cells

#: The policies :class:`PolicyRun` knows.
POLICIES = ("index", "myopic")


@dataclass(frozen=True)
class Round:
    """One round's actions. ``look_*``: score image ``look_generators[j]`` of prompt
    ``look_rows[j]`` with scorer ``look_scorers[j]``; ``open_*``: make generator
    ``open_generators[j]``'s image for prompt ``open_rows[j]`` and score it with
    ``open_scorers[j]``."""

    look_rows: np.ndarray
    look_generators: np.ndarray
    look_scorers: np.ndarray
    open_rows: np.ndarray
    open_generators: np.ndarray
    open_scorers: np.ndarray

    @property
    def empty(self) -> bool:
        return self.look_rows.size == 0 and self.open_rows.size == 0


def _empty_round() -> Round:
    e = np.zeros(0, dtype=np.intp)
    return Round(e, e, e, e, e, e)


class PolicyRun:
    """State of one cascade over a batch: what was generated and scored, and what comes next.

    Parameters
    ----------
    posterior : QualityPosterior
    predicted : ndarray (n, K)
        The router's predicted quality.
    normalized_costs : ndarray (K,)
    scoring_cost : float or ndarray (M,)
        Normalised cost of scoring one image, per scorer.
    cost_penalty : float or ndarray (n,)
        λ, one for the batch or one per prompt (a budget's calibration replays several λ at
        once); ``math.inf`` (no finite λ meets a budget) sends a prompt to the cheapest
        generator (the best predicted among equally cheap ones) and closes it unscored.
    max_images : int
        Most images generated per prompt (1: the plain router).
    spend_limit : float, ndarray (n,) or None
        Hard limit on the batch's total normalised cost (a float), or on each prompt's own
        (an array: a prompt takes no action that would take its cost past its limit; the
        first image is not limited, the caller chooses it to fit).
    policy : {"index", "myopic"}
    """

    def __init__(
        self,
        posterior: QualityPosterior,
        predicted: np.ndarray,
        normalized_costs: np.ndarray,
        scoring_cost,
        cost_penalty: float,
        max_images: int,
        spend_limit: float | np.ndarray | None = None,
        policy: str = "index",
    ):
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
        self.posterior = posterior
        self.predicted = np.asarray(predicted, dtype=float)
        self.costs = np.asarray(normalized_costs, dtype=float)
        self.scorer_costs = np.atleast_1d(np.asarray(scoring_cost, dtype=float))
        n, K = self.predicted.shape
        self.lams = np.broadcast_to(np.asarray(cost_penalty, dtype=float), (n,)).copy()
        #: the batch's λ (NaN when prompts have different ones)
        self.lam = float(cost_penalty) if np.ndim(cost_penalty) == 0 else float("nan")
        self.max_images = int(max_images)
        self.spend_limit = spend_limit
        self.policy = policy
        M = self.scorer_costs.size
        if posterior.scorers != M:
            raise ValueError(f"the posterior models {posterior.scorers} scorer(s) but {M} scoring cost(s) were given")
        self.n_scorers = M
        self.box_costs = self.costs[:, None] + self.scorer_costs[None, :]  # (K, M)
        self.first = self._first_choice()
        self.tried = np.zeros((n, K), dtype=bool)
        self.tried[np.arange(n), self.first] = True
        self.failed = np.zeros((n, K), dtype=bool)  # tried, but no image came back
        self.observed_cells = np.zeros((n, K * M), dtype=bool)
        self.score_cells = np.full((n, K * M), np.nan)
        self.order: list[list[int]] = [[int(k)] for k in self.first]
        self.active = (self.max_images > 1) & np.isfinite(self.lams)
        self.cost = self.costs[self.first].copy()

    @property
    def scoring_cost(self) -> float:
        """The scoring cost of the first scorer (the only one, usually)."""
        return float(self.scorer_costs[0])

    @property
    def scored(self) -> np.ndarray:
        """(n, K): which images were scored by any scorer."""
        n, K = self.tried.shape
        return self.observed_cells.reshape(n, self.n_scorers, K).any(axis=1)

    @property
    def scores(self) -> np.ndarray:
        """(n, K): the first scorer's scores (NaN where it did not run)."""
        return self.score_cells[:, : self.tried.shape[1]]

    def scored_by(self) -> np.ndarray:
        """(n, K, M): which scorer ran on which image."""
        n, K = self.tried.shape
        return self.observed_cells.reshape(n, self.n_scorers, K).transpose(0, 2, 1).copy()

    def _first_choice(self) -> np.ndarray:
        """The router's choice, or under the index policy the generator of highest reservation value."""
        n, K = self.predicted.shape
        router = np.zeros(n, dtype=np.intp)
        for lam in np.unique(self.lams):
            rows = np.flatnonzero(self.lams == lam)
            router[rows] = assign_generators(self.predicted[rows], self.costs, float(lam))
        if self.policy != "index" or self.max_images < 2 or n == 0:
            return router
        M = self.n_scorers
        cov = self.posterior.covariance_
        cells = own_cells(K, M)
        var = np.diag(cov)[K + cells]  # (K, M)
        spread = np.where(
            var > 1e-12, np.abs(cov[np.arange(K)[:, None], K + cells]) / np.sqrt(np.maximum(var, 1e-300)), 0.0
        )
        finite = np.isfinite(self.lams)
        lam = np.where(finite, self.lams, 0.0)
        sigma = reservation_value(self.predicted[:, :, None], spread[None], lam[:, None, None] * self.box_costs[None])
        sigma = sigma.max(axis=2)
        top = sigma.max(axis=1)
        at_router = sigma[np.arange(n), router]
        tie = at_router >= top - 1e-12 * np.maximum(1.0, np.abs(np.where(np.isfinite(top), top, 0.0)))
        first = np.where(tie | ~finite, router, sigma.argmax(axis=1)).astype(np.intp)
        # an image chosen for what its score may reveal is only worth starting with if it will be scored
        moved = np.flatnonzero(first != router)
        if moved.size:
            blocked = np.zeros((moved.size, K), dtype=bool)
            blocked[np.arange(moved.size), first[moved]] = True
            _, value = first_look_values(
                self.posterior,
                self.predicted[moved],
                first[moved],
                blocked,
                self.box_costs,
                self.scorer_costs,
                self.lams[moved],
            )
            first[moved[value <= 0]] = router[moved[value <= 0]]
        return first

    # ------------------------------------------------------------------ decisions
    def decide(self) -> Round:
        """The next round's actions; prompts given none are closed."""
        open_rows = np.flatnonzero(self.active)
        if open_rows.size == 0:
            return _empty_round()
        n, K = self.tried.shape
        M = self.n_scorers
        unscored = ~self.observed_cells[open_rows].any(axis=1)
        fresh, later = open_rows[unscored], open_rows[~unscored]
        usable = self.tried & ~self.failed
        can_open = usable.sum(axis=1) < self.max_images
        # fresh prompts: score the first image, or stop
        f_scorer, f_value = (
            first_look_values(
                self.posterior,
                self.predicted[fresh],
                self.first[fresh],
                self.tried[fresh] | ~can_open[fresh, None],
                self.box_costs,
                self.scorer_costs,
                self.lams[fresh],
            )
            if fresh.size
            else (np.zeros(0, np.intp), np.zeros(0))
        )
        # prompts with scores: a second opinion, else open the next box, else stop
        kind = np.zeros(later.size, dtype=np.intp)  # 0 stop, 1 look, 2 open
        l_k = np.zeros(later.size, dtype=np.intp)
        l_s = np.zeros(later.size, dtype=np.intp)
        l_value = np.zeros(later.size)
        l_cost = np.zeros(later.size)
        if later.size:
            mean, gains = self.posterior.condition(
                self.predicted[later], self.observed_cells[later], self.score_cells[later]
            )
            use = usable[later]
            best = np.where(use, mean, -np.inf).argmax(axis=1)
            blocked = self.tried[later] | ~can_open[later, None]
            bk, bs, b_net, b_go = box_values(mean, gains, best, blocked, self.box_costs, self.lams[later], self.policy)
            if M > 1:
                lk, ls, look_net = look_values(
                    self.posterior,
                    mean,
                    gains,
                    self.observed_cells[later],
                    use,
                    blocked,
                    self.box_costs,
                    self.scorer_costs,
                    self.lams[later],
                )
            else:
                lk, ls, look_net = bk, bs, np.full(later.size, -np.inf)
            look = look_net > 0
            go = ~look & b_go
            kind[look], kind[go] = 1, 2
            l_k = np.where(look, lk, bk)
            l_s = np.where(look, ls, bs)
            l_value = np.where(look, look_net, b_net)
            l_cost = np.where(look, self.scorer_costs[ls], self.box_costs[bk, bs])
        rows = np.r_[fresh, later]
        value = np.r_[f_value, l_value]
        cost = np.r_[self.scorer_costs[f_scorer], l_cost]
        take = np.r_[f_value > 0, kind > 0]
        if self.spend_limit is not None and np.ndim(self.spend_limit) == 1 and take.any():
            # a limit per prompt: an action that does not fit its prompt's limit is not taken
            limits = np.asarray(self.spend_limit, dtype=float)[rows]
            take &= cost <= limits - self.cost[rows] + 1e-12 * np.maximum(1.0, np.abs(limits))
        elif self.spend_limit is not None and take.any():
            ratio = np.where(cost > 0, value / np.where(cost > 0, cost, 1.0), np.inf)
            order = np.flatnonzero(take)[np.argsort(-ratio[take], kind="stable")]
            room = self.spend_limit - self.cost.sum() + 1e-12 * max(1.0, abs(self.spend_limit))
            take[:] = False
            for j in order:  # best value per cost first; an action that does not fit is skipped, not a stop
                if cost[j] <= room:
                    take[j] = True
                    room -= cost[j]
        self.active[rows[~take]] = False
        f_take, l_take = take[: fresh.size], take[fresh.size :]
        looks = l_take & (kind == 1)
        opens = l_take & (kind == 2)
        return Round(
            look_rows=np.r_[fresh[f_take], later[looks]].astype(np.intp),
            look_generators=np.r_[self.first[fresh[f_take]], l_k[looks]].astype(np.intp),
            look_scorers=np.r_[f_scorer[f_take], l_s[looks]].astype(np.intp),
            open_rows=later[opens].astype(np.intp),
            open_generators=l_k[opens].astype(np.intp),
            open_scorers=l_s[opens].astype(np.intp),
        )

    # ------------------------------------------------------------------ outcomes
    def generated(self, rows: np.ndarray, generator: np.ndarray) -> None:
        """Record that ``rows`` generated an image with ``generator`` (one per row)."""
        self.tried[rows, generator] = True
        self.cost[rows] += self.costs[generator]
        for i, k in zip(np.asarray(rows).tolist(), np.asarray(generator).tolist()):
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

    def observed(self, rows: np.ndarray, generator: np.ndarray, scores: np.ndarray, scorer=0) -> None:
        """Record scorer ``scorer``'s scores (one per row, or one scorer for all) of ``generator``'s images."""
        scores = np.asarray(scores, dtype=float)
        if not np.isfinite(scores).all():
            raise ValueError(f"scores must be finite, got {scores[~np.isfinite(scores)][:5].tolist()}")
        scorer = np.broadcast_to(np.asarray(scorer, dtype=np.intp), np.shape(rows))
        cells = scorer * self.tried.shape[1] + np.asarray(generator, dtype=np.intp)
        self.observed_cells[rows, cells] = True
        self.score_cells[rows, cells] = scores
        self.cost[rows] += self.scorer_costs[scorer]

    def returned(self) -> np.ndarray:
        """The generator whose image each prompt returns: the tried one with the best expected quality.

        -1 for a prompt that got no image at all.
        """
        out = self.first.copy()
        rows = np.flatnonzero(self.observed_cells.any(axis=1))
        if rows.size:
            mean, _ = self.posterior.condition(self.predicted[rows], self.observed_cells[rows], self.score_cells[rows])
            out[rows] = np.where(self.tried[rows] & ~self.failed[rows], mean, -np.inf).argmax(axis=1)
        n = len(out)
        out[self.failed[np.arange(n), out]] = -1
        return out


def as_cells(scores, n_generators: int) -> np.ndarray:
    """Scores (n, K), (n, K, M) or a list of M (n, K) matrices as score cells (n, M K)."""
    if isinstance(scores, (list, tuple)):
        scores = np.stack([np.asarray(s, dtype=float) for s in scores], axis=2)
    scores = np.asarray(scores, dtype=float)
    if scores.ndim == 2:
        return scores
    n, K, M = scores.shape
    return scores.transpose(0, 2, 1).reshape(n, M * K)


def replay(run: PolicyRun, scores, generator_names=None, scorer_names=None) -> PolicyRun:
    """Drive ``run`` to the end with known scores of every generator's image.

    ``scores``: (n, K) for one scorer, (n, K, M) or a list of M (n, K) matrices for several.
    Only the cells the policy asks for are read; a NaN among them raises a ``ValueError``
    naming the prompt (row), the generator (``generator_names``, else its column) and, with
    several scorers, the scorer.
    """
    K = run.tried.shape[1]
    cells = as_cells(scores, K)

    def read(rows: np.ndarray, ks: np.ndarray, ss: np.ndarray) -> np.ndarray:
        values = cells[rows, ss * K + ks]
        missing = np.flatnonzero(np.isnan(values))
        if missing.size:
            i, k, s = int(rows[missing[0]]), int(ks[missing[0]]), int(ss[missing[0]])
            name = repr(generator_names[k]) if generator_names is not None else f"column {k}"
            by = ""
            if run.n_scorers > 1:
                by = f" by scorer {scorer_names[s]!r}" if scorer_names is not None else f" by scorer {s}"
            raise ValueError(
                f"scores is NaN for prompt {i} and generator {name}{by}, and the policy asks for that score "
                f"({missing.size} such cell(s) in this round); measure it, or leave out that prompt"
            )
        return values

    while True:
        step = run.decide()
        if step.empty:
            return run
        look_values_ = read(step.look_rows, step.look_generators, step.look_scorers)
        open_values = read(step.open_rows, step.open_generators, step.open_scorers)
        run.generated(step.open_rows, step.open_generators)
        run.observed(step.look_rows, step.look_generators, look_values_, step.look_scorers)
        run.observed(step.open_rows, step.open_generators, open_values, step.open_scorers)
