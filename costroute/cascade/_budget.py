"""The λ that makes a cascade's expected mean cost meet a budget.

A cascade's cost depends on the scores it will see, so its expected cost at a λ is estimated by
replaying the policy on scores drawn from the fitted model (``n_draws`` per prompt, the same
draws for every λ). The answer is the smallest λ (>= a floor) whose estimate meets the budget,
found on the feasible side (the expected cost of an adaptive cascade need not be monotone in λ).

* **Small batches** (at most :data:`EXACT_ROWS` simulated prompts): bisection on λ, replaying
  the whole batch with all its draws at every step.
* **Large batches**: the whole batch is simulated with a few draws per prompt
  (:func:`check_draws`: one at 10,000 prompts); one vectorised replay of a sample of those
  simulated prompts at a grid of λ values (each carries its own λ), a second one on a finer
  grid inside the bracket found, then checks on the *whole* simulated batch: guided by the
  sample until a λ passes, then narrowing the interval between the last failure and it. The answer thus always meets
  the budget on the whole batch's estimate, at the cost of a few fixed-λ replays rather than
  dozens of replays of the batch times its draws.

The hard guard (no step that takes a batch's spend past ``budget x n``) is applied by the
caller, unchanged.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..routing import BudgetWarning, lambda_grid, meets_budget
from ._policy import replay

#: Largest number of simulated prompts (prompts x draws) calibrated by plain bisection.
EXACT_ROWS = 4096
#: Simulated prompts in each vectorised grid replay of a large batch, per λ.
SAMPLE_ROWS = 384
#: λ values per vectorised grid replay.
GRID_SIZE = 12
#: Checks on the whole batch guided by the sample before walking up by factors of 4.
MAX_JUMPS = 3
#: Further checks narrowing the interval between the last failure and the first pass.
MAX_REFINE = 2
#: λ values of the sample's replay inside that interval before each of those checks.
REFINE_GRID = 8


def check_draws(n: int, n_draws: int) -> int:
    """Draws per prompt in a large batch's checks: enough for :data:`EXACT_ROWS` simulated prompts, at most ``n_draws``.

    The checks of :func:`penalty_for_budget` replay ``np.repeat(predicted, d)`` on the first
    ``posterior_.sample_scores`` draws of ``np.random.default_rng(random_state)``.
    """
    return max(1, min(n_draws, -(-EXACT_ROWS // max(n, 1))))


def _draws(cascade, predicted: np.ndarray, per_prompt: int, rng: np.random.Generator):
    tiled = np.repeat(predicted, per_prompt, axis=0)
    return tiled, cascade.posterior_.sample_scores(tiled, rng)


def penalty_for_budget(cascade, predicted: np.ndarray, budget: float, floor: float = 0.0) -> float:
    """Smallest λ >= ``floor`` whose expected mean cost meets ``budget`` (module docstring).

    Returns ``math.inf`` (with a :class:`~costroute.BudgetWarning`) when the budget is below the
    cheapest generator's normalised cost, and ``math.inf`` without a warning in the rare case
    where no λ up to about 1e9 meets it.
    """
    n = len(predicted)
    if n == 0:
        return floor
    c_min = float(cascade.normalized_costs_.min())
    rng = np.random.default_rng(cascade.random_state)
    draws = int(cascade.n_draws)
    if n * draws <= EXACT_ROWS:
        tiled, scores = _draws(cascade, predicted, draws, rng)
        memo: dict[float, float] = {}

        def cost(lam: float) -> float:
            if lam not in memo:
                memo[lam] = float(replay(cascade._run(tiled, lam), scores).cost.mean())
            return memo[lam]

        if meets_budget(cost(floor), budget):
            return floor
        if not meets_budget(c_min, budget):
            return _unreachable(budget, c_min)
        return _bisect(cost, budget, floor)
    return _large(cascade, predicted, budget, floor, c_min, rng)


def _unreachable(budget: float, c_min: float) -> float:
    warnings.warn(
        f"budget {budget:.6g} is below the cheapest generator's normalised cost {c_min:.6g}; "
        "every prompt is routed to the cheapest generator and nothing is scored (cost_penalty=inf)",
        BudgetWarning,
        stacklevel=4,
    )
    return math.inf


def _bisect(cost, budget: float, floor: float) -> float:
    hi = max(floor, 1e-3)
    while not meets_budget(cost(hi), budget):
        hi *= 4.0
        if hi > 1e9:
            return math.inf
    lo = floor
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if meets_budget(cost(mid), budget):
            hi = mid
        else:
            lo = mid
        if hi - lo <= 1e-3 * max(1e-3, hi):  # finer than this is below the Monte Carlo noise
            break
    return hi


def _grid_costs(cascade, tiled: np.ndarray, scores: np.ndarray, lams: np.ndarray) -> np.ndarray:
    """Mean cost of the simulated prompts at each λ of ``lams``, in one replay."""
    m = len(tiled)
    run = cascade._run(np.tile(tiled, (len(lams), 1)), np.repeat(lams, m))
    cost = replay(run, np.tile(scores, (len(lams), 1))).cost
    return cost.reshape(len(lams), m).mean(axis=1)


def _first_feasible(lams: np.ndarray, costs: np.ndarray, budget: float) -> int | None:
    ok = [meets_budget(float(c), budget) for c in costs]
    return next((j for j, good in enumerate(ok) if good), None)


def _large(cascade, predicted, budget, floor, c_min, rng) -> float:
    full_tiled, full_scores = _draws(cascade, predicted, check_draws(len(predicted), int(cascade.n_draws)), rng)
    # the sample shares the whole batch's draws, so the two estimates move together
    pick = np.sort(rng.choice(len(full_tiled), size=min(SAMPLE_ROWS, len(full_tiled)), replace=False))
    tiled, scores = full_tiled[pick], full_scores[pick]

    def full_cost(lam: float) -> float:
        return float(replay(cascade._run(full_tiled, lam), full_scores).cost.mean())

    top = float(lambda_grid(predicted, cascade.normalized_costs_, n=2)[-1])
    top = top if top > 0 else float(np.std(predicted)) or 1.0
    hi = max(top * 10.0, floor * 4.0, 1e-3)
    coarse = np.r_[floor, np.geomspace(max(floor, top * 1e-4, 1e-9), hi, GRID_SIZE - 1)]
    costs = _grid_costs(cascade, tiled, scores, coarse)
    j = _first_feasible(coarse, costs, budget)
    if j == 0 and meets_budget(full_cost(floor), budget):
        return floor
    if j is None or j == 0:
        if not meets_budget(c_min, budget):
            return _unreachable(budget, c_min)
    if j is None:  # beyond the grid: the exact search on the sample, then the check
        sample_cost = {}

        def cost(lam: float) -> float:
            if lam not in sample_cost:
                sample_cost[lam] = float(replay(cascade._run(tiled, lam), scores).cost.mean())
            return sample_cost[lam]

        grid, grid_costs = np.array([_bisect(cost, budget, hi)]), None
    elif j == 0:
        grid, grid_costs = coarse, costs
    else:
        # a little below the sample's bracket too: the checks on the whole batch may step down into it
        low = max(floor, coarse[j - 1] * 0.8)
        if low <= 0.0:  # the bracket is (0, coarse[1]]: start one coarse step below coarse[1]
            low = coarse[j] * coarse[j] / coarse[j + 1]
        fine = np.geomspace(low, coarse[j], GRID_SIZE + 1)[1:]
        fine_costs = _grid_costs(cascade, tiled, scores, fine)
        grid, grid_costs = np.r_[fine, coarse[j + 1 :]], np.r_[fine_costs, costs[j + 1 :]]
    return _checked(
        grid,
        grid_costs,
        budget,
        full_cost,
        lower=max(floor, float(grid[0]) / 3.0),
        sample_costs=lambda lams: _grid_costs(cascade, tiled, scores, lams),
    )


def _next_check(lo: float, f_lo: float | None, hi: float, f_hi: float, budget: float, sample_costs) -> float:
    """Where to check next inside (lo, hi): the sample replayed on a grid there, corrected by the
    gaps between the whole batch and the sample at the ends (interpolated in log λ), meets the
    budget; the geometric midpoint where it never does."""
    base = lo if lo > 0 else hi * 1e-3
    lams = np.r_[lo, np.geomspace(base, hi, REFINE_GRID + 2)[1:-1], hi]
    sample = sample_costs(lams)
    gap_hi = f_hi - sample[-1]
    gap_lo = gap_hi if f_lo is None else f_lo - sample[0]
    where = np.log(lams[1:-1] / base) / np.log(hi / base)
    corrected = sample[1:-1] + gap_lo + (gap_hi - gap_lo) * where
    inside = [float(lam) for lam, c in zip(lams[1:-1], corrected) if meets_budget(float(c), budget)]
    if inside:
        return inside[0]
    return (lo + hi) / 2 if lo <= 0 else float(np.sqrt(lo * hi))


def _checked(
    grid: np.ndarray, grid_costs: np.ndarray | None, budget: float, full_cost, lower: float, sample_costs
) -> float:
    """The smallest λ, as far as a few checks on the whole batch can tell, whose cost meets ``budget``.

    ``grid_costs`` (the sample's estimates on ``grid``) guide the search for a passing λ: after
    a failed check at λ, the sample's curve is shifted by the gap between the whole batch and
    the sample at λ, and the next check is the first grid λ where the shifted curve meets the
    budget. Once a λ passes, the interval between the last failure (or ``lower``, when the
    first check passed) and it is narrowed with :data:`MAX_REFINE` more checks, each where the
    sample, replayed on a grid inside the interval and corrected onto the whole batch's checks
    at its ends, meets the budget (:func:`_next_check`). The answer is the smallest λ that
    passed.
    """
    if grid_costs is None:
        grid_costs = np.zeros(len(grid))
    j = _first_feasible(grid, grid_costs, budget) or 0
    lo, f_lo, hi, f_hi = lower, None, None, None
    for _ in range(MAX_JUMPS):
        if j >= len(grid):
            break
        full = full_cost(float(grid[j]))
        if meets_budget(full, budget):
            hi, f_hi = float(grid[j]), full
            break
        lo, f_lo = float(grid[j]), full
        shifted = grid_costs + (full - grid_costs[j])
        j = next((i for i in range(j + 1, len(grid)) if meets_budget(float(shifted[i]), budget)), j + 1)
    if hi is None:  # past the grid, or out of jumps: walk up by factors of 4
        lam = float(grid[min(j, len(grid) - 1)])
        while lam < 1e9:
            if meets_budget(full_cost(lam), budget):
                return lam
            lam *= 4.0
        return math.inf
    for _ in range(MAX_REFINE):
        if hi <= lo * (1.0 + 1e-3):
            break
        mid = _next_check(lo, f_lo, hi, f_hi, budget, sample_costs)
        full = full_cost(mid)
        if meets_budget(full, budget):
            hi, f_hi = mid, full
        else:
            lo, f_lo = mid, full
    return hi
