"""CascadeRouter: route, generate, score the image, and escalate when another generator pays.

Routing from the prompt alone cannot see which seed gave a good image; a scorer that looks at
the image can. :class:`CascadeRouter` wraps a :class:`~costroute.CostAwareRouter` and searches the
generators like an optimal stopper (Pandora's box): each generator gets a reservation value
from its expected quality, how much a score of its image may reveal, and ``λ x`` its cost plus
the scoring cost; the cascade makes the image of highest reservation value first (the router's
choice unless a cheaper, more uncertain generator is worth trying first), scores it when what
the score may reveal is worth the scoring cost, and opens the next generator while its
reservation value exceeds the best expected quality found. ``policy="myopic"`` keeps the
earlier rule (start with the router's choice, escalate by net expected improvement). With
several scorers, each image is scored by the scorer whose information is worth its cost, and
a second opinion is bought when the decision is close. It returns the candidate with the best
expected quality. One λ (or one budget) governs every step; a useless scorer, or a λ so large
that nothing pays, leaves the plain router.

How quality depends on (the router's prediction, the image's score) per generator, and how
uncertain the router's prediction is, are learned in :meth:`CascadeRouter.fit` from *out-of-fold*
router predictions (never in-sample residuals) and the measured scores of the training images
(:mod:`costroute.cascade._posterior`). The policy itself is in :mod:`costroute.cascade._policy`.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted

from ..plan import RoutingPlan
from ..router import CostAwareRouter
from ..routing import (
    assign_generators,
    check_budget,
    check_penalty,
    lambda_grid,
)
from ._budget import penalty_for_budget
from ._outcome import CascadeOutcome
from ._policy import POLICIES, PolicyRun, replay
from ._posterior import QualityPosterior
from ._scorers import score_matrices, scorer_list, scoring_costs

__all__ = ["CascadeOutcome", "CascadeRouter"]


def _check_positive_int(value, name: str, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


class CascadeRouter(BaseEstimator):
    """Route each prompt, then verify its image with a scorer and escalate when it pays.

    Parameters
    ----------
    router : CostAwareRouter, default=None
        The ex-ante router (cloned and fitted in :meth:`fit`). ``None``: a default
        ``CostAwareRouter`` over the generators of ``y``'s columns is not possible, so a router
        is required.
    scorer : Scorer, list or dict of Scorers, or None, default=None
        The image scorer(s) used by :meth:`generate`: one, a list, or a dict name -> scorer.
        Each one's ``cost`` (in the generators' cost unit) is its scoring cost unless
        ``scoring_cost`` is given. With several, ``fit`` and ``simulate`` take one score matrix
        per scorer.
    cost_penalty : float, default=0.0
        λ >= 0, for both the first choice and every escalation.
    budget : float or None, default=None
        Target mean normalised cost per prompt, every image and every scoring included. λ is
        calibrated on the batch (the smallest λ >= ``cost_penalty`` whose expected cost under
        the fitted model meets it), and a hard guard stops escalating once the batch has spent
        ``budget x n``.
    max_steps : int or None, default=None
        Most images generated per prompt (1 is the plain router); ``None``: every generator.
    scoring_cost : float, list or dict of floats, or None, default=None
        Cost of scoring one image, in the generators' cost unit: one number, or one per scorer
        (a list in the scorers' order, or a dict by name). ``None``: each scorer's ``cost``,
        else 0.
    cv : int, default=5
        Folds for the out-of-fold router predictions that the quality model is fitted on:
        an integer >= 2 and at most the number of training prompts (in-sample predictions
        would make the router look far more certain than it is).
    n_draws : int, default=16
        Simulated scores per prompt when calibrating λ for a budget.
    random_state : int or None, default=None
        Seeds the out-of-fold split and the calibration draws.
    policy : {"index", "myopic"}, default="index"
        ``"index"``: open generators by reservation value, the first one included (Pandora's
        box; optimal when generators are independent and every image is scored);
        ``"myopic"``: start with the router's choice and escalate to the generator of largest
        net expected improvement.

    Attributes
    ----------
    router_ : CostAwareRouter
        The router fitted on all training data.
    posterior_ : QualityPosterior
        Joint model of true quality and score given the router's prediction.
    generator_names_ : ndarray of str
    normalized_costs_ : ndarray (K,)
    normalized_scoring_cost_ : float
        The first scorer's normalised scoring cost.
    normalized_scoring_costs_ : ndarray (M,)
        Normalised scoring cost per scorer.
    scorer_names_ : list of str
        The scorers' names (from ``scorer``, or ``scores``' keys; ``"scorer"`` for one unnamed
        one).

    Examples
    --------
    >>> import numpy as np
    >>> from costroute import CascadeRouter, CostAwareRouter
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2)); Q = rng.normal(size=(200, 2)) + [0.0, 0.5]
    >>> S = Q + 0.3 * rng.normal(size=Q.shape)          # a scorer that sees the image
    >>> router = CostAwareRouter({"cheap": 1.0, "big": 10.0}, features=None, quality_model="ridge")
    >>> cascade = CascadeRouter(router, cost_penalty=0.3, scoring_cost=0.5, random_state=0).fit(X, Q, scores=S)
    >>> outcome = cascade.simulate(X, Q, S)
    >>> bool(outcome.mean_quality > router.fit(X, Q).routing_outcome(X, Q)[0])
    True
    """

    def __init__(
        self,
        router=None,
        scorer=None,
        cost_penalty=0.0,
        budget=None,
        max_steps=None,
        scoring_cost=None,
        cv=5,
        n_draws=16,
        random_state=None,
        policy="index",
    ):
        self.router = router
        self.scorer = scorer
        self.cost_penalty = cost_penalty
        self.budget = budget
        self.max_steps = max_steps
        self.scoring_cost = scoring_cost
        self.cv = cv
        self.n_draws = n_draws
        self.random_state = random_state
        self.policy = policy

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, scores=None):
        """Fit the router, its out-of-fold predictions, and the quality/score model.

        Parameters
        ----------
        X : prompts (as for :meth:`CostAwareRouter.fit`)
        y : array (n, K) or DataFrame
            Measured quality of each generator's training image; NaN where no image was made,
            when the router's quality model fits missing cells (``quality_model="lowrank"``).
        scores : array (n, K) or DataFrame, or a list or dict of them
            The scorer's score of the same images (same rules as ``y``); with several scorers,
            one matrix per scorer, in the scorers' order or by name. NaN marks an image not
            made or not scored (any router). With NaN in ``y`` or ``scores`` the quality/score
            model is fitted on pairwise-complete rows
            (:func:`~costroute.cascade._posterior.pairwise_covariance`); every generator's
            quality and every scorer's score of every generator needs at least 2 measured
            prompts.

        Returns
        -------
        self
        """
        if self.router is None:
            raise ValueError(
                "router is required: pass a CostAwareRouter, e.g. CascadeRouter(CostAwareRouter(generators))"
            )
        if not isinstance(self.router, CostAwareRouter):
            raise TypeError(f"router must be a CostAwareRouter, got {type(self.router).__name__}")
        if scores is None:
            raise ValueError("scores is required: the (n, K) scores of the training images, e.g. fit(X, y, scores=S)")
        check_penalty(self.cost_penalty)
        check_budget(self.budget)
        _check_positive_int(self.max_steps, "max_steps")
        if isinstance(self.cv, bool) or not isinstance(self.cv, numbers.Integral) or self.cv < 2:
            raise ValueError(
                f"cv must be an int >= 2 (folds of out-of-fold router predictions; in-sample ones make the "
                f"router look far more certain than it is), got cv={self.cv!r}"
            )
        cv = int(self.cv)
        _check_positive_int(self.n_draws, "n_draws", allow_none=False)
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {self.policy!r}")
        names, scorers = scorer_list(self.scorer)
        self.router_ = clone(self.router).fit(X, y)
        prompts = self.router_._check_X(X, reset=False)
        n = len(prompts)
        if cv > n:
            raise ValueError(f"cv={cv} folds need at least {cv} training prompts, got {n}; lower cv (>= 2)")
        Y = self.router_._check_y(y, n, allow_nan=True)  # NaN only gets here when the router fitted it
        score_names, matrices = score_matrices(scores, names)
        if names is not None and len(names) != len(matrices):
            raise ValueError(f"scores has {len(matrices)} matrices for {len(names)} scorers {names}")
        names = (
            names or score_names or (["scorer"] if len(matrices) == 1 else [f"scorer{i}" for i in range(len(matrices))])
        )
        S = np.stack([self._check_scores(m, n, allow_nan=True) for m in matrices], axis=2)
        self._check_coverage(Y, S, names)
        self.scorer_names_ = names
        self.generator_names_ = self.router_.generator_names_
        self.normalized_costs_ = self.router_.normalized_costs_
        unit = self.router_.generators_.cost_unit
        self.normalized_scoring_costs_ = scoring_costs(self.scoring_cost, scorers, names, unit) / float(
            np.max(self.router_.costs_)
        )
        self.normalized_scoring_cost_ = float(self.normalized_scoring_costs_[0])
        oof = self._out_of_fold(prompts, y, n, cv)
        self.posterior_ = QualityPosterior().fit(oof, Y, S)
        return self

    def _check_coverage(self, Y: np.ndarray, S: np.ndarray, names: list[str]) -> None:
        """Every generator's quality and every (scorer, generator) score measured on at least 2 prompts."""
        generators = [str(g) for g in self.router_.generator_names_]
        few = [f"quality of {g!r}" for g, c in zip(generators, (~np.isnan(Y)).sum(axis=0)) if c < 2]
        counts = (~np.isnan(S)).sum(axis=0)  # (K, M)
        few += [
            f"{names[m]!r} scores of {g!r}"
            for m in range(S.shape[2])
            for g, c in zip(generators, counts[:, m])
            if c < 2
        ]
        if few:
            raise ValueError(
                f"the cascade's model of quality and scores needs every generator's quality and every scorer's "
                f"score of every generator measured on at least 2 training prompts; measured on fewer: "
                f"{', '.join(few)}. Measure more prompts with them (NaN marks a cell not measured)"
            )

    def _score_cube(self, scores, n: int) -> np.ndarray:
        """Scores for ``simulate``: (n, K, M) from one matrix, a list or a dict (NaN allowed)."""
        _, matrices = score_matrices(scores, list(self.scorer_names_))
        if len(matrices) != len(self.scorer_names_):
            raise ValueError(
                f"scores has {len(matrices)} matrices but the cascade was fitted with {len(self.scorer_names_)} "
                f"scorers {self.scorer_names_}"
            )
        return np.stack([self._check_scores(m, n, allow_nan=True) for m in matrices], axis=2)

    def _check_scores(self, scores, n: int, allow_nan: bool = False) -> np.ndarray:
        try:
            return self.router_._check_y(scores, n, allow_nan=allow_nan)
        except ValueError as exc:
            raise ValueError(str(exc).replace("y ", "scores ", 1).replace("y must", "scores must", 1)) from None

    def _out_of_fold(self, prompts, y, n: int, folds: int) -> np.ndarray:
        oof = np.empty((n, len(self.generator_names_)))
        take = (
            (lambda obj, idx: obj.iloc[idx]) if isinstance(y, pd.DataFrame) else (lambda obj, idx: np.asarray(obj)[idx])
        )
        split = KFold(folds, shuffle=True, random_state=self.random_state).split(np.arange(n))
        for fold, (train, test) in enumerate(split):
            with warnings.catch_warnings():  # the router fitted on all the data has said it already
                warnings.filterwarnings(
                    "ignore", message="quality_model k-nearest neighbours with k=", category=UserWarning
                )
                try:
                    router = clone(self.router).fit(_subset(prompts, train), take(y, train))
                except ValueError as exc:  # a sparse y: a fold may lack a generator's measured cells
                    raise ValueError(
                        f"the router fitted on training fold {fold + 1} of cv={folds} (for the out-of-fold "
                        f"predictions) failed: {exc}. Lower cv, or measure more prompts with that generator"
                    ) from exc
            oof[test] = router.predict_quality(_subset(prompts, test))
        return oof

    # ------------------------------------------------------------------ policy
    def _max_images(self) -> int:
        K = len(self.generator_names_)
        return K if self.max_steps is None else min(int(self.max_steps), K)

    def _run(self, predicted: np.ndarray, lam, spend_limit=None) -> PolicyRun:
        return PolicyRun(
            self.posterior_,
            predicted,
            self.normalized_costs_,
            getattr(self, "normalized_scoring_costs_", np.array([self.normalized_scoring_cost_])),
            lam,
            self._max_images(),
            spend_limit,
            policy=getattr(self, "policy", "myopic"),
        )

    def expected_cost(self, predicted: np.ndarray, cost_penalty: float) -> float:
        """Mean normalised cost per prompt under the fitted model, at ``cost_penalty``.

        Scores are drawn ``n_draws`` times per prompt from the model (the same draws for every
        λ), and the policy is replayed on them without a spend limit.
        """
        check_is_fitted(self, "posterior_")
        predicted = np.asarray(predicted, dtype=float)
        tiled = np.repeat(predicted, int(self.n_draws), axis=0)
        draws = self.posterior_.sample_scores(tiled, np.random.default_rng(self.random_state))
        return float(replay(self._run(tiled, cost_penalty), draws).cost.mean())

    def penalty_for_budget(self, predicted: np.ndarray, budget: float, floor: float = 0.0) -> float:
        """Smallest λ >= ``floor`` whose expected mean cost under the fitted model meets ``budget``.

        See :func:`costroute.cascade._budget.penalty_for_budget`: exact bisection on simulated
        scores for small batches, and for large ones a vectorised search on a sample of the
        batch checked on the whole batch. A budget below the cheapest generator's cost cannot
        be met by any finite λ: the result is then ``math.inf``, under which every prompt goes
        to the cheapest generator, unscored, with a :class:`~costroute.BudgetWarning`.
        """
        check_is_fitted(self, "posterior_")
        return penalty_for_budget(self, np.asarray(predicted, dtype=float), budget, floor)

    def _resolve(self, predicted: np.ndarray, cost_penalty, budget) -> tuple[float, float | None]:
        lam = check_penalty(self.cost_penalty if cost_penalty is None else cost_penalty)
        budget = check_budget(self.budget if budget is None else budget)
        if budget is not None:
            lam = self.penalty_for_budget(predicted, budget, floor=lam)
        return lam, budget

    def simulate(self, X, y=None, scores=None, *, cost_penalty=None, budget=None) -> CascadeOutcome:
        """Replay the policy offline on measured matrices.

        Parameters
        ----------
        X : prompts
        y : array (n, K) or DataFrame, optional
            True quality of every generator's image (for ``outcome.quality``); NaN is
            allowed in cells of images the cascade does not return.
        scores : array (n, K) or DataFrame
            The score each generator's image would get; only the cells the policy asks for are
            read, so cells it never reads may be NaN (unmeasured). Infinite values are refused.
        cost_penalty, budget : float, optional
            Override the estimator's parameters for this call.

        Returns
        -------
        CascadeOutcome

        Raises
        ------
        ValueError
            When the policy asks for a score that is NaN (the message names the prompt and the
            generator), when ``y`` is NaN at a returned image, and on bad ``X``, ``y`` or
            ``scores`` (same rules as :meth:`fit`).
        """
        check_is_fitted(self, "posterior_")
        prompts = self.router_._check_X(X, reset=False)
        if scores is None:
            raise ValueError("scores is required: the (n, K) scores of every generator's image for these prompts")
        S = self._score_cube(scores, len(prompts))
        Y = None if y is None else self.router_._check_y(y, len(prompts), allow_nan=True)
        outcome = self.simulate_predicted(
            self.router_.predict_quality(prompts), Y, S, cost_penalty=cost_penalty, budget=budget
        )
        if Y is not None and np.isnan(outcome.quality).any():
            rows = np.flatnonzero(np.isnan(outcome.quality))
            shown = ", ".join(f"prompt {i} -> {outcome.returned[i]!r}" for i in rows[:3])
            raise ValueError(
                f"y is NaN at the image the cascade returns for {rows.size} of {len(Y)} prompt(s) "
                f"({shown}{', ...' if rows.size > 3 else ''}); pass the measured quality of every image it may "
                "return, or y=None"
            )
        return outcome

    def simulate_predicted(self, predicted, y, scores, *, cost_penalty=None, budget=None) -> CascadeOutcome:
        """:meth:`simulate` from the router's predicted quality (n, K) instead of prompts.

        Lets an evaluation sweep λ without predicting again. ``scores`` may hold NaN in cells
        the policy does not read.
        """
        check_is_fitted(self, "posterior_")
        predicted = np.asarray(predicted, dtype=float)
        lam, budget = self._resolve(predicted, cost_penalty, budget)
        limit = None if budget is None else budget * len(predicted)
        run = replay(
            self._run(predicted, lam, limit),
            scores,
            generator_names=[str(g) for g in self.generator_names_],
            scorer_names=list(getattr(self, "scorer_names_", ["scorer"])),
        )
        return self._outcome(run, None if y is None else np.asarray(y, dtype=float), lam, budget)

    def default_lambdas(self, predicted, n: int = 32, exact: bool = True) -> np.ndarray:
        """A λ grid for a cascade's deferral curve.

        0, then ``n - 1`` values spaced geometrically from a thousandth to ten times the λ at
        which the router sends every prompt to the cheapest generator (escalations to cheap
        generators still pay somewhat beyond it), and, with ``exact=True``, every exact
        breakpoint of the router's routing (:func:`~costroute.routing.lambda_grid`), so that the
        curve visits each first choice the router can make.
        """
        top = float(lambda_grid(predicted, self.normalized_costs_, n=2)[-1])
        if top <= 0:
            top = float(np.std(predicted)) or 1.0
        grid = np.r_[0.0, np.geomspace(top * 1e-3, top * 10.0, int(n) - 1)]
        if exact:
            grid = np.union1d(grid, lambda_grid(predicted, self.normalized_costs_, n=None))
        return grid

    def deferral_points(self, X, y, scores, lambdas=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Operating points ``(lambdas, mean cost, mean true quality)`` of the cascade on a batch.

        Costs are total normalised costs per prompt (every image and every scoring), so they can
        exceed 1. ``lambdas`` defaults to :meth:`default_lambdas`; the router predicts once.
        """
        check_is_fitted(self, "posterior_")
        prompts = self.router_._check_X(X, reset=False)
        Y = self.router_._check_y(y, len(prompts))
        S = self._score_cube(scores, len(prompts))
        predicted = self.router_.predict_quality(prompts)
        lams = self.default_lambdas(predicted) if lambdas is None else np.asarray(lambdas, dtype=float)
        points = [self.simulate_predicted(predicted, Y, S, cost_penalty=float(lam)) for lam in lams]
        return lams, np.array([p.mean_cost for p in points]), np.array([p.mean_quality for p in points])

    def first_choices(self, X, *, cost_penalty=None, budget=None):
        """The generator each prompt starts with, as a :class:`~costroute.RoutingPlan`.

        At the cascade's λ (``cost_penalty``, raised for a ``budget`` as :meth:`generate` does;
        the budget counts the expected escalations and scorings too): the router's choice under
        ``policy="myopic"``, the generator of highest reservation value under ``"index"``. What
        :meth:`generate` then escalates to depends on the scores of the images.

        Parameters
        ----------
        X : prompts
        cost_penalty, budget : float, optional
            Override the estimator's parameters for this call.

        Returns
        -------
        RoutingPlan
        """
        check_is_fitted(self, "posterior_")
        prompts = self.router_._check_X(X, reset=False)
        predicted = self.router_.predict_quality(prompts)
        lam, budget = self._resolve(predicted, cost_penalty, budget)
        assign_generators(predicted, self.normalized_costs_, lam, generator_names=self.generator_names_)  # validates
        first = self._run(predicted, lam).first
        return RoutingPlan(prompts, first, self.router_.generators_, predicted, lam, budget)

    def generate(
        self,
        X,
        *,
        seed: int = 0,
        batch_size: int = 8,
        progress: bool = True,
        on_error: str = "fallback",
        cost_penalty=None,
        budget=None,
    ):
        """Run the cascade for real: generate, score, escalate, and return the best candidates.

        Each round batches its prompts per generator (through the generators' batch runners)
        and scores its images in batches with ``scorer``. The image of generator ``g`` for
        prompt ``i`` is seeded from ``(seed, i, g)``
        (:func:`~costroute.execution.candidate_seed`), so the same image comes back whatever
        else the cascade did. Errors and fallbacks follow :meth:`RoutingPlan.generate
        <costroute.RoutingPlan.generate>`: a failed first image falls back to the next generator
        by utility, a failed escalation is not a candidate, ``on_error="raise"`` stops at the
        first failure with a :class:`~costroute.execution.GenerationError`, and any exception
        that escapes (``KeyboardInterrupt`` included) carries ``.result`` with everything made.

        Parameters
        ----------
        X : prompts
        seed : int, default=0
        batch_size : int, default=8
            Largest batch sent to a generator or to the scorer.
        progress : bool, default=True
            A tqdm bar (stderr) counting images.
        on_error : {"fallback", "raise"}, default="fallback"
        cost_penalty, budget : float, optional
            Override the estimator's parameters for this call. With a budget, no score and no
            escalation takes the batch's spend past ``budget x n`` (normalised); a fallback
            for a failed first image is still made, so that every prompt gets an image.

        Returns
        -------
        costroute.execution.CascadeResult
            The returned images in prompt order, every candidate and score, the cost spent.
        """
        from ..execution import generate_cascade
        from ..execution._plan import _check_args

        check_is_fitted(self, "posterior_")
        _check_args(seed, batch_size, on_error)
        if self.scorer is None:
            raise ValueError("generate needs a scorer: CascadeRouter(router, scorer=CLIPScorer(...))")
        names, scorers = scorer_list(self.scorer)
        fitted_names = list(getattr(self, "scorer_names_", names))
        if len(names) != len(fitted_names):
            raise ValueError(
                f"scorer holds {len(names)} scorer(s) {names} but the cascade was fitted with {len(fitted_names)}: "
                f"{fitted_names}"
            )
        prompts = self.router_._check_X(X, reset=False)
        predicted = self.router_.predict_quality(prompts)
        lam, budget = self._resolve(predicted, cost_penalty, budget)
        limit = None if budget is None else budget * len(prompts)
        run = self._run(predicted, lam, limit)
        return generate_cascade(
            run,
            list(prompts),
            self.router_.generators_,
            scorers,
            seed=seed,
            batch_size=batch_size,
            progress=progress,
            on_error=on_error,
            budget=budget,
            scorer_names=names,
        )

    def _outcome(self, run: PolicyRun, Y, lam: float, budget) -> CascadeOutcome:
        names = [str(s) for s in self.generator_names_]
        ret = run.returned()
        rows = np.arange(len(ret))
        by = run.scored_by()
        return CascadeOutcome(
            generator_names=names,
            order=[tuple(names[k] for k in o) for o in run.order],
            returned=np.asarray([names[k] for k in ret], dtype=object),
            returned_index=ret,
            scored=run.scored.copy(),
            cost=run.cost.copy(),
            quality=None if Y is None else Y[rows, ret],
            cost_penalty=lam,
            budget=budget,
            scorer_names=list(getattr(self, "scorer_names_", ["scorer"])),
            scored_by=by,
            scoring_cost=(by * run.scorer_costs[None, None, :]).sum(axis=(1, 2)),
        )


def _subset(prompts, idx: np.ndarray):
    if isinstance(prompts, np.ndarray):
        return prompts[idx]
    return [prompts[i] for i in idx]
