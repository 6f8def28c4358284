"""The ``costroute`` command: route a file of prompts, or print per-image costs.

Examples
--------
::

    costroute route prompts.txt --budget 0.3            # fit on GenAI-Bench, route, CSV to stdout
    costroute route - --cost-penalty 0.2 < prompts.txt
    costroute costs sdxl --steps 25                     # FLOPs breakdown of one image
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence

DATASETS = ("genai-bench", "agiqa3k-alignment", "agiqa3k-quality")


def _read_prompts(source: str) -> list[str]:
    """One prompt per line (UTF-8, a byte-order mark and CRLF endings tolerated).

    Blank lines inside the input are prompts; trailing blank lines are not.
    """
    if source == "-":
        stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
        prompts = [line.rstrip("\r\n") for line in stream]
    else:
        with open(source, encoding="utf-8-sig", newline="") as fh:
            prompts = [line.rstrip("\r\n") for line in fh]
    while prompts and not prompts[-1]:
        prompts.pop()
    return prompts


def _load_training_data(name: str, cost_unit: str):
    from .datasets import load_agiqa3k, load_genai_bench

    if name == "genai-bench":
        return load_genai_bench(cost_unit=cost_unit)
    return load_agiqa3k(target=name.split("-", 1)[1], cost_unit=cost_unit)


def _route(args: argparse.Namespace) -> int:
    from . import CostAwareRouter

    prompts = _read_prompts(args.prompts)
    if not prompts:
        raise SystemExit(f"costroute route: no prompts in {args.prompts!r} (one prompt per line)")
    data = _load_training_data(args.dataset, args.cost_unit)
    router = CostAwareRouter(data.generators, features=args.features, quality_model=args.quality_model,
                             random_state=0).fit(data.prompts, data.quality)
    plan = router.route(prompts, cost_penalty=args.cost_penalty, budget=args.budget)
    frame = plan.to_frame()
    for k, name in enumerate(plan.generators.names):
        frame[f"predicted_{name}"] = plan.predicted_quality[:, k]
    frame.to_csv(sys.stdout, index=False, float_format="%.6g")
    print(
        f"# {len(plan)} prompts routed with cost_penalty={plan.cost_penalty:.4g}, "
        f"mean normalised cost {plan.mean_normalized_cost:.4f}, total {plan.total_cost:.4g} {plan.generators.cost_unit}",
        file=sys.stderr,
    )
    print(plan.summary().round(4).to_string(), file=sys.stderr)
    return 0


def _costs(args: argparse.Namespace) -> int:
    from .costs import ARCHITECTURES, pipeline_cost

    guidance = not args.no_guidance
    for arch in args.arch or list(ARCHITECTURES):
        # DeepFloyd IF takes one value per stage
        two_stage = arch == "deepfloyd_if"
        steps = (args.steps, args.steps) if two_stage and args.steps is not None else args.steps
        print(pipeline_cost(arch, height=args.height, width=args.width, steps=steps,
                            guidance=(guidance, guidance) if two_stage else guidance))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .router import FEATURE_CHOICES, QUALITY_MODEL_CHOICES

    parser = argparse.ArgumentParser(prog="costroute", description="Cost-aware routing of text-to-image prompts.")
    sub = parser.add_subparsers(dest="command", required=True)

    route = sub.add_parser("route", help="fit a router on a rated dataset and route a file of prompts (CSV to stdout)")
    route.add_argument("prompts", help="text file with one prompt per line, or - for standard input")
    route.add_argument("--dataset", choices=DATASETS, default="genai-bench", help="training ratings (default: %(default)s)")
    route.add_argument("--cost-unit", choices=("flops", "usd"), default="flops")
    route.add_argument("--features", choices=FEATURE_CHOICES, default="minilm")
    route.add_argument("--quality-model", choices=QUALITY_MODEL_CHOICES, default="knn")
    route.add_argument("--cost-penalty", type=float, default=None,
                       help="lambda (default 0); with --budget, the least lambda used")
    route.add_argument("--budget", type=float, default=None,
                       help="target mean normalised cost of the batch (lambda is raised until it is met)")
    route.set_defaults(func=_route)

    costs = sub.add_parser("costs", help="per-image FLOPs of shipped architectures, with a breakdown")
    costs.add_argument("arch", nargs="*", help="architectures (default: all)")
    costs.add_argument("--steps", type=int, default=None)
    costs.add_argument("--height", type=int, default=None)
    costs.add_argument("--width", type=int, default=None)
    costs.add_argument("--no-guidance", action="store_true", help="no classifier-free guidance")
    costs.set_defaults(func=_costs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``costroute`` command."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:
        print(f"costroute {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
