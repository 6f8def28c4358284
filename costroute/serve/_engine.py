"""The worker thread's side of the server: :class:`Engine` decides, makes, charges and stores each batch.

A batch is a list of jobs the batcher collected; the engine answers all of them together:

1. predict the quality of every prompt of the batch at once;
2. decide each image: its λ (the request's, the budget window's, or the server's), its
   generator (the routing rule; the request's ``model``; a uniformly drawn one for a share
   ``explore`` of routed images), and, with a budget, the hard guard's check;
3. make the images: per generator in one pipeline call for up to ``max_batch_size`` images
   (:func:`~costroute.serve._making.make_images`), scored in batches; a cascade's routed images
   go through :func:`~costroute.execution.generate_cascade`, each with its own seed and limit;
4. charge every image (generation, escalations, scoring) to the budget window, write every
   image made and every score to the store in one transaction, update the metrics.

A ``/v1/route`` job makes no image: its decisions are taken in step 2, one prompt after
another, and with a budget each is charged to the window at once at its predicted cost (a
router's generator and scoring, a cascade's expected cost), so that routes and images share
one window.

Everything here runs in one thread, one batch at a time, so the budget window and the store
see the batches in order.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np

from ..cascade import CascadeRouter
from ..cascade._scorers import scorer_list, scoring_costs
from ..execution import candidate_seed, image_seed
from ..generators import BackendGenerator
from ..router import CostAwareRouter
from ..routing import assign_generators, penalty_for_budget
from ._budget import StreamBudget
from ._errors import APIError
from ._jobs import Candidate, ImageJob, ImageJobResult, RouteDecision, RouteJob, RouteJobResult, ServedImage
from ._making import Item, make_images, run_cascade, score_images
from ._metrics import Metrics
from ._store import ServedRow, StoreWriter

__all__ = ["CASCADE_RECALIBRATE_EVERY", "Engine"]

logger = logging.getLogger("costroute.serve")

#: Images between two budget calibrations of a cascade's λ (a router's is recomputed per image).
CASCADE_RECALIBRATE_EVERY = 16


def _check_router(router: Any) -> bool:
    """Whether ``router`` is a cascade; TypeError/ValueError unless it is a fitted router or cascade."""
    if isinstance(router, CascadeRouter):
        if not hasattr(router, "posterior_"):
            raise ValueError("router is a CascadeRouter that is not fitted; fit it before serving it")
        return True
    if isinstance(router, CostAwareRouter):
        if not hasattr(router, "quality_model_"):
            raise ValueError("router is a CostAwareRouter that is not fitted; fit it before serving it")
        return False
    raise TypeError(f"router must be a fitted CostAwareRouter or CascadeRouter, got {type(router).__name__}")


class Engine:
    """Decide, make, charge and store the images of each batch (see the module docstring).

    Parameters are those of :func:`~costroute.serve.create_app`, already checked there, and
    the app's :class:`~costroute.serve._metrics.Metrics`.
    """

    def __init__(
        self,
        router: Any,
        *,
        scorer: Any,
        budget: float | None,
        cost_penalty: float | None,
        store: Any,
        explore: float,
        max_batch_size: int,
        window: int,
        seed: int | None,
        metrics: Metrics,
    ):
        self.is_cascade = _check_router(router)
        self.router = router
        self.inner = router.router_ if self.is_cascade else router
        if self.inner.features is None and not self.inner._reads_text():
            raise ValueError("router was fitted on numeric features (features=None); it cannot route prompt text")
        self.registry = self.inner.generators_
        plain = [g.name for g in self.registry if not isinstance(g, BackendGenerator)]
        if plain:
            raise TypeError(
                f"generators {plain} are plain GeneratorSpecs that cannot make images; serve a router over "
                "generators with a backend (DiffusersGenerator, CallableGenerator, presets)"
            )
        self.names = list(self.registry.names)
        self.costs = np.asarray(self.inner.normalized_costs_, dtype=float)
        self.cost_max = float(np.max(self.registry.costs))
        self.unit = self.registry.cost_unit
        self.cheapest = int(np.lexsort((np.arange(len(self.costs)), self.costs))[0])
        self.scorers, self.scoring_costs = self._scorers(scorer)
        self.penalty = float(router.cost_penalty if cost_penalty is None else cost_penalty)
        budget = router.budget if budget is None else budget
        self.budget = None if budget is None else self._stream_budget(float(budget), window)
        self.explore = float(explore)
        self.max_batch_size = int(max_batch_size)
        self.metrics = metrics
        self.rng = np.random.default_rng(seed)
        self.writer = None if store is None else StoreWriter(store, self.registry, self.scorers)
        self.runners: dict[str, Any] = {}
        metrics.budget.set(math.nan if self.budget is None else self.budget.budget)

    def _scorers(self, scorer: Any) -> tuple[dict[str, Any], np.ndarray]:
        if self.is_cascade:
            given = self.router.scorer if scorer is None else scorer
            if given is None:
                raise ValueError(
                    "the CascadeRouter has no scorer to verify images with; pass scorer= (the one it was fitted for)"
                )
            names, scorers = scorer_list(given)
            fitted = list(self.router.scorer_names_)
            if len(names) != len(fitted):
                raise ValueError(
                    f"scorer holds {len(names)} scorer(s) {names} but the cascade was fitted with {fitted}"
                )
            return dict(zip(names, scorers)), np.asarray(self.router.normalized_scoring_costs_, dtype=float)
        if scorer is None:
            return {}, np.zeros(0)
        names, scorers = scorer_list(scorer)
        for s in scorers:
            if not callable(getattr(s, "score", None)):
                raise TypeError(f"scorer must be a Scorer (with a score(prompts, images) method), got {s!r}")
        return dict(zip(names, scorers)), scoring_costs(None, scorers, names, self.unit) / self.cost_max

    def _stream_budget(self, budget: float, window: int) -> StreamBudget:
        if self.is_cascade:
            cascade = self.router

            def penalty(rows: np.ndarray, target: float, floor: float) -> float:
                return float(cascade.penalty_for_budget(rows, target, floor=floor))

            every = CASCADE_RECALIBRATE_EVERY
        else:
            costs, scoring, cheapest = self.costs, float(self.scoring_costs.sum()), float(self.costs.min())

            def penalty(rows: np.ndarray, target: float, floor: float) -> float:
                return float(penalty_for_budget(rows, costs, max(target - scoring, cheapest), floor=floor))

            every = 1
        return StreamBudget(
            budget, self.costs, penalty, window=window, floor_penalty=self.penalty, recompute_every=every
        )

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        """Load the generators, scorers and prompt features, and open the store (before serving).

        A generator that fails to load is logged and tried again by the batches that need it
        (their images fall back as usual); a scorer, the features or the store that fail stop
        the start.
        """
        for g in self.registry:
            try:
                g.load()
            except Exception as exc:  # noqa: BLE001 - served around, by fallbacks
                logger.warning(
                    "generator %r failed to load (%s: %s); its images will fall back", g.name, type(exc).__name__, exc
                )
        for s in self.scorers.values():
            s.load()
        self.inner.predict_quality(["warm-up"])
        if self.writer is not None:
            self.writer.open()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    # ------------------------------------------------------------------ a batch
    def run_batch(self, jobs: list[Any]) -> list[Any]:
        """Answer every job of a batch: a result, or the :class:`APIError` to answer it with."""
        started = time.perf_counter()
        out: list[Any] = [None] * len(jobs)
        prompts = sorted({p for job in jobs for p in ([job.prompt] if isinstance(job, ImageJob) else job.prompts)})
        try:
            predicted = dict(zip(prompts, self.inner.predict_quality(prompts)))
        except Exception as exc:  # noqa: BLE001 - e.g. NaN predictions: every job of the batch fails
            error = APIError(
                500, f"the router could not predict quality: {type(exc).__name__}: {exc}", code="router_error"
            )
            return [error] * len(jobs)
        items: list[Item] = []
        try:
            for pos, job in enumerate(jobs):
                if isinstance(job, RouteJob):
                    out[pos] = self._route(job, predicted)
                    continue
                planned = self._plan(pos, job, predicted[job.prompt], items)
                if isinstance(planned, APIError):
                    out[pos] = planned
            self._make(items)
        except BaseException:  # an unexpected error: the batch's reservations must not stay in the window
            if self.budget is not None:
                for it in items:
                    if it.slot is not None:
                        self.budget.window.settle(it.slot, None)
            raise
        for it in items:
            it.served.cost = it.served.normalized_cost * self.cost_max
            for c in it.served.candidates or ():
                c.cost = c.normalized_cost * self.cost_max
            if self.budget is not None and it.slot is not None:
                cost = it.served.normalized_cost if it.served.image is not None else None
                self.budget.record(it.slot, cost, it.served.guarded)
        stored = self._store(items)
        self._count(items, time.perf_counter() - started)
        by_job: dict[int, list[ServedImage]] = {}
        for it in items:
            by_job.setdefault(it.job, []).append(it.served)
        for pos, images in by_job.items():
            out[pos] = stored if isinstance(stored, APIError) else ImageJobResult(images)
        return out

    def _make(self, items: list[Item]) -> None:
        """Make (and score) every item's image: one image each, or a cascade over the routed items."""
        verified = [it for it in items if it.verified]
        direct = [it for it in items if not it.verified]
        if verified:  # first: the cascade reserves its images in order, then the direct images are guarded
            window = None if self.budget is None else self.budget.window
            run_cascade(self.router, verified, self.scorers, self.max_batch_size, window)
        if direct and self.is_cascade and self.budget is not None:
            scoring = float(self.scoring_costs.sum())
            for it in direct:
                self._guard(it, scoring)
        if direct:
            seed_of = self._candidate_seed if self.is_cascade else self._image_seed
            make_images(direct, self.registry, self.runners, self.max_batch_size, seed_of, self._fits, {})
            score_images(direct, self.scorers, self.scoring_costs, self.max_batch_size)
            for it in direct:
                made = it.served.image is not None
                it.served.normalized_cost = float(self.costs[it.k]) + it.scoring_cost if made else 0.0
                it.served.seconds = (0.0 if math.isnan(it.image_seconds) else it.image_seconds) + sum(
                    it.score_seconds.values()
                )
                it.served.predicted_quality = float(it.row[it.k]) if made else math.nan
                if it.keep and made:
                    it.served.candidates = [_direct_candidate(it)]

    # ------------------------------------------------------------------ deciding
    def _image_seed(self, item: Item, name: str) -> int:
        return image_seed(*item.seed_key)

    def _candidate_seed(self, item: Item, name: str) -> int:
        return candidate_seed(*item.seed_key, name)

    def _penalty(self, row: np.ndarray, asked: float | None) -> float:
        if asked is not None:
            return float(asked)
        return self.penalty if self.budget is None else self.budget.penalty_for(row)

    def _plan(self, pos: int, job: ImageJob, row: np.ndarray, items: list[Item]) -> None | APIError:
        """Append the job's images to ``items``, decided one after another (each sees the window as the
        previous left it); each is appended as soon as it holds a reservation, so that an error later in
        the batch settles it."""
        forced = None if job.model is None else self.names.index(job.model)
        scoring = float(self.scoring_costs.sum())
        if forced is not None and self.budget is not None:
            need = float(self.costs[forced]) + (scoring if self.scorers else 0.0)
            if not self.budget.window.fits([need] * job.n):
                return APIError(
                    429,
                    f"{job.n} image(s) of {job.model!r} would take the spend of the last {self.budget.window.size} "
                    f"images past the budget ({self.budget.budget:g} per image); ask for model 'auto' (routed within "
                    "the budget) or a cheaper generator",
                    param="model",
                    code="budget_exhausted",
                    type="insufficient_quota",
                )
        for j in range(job.n):
            served = ServedImage(index=j, routed=forced is None)
            lam = self._penalty(row, job.cost_penalty)
            if self.budget is not None:
                self.budget.observe(row)
            if forced is not None:
                k = forced
            else:
                k = int(assign_generators(row[None, :], self.costs, lam)[0])
                if self.explore > 0 and self.rng.random() < self.explore:
                    k, served.explored = int(self.rng.integers(len(self.names))), True
            served.cost_penalty = lam
            verified = self.is_cascade and forced is None and not served.explored
            item = Item(pos, job.prompt, row, (job.seed, j), k, lam, bool(self.scorers) and not verified, served)
            item.verified = verified
            item.keep = job.candidates
            items.append(item)
            if self.budget is not None and not self.is_cascade:
                self._guard(item, scoring)
        return None

    def _guard(self, item: Item, scoring: float) -> None:
        """Reserve the item's planned cost; one that does not fit goes to the cheapest generator."""
        window = self.budget.window
        room = window.room()
        need = float(self.costs[item.k]) + (scoring if item.score else 0.0)
        if need > room + 1e-12 and item.served.routed:
            item.k, item.served.guarded, item.served.explored = self.cheapest, True, False
            need = float(self.costs[item.k]) + (scoring if item.score else 0.0)
            if need > room + 1e-12:
                item.score, need = False, float(self.costs[item.k])
        item.slot = window.reserve(need)

    def _fits(self, item: Item, k: int) -> bool:
        """Whether the item may fall back to generator ``k`` within the budget's guard."""
        if self.budget is None or item.slot is None:
            return True
        window = self.budget.window
        room = window.headroom(item.slot)
        scoring = float(self.scoring_costs.sum()) if item.score else 0.0
        if self.costs[k] + scoring <= room + 1e-12:
            window.replan(item.slot, self.costs[k] + scoring)
            return True
        if self.costs[k] <= room + 1e-12:
            item.score = False
            window.replan(item.slot, self.costs[k])
            return True
        return False

    def _route(self, job: RouteJob, predicted: dict[str, np.ndarray]) -> RouteJobResult:
        """Decide each prompt of the job in order; with a budget, each decision is charged to the window.

        No image is made, so a decision charges what serving it is predicted to cost: a
        router's generator plus its scoring, a cascade's expected cost at its λ (first image,
        scoring and escalations, :meth:`~costroute.CascadeRouter.expected_cost`). It is settled
        at once, so the next decision (a route or an image) sees the window as this one left it,
        and a stream of ``/v1/route`` calls holds the budget as a stream of images would.
        """
        decisions = [self._decide(prompt, predicted[prompt], job.cost_penalty) for prompt in job.prompts]
        if self.budget is not None:
            self._window_gauges()
        return RouteJobResult(decisions)

    def _decide(self, prompt: str, row: np.ndarray, asked: float | None) -> RouteDecision:
        """One ``/v1/route`` decision: λ, the (first) generator and, with a budget, its charge to the window."""
        lam = self._penalty(row, asked)
        if self.budget is not None:
            self.budget.observe(row)
        if self.is_cascade:
            k = int(self.router._run(row[None, :], np.array([lam])).first[0])  # its first choice at λ
        else:
            k = int(assign_generators(row[None, :], self.costs, lam)[0])
        guarded, charged = False, None
        if self.budget is not None:
            window = self.budget.window
            room = window.room()
            charged = self._predicted_cost(row, k, lam)
            if charged > room + 1e-12:  # the guard: the cheapest generator, as for an image
                k, guarded = self.cheapest, True
                scoring = 0.0 if self.is_cascade else float(self.scoring_costs.sum())
                charged = float(self.costs[k]) + scoring
                if charged > room + 1e-12:
                    charged = float(self.costs[k])
            self.budget.record(window.reserve(charged), charged, guarded)
        return RouteDecision(
            prompt,
            self.names[k],
            float(row[k]),
            float(self.registry.costs[k]),
            float(self.costs[k]),
            float(lam),
            guarded,
            charged,
        )

    def _predicted_cost(self, row: np.ndarray, k: int, lam: float) -> float:
        """Normalised cost of serving a routed prompt: generator ``k`` and scoring, or a cascade's expected cost."""
        if self.is_cascade:
            return float(self.router.expected_cost(row[None, :], lam))
        return float(self.costs[k]) + float(self.scoring_costs.sum())

    # ------------------------------------------------------------------ after
    def _store(self, items: list[Item]) -> APIError | None:
        """Write every image made and every score in one transaction; the error to answer with if that failed."""
        if self.writer is None or not items:
            return None
        rows = []
        for it in items:
            if it.candidates:  # a cascade: every candidate it made
                for g, (seed, seconds, scored) in it.candidates.items():
                    rows.append(ServedRow(it.prompt, g, seed, float(self.registry[g].cost), _finite(seconds), scored))
            elif it.served.image is not None:
                g = it.served.generator
                scored = {
                    name: (by[g], _finite(it.score_seconds.get(name, 0.0)))
                    for name, by in it.served.scores.items()
                    if g in by
                }
                rows.append(
                    ServedRow(
                        it.prompt, g, it.served.seed, float(self.registry[g].cost), _finite(it.image_seconds), scored
                    )
                )
        try:
            self.writer.write(rows)
        except Exception as exc:  # noqa: BLE001 - nothing of the batch is stored, so none of it is served
            return APIError(500, f"the images could not be stored: {type(exc).__name__}: {exc}", code="store_error")
        return None

    def _count(self, items: list[Item], seconds: float) -> None:
        m = self.metrics
        m.batch_seconds.observe(seconds)
        m.batch_images.observe(len(items))
        for it in items:
            s = it.served
            if s.image is not None:
                m.images.labels(generator=s.generator).inc()
            for g in it.candidates or ([s.generator] if s.image is not None else []):
                m.generated.labels(generator=g).inc()
            m.escalations.inc(max(0, len(it.candidates) - 1))
            m.fallbacks.inc(sum(1 for f in s.fallbacks if f["to"] is not None))
            m.explored.inc(int(s.explored))
            m.guarded.inc(int(s.guarded))
            m.spend.inc(s.normalized_cost)
            m.spend_unit.labels(unit=self.unit).inc(s.cost)
        if self.budget is not None:
            self._window_gauges()

    def _window_gauges(self) -> None:
        spend, n, lam = self.budget.snapshot()
        self.metrics.window_mean.set(spend / n if n else math.nan)
        self.metrics.window_images.set(n)
        self.metrics.window_penalty.set(lam)


def _direct_candidate(item: Item) -> Candidate:
    """The one image a router (or a named model, or exploration) made for ``item``, as its only candidate."""
    served = item.served
    return Candidate(
        generator=served.generator,
        image=served.image,
        seed=served.seed,
        scores={name: by[served.generator] for name, by in served.scores.items() if served.generator in by},
        normalized_cost=served.normalized_cost,
        seconds=served.seconds,
        returned=True,
    )


def _finite(x: float) -> float:
    return float(x) if x is not None and math.isfinite(x) else 0.0
