"""Quickstart: learn to route GenAI-Bench prompts to the open generator worth its FLOPs.

Loads GenAI-Bench (527 prompts, human ratings of four open generators, cost in FLOPs per
image counted from the published architectures), holds out 20% of the prompts, fits the
default router (MiniLM embeddings + k-nearest neighbours) and compares, on the held-out
prompts, every single generator with the router at lambda = 0 and at three budgets.

Run it with ``make demo`` or ``python examples/quickstart.py`` (``--help`` lists the options).
"""

import argparse
import time

import numpy as np
from sklearn.model_selection import train_test_split

from costroute import CostAwareRouter
from costroute.datasets import load_genai_bench
from costroute.evaluation import hull_curve, quality_at_cost


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the 80/20 train/held-out split (default 0: the numbers in the README)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar while the prompts are embedded (stderr)"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    data = load_genai_bench(cost_unit="flops")
    names = data.generators.names
    train, test = train_test_split(np.arange(len(data.prompts)), test_size=0.2, random_state=args.seed)
    prompts_train = [data.prompts[i] for i in train]
    prompts_test = [data.prompts[i] for i in test]
    Q_train, Q_test = data.quality.iloc[train], data.quality.iloc[test].to_numpy()

    router = CostAwareRouter(
        generators=data.generators, features="minilm", quality_model="knn", progress=not args.no_progress
    )
    router.fit(prompts_train, Q_train)
    norm = router.normalized_costs_
    flops = router.costs_

    print(
        f"GenAI-Bench: {len(train)} training prompts, {len(test)} held-out prompts, "
        f"quality = mean of 3 human ratings (1-5)\n"
    )
    # randomly mixing single generators reaches any point of their upper concave hull
    mixture = hull_curve(Q_test, norm)
    header = f"{'method':<34}{'quality':>9}{'norm. cost':>12}{'TFLOPs/img':>12}{'mixture @ cost':>16}"
    print(header)
    print("-" * len(header))
    for k, name in enumerate(names):
        print(f"{'always ' + name:<34}{Q_test[:, k].mean():>9.3f}{norm[k]:>12.3f}{flops[k] / 1e12:>12.1f}")
    best = int(np.argmax(Q_test.mean(axis=0)))
    oracle = Q_test.max(axis=1).mean()

    rows = [("router, lambda = 0", router.route(prompts_test, cost_penalty=0.0))]
    for budget in (0.5, 0.25, 0.1):
        rows.append((f"router, budget {budget:.2f}", router.route(prompts_test, budget=budget)))
    for label, plan in rows:
        quality = Q_test[np.arange(len(test)), plan.assignments].mean()
        tflops = plan.total_cost / len(plan) / 1e12
        mixed = quality_at_cost(mixture, plan.mean_normalized_cost)
        print(f"{label:<34}{quality:>9.3f}{plan.mean_normalized_cost:>12.3f}{tflops:>12.1f}{mixed:>16.3f}")
    print(f"{'oracle (true best per prompt)':<34}{oracle:>9.3f}")
    print(
        f"\nBest single generator: {names[best]} ({Q_test[:, best].mean():.3f}). 'mixture @ cost': quality of "
        "randomly mixing single generators at the router's cost (the baseline routing must beat)."
    )

    plan = router.route(prompts_test, budget=0.25)
    print(f"\nRoutes at budget 0.25 (lambda = {plan.cost_penalty:.3f}):")
    print(plan.summary()[["count", "share", "mean_expected_quality"]].round(3).to_string())

    print("\nFive held-out prompts, their route at budget 0.25 and the predicted quality of each generator:")
    for i in range(5):
        predicted = ", ".join(f"{n} {q:.2f}" for n, q in zip(names, plan.predicted_quality[i]))
        print(f"- {plan.prompts[i]!r}\n    -> {plan.generator_names[i]}   ({predicted})")
    print(f"\nDone in {time.perf_counter() - start:.1f} s.")


if __name__ == "__main__":
    main()
