"""Running a cascade for real: the router's choice, then score and escalate, in batches.

:meth:`CascadeRouter.generate <costroute.CascadeRouter.generate>` calls
:func:`generate_cascade` with the cascade's policy state (a ``PolicyRun``). Every round, the
prompts that escalate are grouped per generator and sent through that generator's
:class:`~costroute.execution.BatchRunner`; the images to score are scored in batches. Seeds come
from (seed, prompt index, generator) (:func:`~costroute.execution.candidate_seed`). Failures
follow :meth:`RoutingPlan.generate <costroute.RoutingPlan.generate>`'s rules: a prompt whose first
image fails falls back to its next generator by utility, a failed escalation is simply not a
candidate, and with ``on_error="raise"`` the first failure stops the run with a
:class:`~costroute.execution.GenerationError` carrying the partial :class:`CascadeResult`. Any
exception that escapes (``KeyboardInterrupt`` included) gets a ``result`` attribute holding
everything made so far. When scoring failed for some prompts (they keep the best candidate
so far, usually their first image) a ``RuntimeWarning`` says how many, with the first error.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..generators import BackendGenerator
from ._batches import BatchRunner
from ._result import GenerationError, _file_name_part
from ._seeds import candidate_seed

__all__ = ["CascadeResult", "generate_cascade"]


class CascadeResult(Sequence):
    """Images a cascade returned, in prompt order, with every candidate, score and cost.

    Behaves as a sequence of the returned images (``result[i]``; ``None`` for a prompt that got
    no image).

    Attributes
    ----------
    prompts : list
    generator_names : list of str
    cost_unit : str
    seed : int
    candidates : list of dict
        Per prompt, every image made, by generator name, in the order tried.
    candidate_seeds : list of dict
        Per prompt, the seed of every image made, by generator name.
    candidate_seconds : list of dict
        Per prompt, the generation wall time of every image made (its batch's time divided by
        the batch size), by generator name.
    scorer_names : list of str
        The scorers, in the order of ``score_cube``'s last axis.
    score_cube : ndarray (n, K, M)
        Every score computed, per scorer; NaN where that scorer did not run.
    scores : DataFrame
        The score of every scored image, (n, K) with one scorer; NaN where nothing was scored.
        With several scorers, columns ``(scorer, generator)``.
    order : list of list of str
        Generators tried per prompt, in order (failed ones included).
    returned : list of str or None
        The generator whose image is returned.
    cost : ndarray (n,)
        Per prompt, in ``cost_unit``: every image made plus every scoring.
    normalized_cost : ndarray (n,)
        The same divided by the most expensive generator's cost (the cascade's cost measure).
    seconds : ndarray (n,)
        Generation and scoring wall time attributed to each prompt.
    score_seconds : ndarray (n, K, M)
        Scoring wall time of every score computed (its batch's time divided by the batch
        size); NaN where that scorer did not run.
    errors : dict
        ``{(index, generator or "scorer"): "ExceptionType: message"}``.
    cost_penalty : float
    budget : float or None
    """

    def __init__(
        self,
        prompts: Sequence,
        generator_names: Sequence[str],
        cost_unit: str,
        seed: int,
        cost_penalty: float,
        budget: float | None,
        scorer_names: Sequence[str] = ("scorer",),
    ):
        n, K = len(prompts), len(generator_names)
        self.prompts = list(prompts)
        self.generator_names = list(generator_names)
        self.cost_unit = cost_unit
        self.seed = int(seed)
        self.cost_penalty = float(cost_penalty)
        self.budget = budget
        self.candidates: list[dict[str, Any]] = [{} for _ in range(n)]
        self.candidate_seeds: list[dict[str, int]] = [{} for _ in range(n)]
        self.candidate_seconds: list[dict[str, float]] = [{} for _ in range(n)]
        self.scorer_names = list(scorer_names)
        self.score_cube = np.full((n, K, len(self.scorer_names)), np.nan)
        self.order: list[list[str]] = [[] for _ in range(n)]
        self.returned: list[str | None] = [None] * n
        self.cost = np.zeros(n)
        self.normalized_cost = np.zeros(n)
        self.seconds = np.zeros(n)
        self.score_seconds = np.full((n, K, len(self.scorer_names)), np.nan)
        self.errors: dict[tuple[int, str], str] = {}

    @property
    def score_matrix(self) -> np.ndarray:
        """(n, K): the first scorer's scores (the only scorer's, usually); NaN where it did not run."""
        return self.score_cube[:, :, 0]

    @property
    def scores(self) -> pd.DataFrame:
        """The score of every scored image; NaN where nothing was scored.

        (n, K) with one scorer; with several, columns ``(scorer, generator)``.
        """
        if len(self.scorer_names) == 1:
            return pd.DataFrame(self.score_matrix, columns=self.generator_names)
        n, K, M = self.score_cube.shape
        columns = pd.MultiIndex.from_product([self.scorer_names, self.generator_names], names=["scorer", "generator"])
        return pd.DataFrame(self.score_cube.transpose(0, 2, 1).reshape(n, M * K), columns=columns)

    @property
    def images(self) -> list:
        return [None if g is None else self.candidates[i][g] for i, g in enumerate(self.returned)]

    @property
    def missing(self) -> list[int]:
        """Prompts that got no image."""
        return [i for i, g in enumerate(self.returned) if g is None]

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def total_cost(self) -> float:
        return float(self.cost.sum())

    def to_frame(self) -> pd.DataFrame:
        """One row per prompt: generators tried, returned, images, scores, cost and seconds."""
        scored = (~np.isnan(self.score_cube)).sum(axis=2)
        frame = pd.DataFrame(
            {
                "prompt": self.prompts,
                "tried": [" > ".join(o) for o in self.order],
                "returned": self.returned,
                "n_images": [len(c) for c in self.candidates],
                "n_scores": scored.sum(axis=1),
                "cost": self.cost,
                "normalized_cost": self.normalized_cost,
                "seconds": self.seconds,
            }
        )
        for s, scorer in enumerate(self.scorer_names):
            for k, name in enumerate(self.generator_names):
                column = f"score_{name}" if len(self.scorer_names) == 1 else f"score_{scorer}_{name}"
                frame[column] = self.score_cube[:, k, s]
        return frame

    def file_name(self, index: int, generator: str, prefix: str = "image", fmt: str = "png") -> str:
        """The file :meth:`save` writes for ``generator``'s image of prompt ``index``.

        ``{prefix}_{index:04d}_{generator}.{fmt}`` for the returned image, with a ``_candidate``
        suffix for another candidate; the generator name is made safe as in
        :meth:`GenerationResult.save <costroute.execution.GenerationResult.save>`.
        """
        suffix = "" if generator == self.returned[index] else "_candidate"
        return f"{prefix}_{index:04d}_{_file_name_part(str(generator))}{suffix}.{fmt}"

    def save(
        self,
        folder: str | os.PathLike,
        prefix: str = "image",
        fmt: str = "png",
        candidates: bool = False,
        missing: str = "raise",
    ) -> list[str]:
        """Write the returned images (and, with ``candidates=True``, every candidate) to ``folder``.

        File names are :meth:`file_name`'s. ``missing="raise"`` (the default) raises
        ``ValueError`` before anything is written when a prompt has no image; ``"skip"`` saves
        what exists (the candidates of such a prompt too, with ``candidates=True``).
        """
        if missing not in ("raise", "skip"):
            raise ValueError(f"missing must be 'raise' or 'skip', got {missing!r}")
        if self.missing and missing == "raise":
            raise ValueError(
                f"prompts {self.missing[:10]} have no image; save what exists with missing='skip', or rerun them"
            )
        os.makedirs(folder, exist_ok=True)
        paths = []
        for i, made in enumerate(self.candidates):
            names = [n for n in made if n == self.returned[i]] + (
                [n for n in made if n != self.returned[i]] if candidates else []
            )
            for name in names:
                path = os.path.join(folder, self.file_name(i, name, prefix, fmt))
                made[name].save(path)
                paths.append(path)
        return paths

    def __len__(self) -> int:
        return len(self.prompts)

    def __getitem__(self, index):  # type: ignore[override]
        return self.images[index]

    def __iter__(self) -> Iterator:
        return iter(self.images)

    def __repr__(self) -> str:
        made = sum(len(c) for c in self.candidates)
        return (
            f"CascadeResult({len(self)} prompts, {made} images made, "
            f"{int((~np.isnan(self.score_cube)).sum())} scores, missing={len(self.missing)}, "
            f"total_cost={self.total_cost:.4g} {self.cost_unit})"
        )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def generate_cascade(
    run: Any,
    prompts: Sequence,
    registry: Any,
    scorers: Any,
    *,
    seed: int = 0,
    batch_size: int = 8,
    progress: bool = True,
    on_error: str = "fallback",
    budget: float | None = None,
    scorer_names: Sequence[str] | None = None,
    seed_keys: Sequence[tuple[int, int]] | None = None,
) -> CascadeResult:
    """Drive the cascade policy ``run`` with real generators and a real scorer.

    Parameters
    ----------
    run : PolicyRun
        The policy state, already holding the router's first choices.
    prompts : sequence of str
    registry : GeneratorRegistry
        Generators with a backend, in the columns' order.
    scorers : Scorer or list of Scorers
        Each has ``score(prompts, images, batch_size=..., progress=...)`` and a ``name``; one per
        scorer the policy models, in its order.
    budget : float or None
        Recorded in the result (the policy state holds the spend limit).
    scorer_names : sequence of str, optional
        Names of the scorers in the result; default each scorer's ``name``.
    seed_keys : sequence of (int, int), optional
        Per prompt, the ``(seed, index)`` its candidates are seeded from
        (:func:`~costroute.execution.candidate_seed` of them and the generator); default
        ``(seed, i)`` for prompt ``i``. ``(s, 0)`` makes prompt ``i``'s images those of a
        one-prompt run seeded with ``s``: how a server batches independent requests.
    seed, batch_size, progress, on_error
        As for :meth:`RoutingPlan.generate <costroute.RoutingPlan.generate>`.

    Warns
    -----
    RuntimeWarning
        "scoring failed for N prompts; they kept their first image" (with the first error),
        when the scorer raised or returned a wrong count or non-finite values for any prompt
        (``on_error="fallback"``). The errors are in ``result.errors`` under ``(i, "scorer")``.
    """
    from tqdm.auto import tqdm

    names = list(registry.names)
    plain = [name for name in names if not isinstance(registry[name], BackendGenerator)]
    if plain:
        raise TypeError(
            f"generators {plain} are plain GeneratorSpecs, which cannot make images; cascade over generators "
            "with a backend (DiffusersGenerator, CallableGenerator or a preset)"
        )
    scorers = list(scorers) if isinstance(scorers, (list, tuple)) else [scorers]
    for scorer in scorers:
        if scorer is None or not callable(getattr(scorer, "score", None)):
            raise TypeError(
                f"generate needs a scorer with a score(prompts, images) method, e.g. CLIPScorer(...); got {scorer!r}"
            )
    if len(scorers) != run.n_scorers:
        raise ValueError(f"{len(scorers)} scorers given but the policy models {run.n_scorers}")
    if scorer_names is None:
        scorer_names = [str(getattr(s, "name", f"scorer{i}")) for i, s in enumerate(scorers)]
    scorer_names = list(scorer_names)
    n = len(prompts)
    if seed_keys is None:
        seed_keys = [(int(seed), i) for i in range(n)]
    elif len(seed_keys) != n:
        raise ValueError(f"seed_keys must hold one (seed, index) pair per prompt ({n}), got {len(seed_keys)}")
    cost_max = float(np.max(registry.costs))
    result = CascadeResult(prompts, names, registry.cost_unit, seed, run.lam, budget, scorer_names)
    runners: dict[str, BatchRunner] = {}
    failed_loads: dict[str, str] = {}
    # fallback order per prompt, at its own λ; λ = inf (no finite λ meets the budget): cheapest
    # first, then by predicted quality
    finite = np.isfinite(run.lams)
    utility = run.predicted - np.where(finite, run.lams, 0.0)[:, None] * run.costs[None, :]
    fallback_order = np.argsort(-utility, axis=1, kind="stable")
    for i in np.flatnonzero(~finite):
        fallback_order[i] = np.lexsort((-run.predicted[i], run.costs))
    limits = np.asarray(run.spend_limit, dtype=float) if np.ndim(run.spend_limit) == 1 else None

    def fits(i: int, k: int) -> bool:
        """Whether a fallback to generator k keeps prompt i within its own spend limit (if it has one)."""
        return limits is None or run.cost[i] + run.costs[k] <= limits[i] + 1e-12 * max(1.0, abs(limits[i]))

    bar = tqdm(total=None, unit="img", desc="cascade", file=sys.stderr, disable=not progress)

    def stop(index: int, where: str, exc: BaseException) -> GenerationError:
        return GenerationError(f"prompt {index} failed on {where}: {_describe(exc)}", result, {index: exc})

    def make(rows: np.ndarray, ks: np.ndarray) -> tuple[list[int], list[int], list[int], list[int]]:
        """Generate image of generator ks[j] for prompt rows[j]; returns (ok rows, ok ks, failed rows, failed ks)."""
        ok_r, ok_k, bad_r, bad_k = [], [], [], []
        for k in np.unique(ks):
            name = names[k]
            idx = [int(i) for i in rows[ks == k]]
            spec = registry[name]
            error: BaseException | None = None
            if name in failed_loads:
                error = RuntimeError(f"{name} failed to load earlier: {failed_loads[name]}")
            else:
                try:
                    spec.load()
                except Exception as exc:
                    failed_loads[name] = _describe(exc)
                    error = exc
            if error is not None:
                for i in idx:
                    result.order[i].append(name)
                    result.errors[(i, name)] = _describe(error)
                    if on_error == "raise":
                        raise stop(i, name, error) from error
                bad_r += idx
                bad_k += [int(k)] * len(idx)
                continue
            runner = runners.setdefault(name, BatchRunner(spec, batch_size))
            seeds = {i: candidate_seed(*seed_keys[i], name) for i in idx}
            for outcomes in runner.run(idx, prompts, seeds):
                for o in outcomes:
                    result.order[o.index].append(name)
                    if o.ok:
                        result.candidates[o.index][name] = o.image
                        result.candidate_seeds[o.index][name] = seeds[o.index]
                        result.candidate_seconds[o.index][name] = o.seconds
                        result.seconds[o.index] += 0.0 if np.isnan(o.seconds) else o.seconds
                        ok_r.append(o.index)
                        ok_k.append(int(k))
                        bar.update(1)
                    else:
                        result.errors[(o.index, name)] = _describe(o.error)
                        if on_error == "raise":
                            raise stop(o.index, name, o.error) from o.error
                        bad_r.append(o.index)
                        bad_k.append(int(k))
        return ok_r, ok_k, bad_r, bad_k

    def score(rows: np.ndarray, ks: np.ndarray, ss: np.ndarray) -> None:
        """Score image ks[j] of prompt rows[j] with scorer ss[j]; batched per scorer."""
        for s in np.unique(ss):
            pick = ss == s
            score_with(int(s), rows[pick], ks[pick])

    def score_with(s: int, rows: np.ndarray, ks: np.ndarray) -> None:
        """Score the images of (rows, ks) in chunks of ``batch_size``; a failing chunk closes only its prompts."""
        scorer = scorers[s]
        for start in range(0, rows.size, batch_size):
            part, part_k = rows[start : start + batch_size], ks[start : start + batch_size]
            images = [result.candidates[i][names[k]] for i, k in zip(part.tolist(), part_k.tolist())]
            began = time.perf_counter()
            try:
                values = np.asarray(
                    scorer.score([prompts[i] for i in part], images, batch_size=batch_size, progress=False), dtype=float
                )
                if values.shape != (part.size,) or not np.isfinite(values).all():
                    raise ValueError(
                        f"scorer {getattr(scorer, 'name', scorer)!r} returned {values.tolist()[:8]} "
                        f"for {part.size} images; expected {part.size} finite numbers"
                    )
            except Exception as exc:
                for i in part.tolist():
                    result.errors[(i, "scorer")] = _describe(exc)
                if on_error == "raise":
                    raise stop(int(part[0]), f"scorer {getattr(scorer, 'name', scorer)!r}", exc) from exc
                run.close(part)  # without a score nothing more can be decided: keep the best so far
                continue
            per_image = (time.perf_counter() - began) / part.size
            result.seconds[part] += per_image
            result.score_seconds[part, part_k, s] = per_image
            run.observed(part, part_k, values, s)
            result.score_cube[part, part_k, s] = values

    try:
        # the router's choices, with fallbacks by utility for prompts whose image fails
        rows, ks = np.arange(n), run.first.copy()
        first_round = True
        while rows.size:
            ok_r, ok_k, bad_r, bad_k = make(rows, ks)
            if first_round:
                bad = np.asarray(bad_r, dtype=np.intp)
                run.first_failed(bad) if bad.size else None
                first_round = False
            else:
                if ok_r:
                    run.replace_first(np.asarray(ok_r), np.asarray(ok_k))
                if bad_r:
                    run.failed_image(np.asarray(bad_r), np.asarray(bad_k))
            nxt_r, nxt_k = [], []
            for i in bad_r:
                left = [
                    k
                    for k in fallback_order[i]
                    if not run.tried[i, k] and names[k] not in failed_loads and fits(i, int(k))
                ]
                if left:
                    nxt_r.append(i)
                    nxt_k.append(int(left[0]))
                else:
                    run.close(np.array([i]))
            rows, ks = np.asarray(nxt_r, dtype=np.intp), np.asarray(nxt_k, dtype=np.intp)
        # score, escalate, score
        while True:
            step = run.decide()
            if step.empty:
                break
            escalate, to = step.open_rows, step.open_generators
            ok_r, ok_k, bad_r, bad_k = make(escalate, to) if escalate.size else ([], [], [], [])
            if ok_r:
                run.generated(np.asarray(ok_r), np.asarray(ok_k))
            if bad_r:
                run.failed_image(np.asarray(bad_r), np.asarray(bad_k))
            planned = dict(zip(zip(escalate.tolist(), to.tolist()), step.open_scorers.tolist()))
            made_s = [planned[(i, k)] for i, k in zip(ok_r, ok_k)]
            rows = np.r_[step.look_rows, np.asarray(ok_r, dtype=np.intp)].astype(np.intp)
            ks = np.r_[step.look_generators, np.asarray(ok_k, dtype=np.intp)].astype(np.intp)
            ss = np.r_[step.look_scorers, np.asarray(made_s, dtype=np.intp)].astype(np.intp)
            score(rows, ks, ss)
        _finish(result, run, names, cost_max)
        _warn_scoring_failures(result, scorer_names)
    except BaseException as exc:  # KeyboardInterrupt included: hand back what was made
        _finish(result, run, names, cost_max)
        try:
            exc.result = result  # type: ignore[attr-defined]
        except (AttributeError, TypeError):  # pragma: no cover
            pass
        raise
    finally:
        bar.close()
    return result


def _warn_scoring_failures(result: CascadeResult, scorer_names: list[str]) -> None:
    """A RuntimeWarning when the scorer failed for any prompt: they were not verified."""
    failed = [(i, why) for (i, where), why in result.errors.items() if where == "scorer"]
    if not failed:
        return
    prompts = sorted({i for i, _ in failed})
    first = min(failed)
    which = f"Scorer {scorer_names[0]!r}" if len(scorer_names) == 1 else f"Scorers {scorer_names}"
    warnings.warn(
        f"scoring failed for {len(prompts)} prompts; they kept their first image (or the best candidate scored "
        f"before the failure), unverified. {which}, first error (prompt "
        f"{first[0]}): {first[1]}. Every error is in result.errors under (index, 'scorer')",
        RuntimeWarning,
        stacklevel=4,
    )


def _finish(result: CascadeResult, run: Any, names: list[str], cost_max: float) -> None:
    """Copy the returned generators into the result and charge exactly what was made and scored.

    Costs are rebuilt from the images that exist and the scores that were computed, so a run
    stopped part-way (``on_error="raise"``, Ctrl-C) charges neither planned images never made
    nor misses images made in the interrupted round.
    """
    returned = run.returned()
    for i, k in enumerate(returned.tolist()):
        name = None if k < 0 else names[k]
        result.returned[i] = name if name in result.candidates[i] else None
    position = {name: k for k, name in enumerate(names)}
    made = np.array([sum(run.costs[position[g]] for g in c) for c in result.candidates], dtype=float)
    scored = (~np.isnan(result.score_cube)).sum(axis=1)  # (n, M)
    result.normalized_cost = made + scored @ run.scorer_costs
    result.cost = result.normalized_cost * cost_max
