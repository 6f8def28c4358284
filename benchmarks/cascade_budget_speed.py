"""How long a CascadeRouter takes to calibrate λ for a budget, against a fixed-λ simulate.

Synthetic batch: 10,000 prompts x 10 generators (numeric prompt features, a ridge router, one
simulated scorer at within-prompt r of about 0.7), the cascade fitted on 2,000 other prompts.
For each policy it times (best of 3) ``simulate(..., cost_penalty=λ)`` and
``simulate(..., budget=B)`` (calibration + the same replay) on the whole batch, the
calibration alone (``penalty_for_budget``), and checks the guarantee: the expected mean cost
at the λ found (estimated on ``n_draws`` fresh draws per prompt) and the realised mean cost,
against the budget. ``--exact`` also times the plain bisection on every simulated prompt
(prompts x ``n_draws``), the method used for small batches (minutes at this size).

Usage::

    .venv/bin/python benchmarks/cascade_budget_speed.py [--n 10000] [--budget 0.3] [--exact]

Writes ``benchmarks/results/cascade_budget_speed.json``. Threads: BLAS/OpenMP pools limited to
``--threads`` (default 1).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import limit_threads_from_argv, to_json  # noqa: E402

limit_threads_from_argv()

import numpy as np  # noqa: E402

from costroute import CascadeRouter, CostAwareRouter  # noqa: E402
from costroute.cascade import _budget  # noqa: E402


def world(n: int, K: int, rng: np.random.Generator):
    """Prompts with 8 numeric features; quality = a prompt effect + per-generator slopes + seed noise."""
    X = rng.normal(size=(n, 8))
    W = rng.normal(scale=0.3, size=(8, K))
    level = np.linspace(-0.6, 0.4, K)  # dearer generators are better on average
    Q = X @ W + level + 0.2 * X[:, :1] + rng.normal(scale=0.5, size=(n, K))
    S = Q + rng.normal(scale=0.5, size=(n, K))  # within-prompt r about 0.7
    return X, Q, S


def timed(fn, repeat: int = 1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--generators", type=int, default=10)
    parser.add_argument("--train", type=int, default=2_000)
    parser.add_argument("--budget", type=float, default=0.3)
    parser.add_argument("--exact", action="store_true", help="also time the plain bisection (slow)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    K = args.generators
    costs = {f"g{k}": float(c) for k, c in enumerate(np.geomspace(1.0, 50.0, K))}
    X_all, Q_all, S_all = world(args.train + args.n, K, rng)  # one world, split into training and batch
    X_train, Q_train, S_train = X_all[: args.train], Q_all[: args.train], S_all[: args.train]
    X, Q, S = X_all[args.train :], Q_all[args.train :], S_all[args.train :]
    doc = {"n": args.n, "generators": K, "budget": args.budget, "policies": {}}
    for policy in ("index", "myopic"):
        router = CostAwareRouter(costs, features=None, quality_model="ridge")
        cascade = CascadeRouter(router, scoring_cost=0.5, random_state=0, policy=policy).fit(
            X_train, Q_train, scores=S_train
        )
        predicted = cascade.router_.predict_quality(X)
        t_cal, lam = timed(lambda c=cascade, p=predicted: c.penalty_for_budget(p, args.budget), repeat=3)
        t_fixed, fixed = timed(lambda c=cascade, lam=lam: c.simulate(X, Q, S, cost_penalty=lam), repeat=3)
        t_budget, with_budget = timed(lambda c=cascade: c.simulate(X, Q, S, budget=args.budget), repeat=3)
        check = CascadeRouter(router, scoring_cost=0.5, random_state=123, policy=policy)
        check.__dict__.update({k: v for k, v in cascade.__dict__.items() if k.endswith("_")})
        expected = check.expected_cost(predicted, lam)
        row = {
            "lambda": lam,
            "fixed_lambda_simulate_s": t_fixed,
            "calibration_s": t_cal,
            "budget_simulate_s": t_budget,
            "calibration_over_fixed": t_cal / t_fixed,
            "budget_simulate_over_fixed": t_budget / t_fixed,
            "expected_cost_at_lambda_fresh_draws": expected,
            "realised_cost_fixed_lambda": fixed.mean_cost,
            "realised_cost_with_budget": with_budget.mean_cost,
            "budget_met_in_expectation": expected <= args.budget * (1 + 1e-9) + 1e-12,
            "quality_with_budget": with_budget.mean_quality,
        }
        if args.exact:
            saved = _budget.EXACT_ROWS
            _budget.EXACT_ROWS = 10**12
            try:
                t_exact, lam_exact = timed(lambda c=cascade, p=predicted: c.penalty_for_budget(p, args.budget))
            finally:
                _budget.EXACT_ROWS = saved
            row.update(exact_bisection_s=t_exact, exact_lambda=lam_exact, exact_over_fixed=t_exact / t_fixed)
        doc["policies"][policy] = row
        print(policy, json.dumps(to_json(row)), flush=True)
    doc["meta"] = {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cascade_budget_speed.json").write_text(json.dumps(to_json(doc), indent=1))


if __name__ == "__main__":
    main()
