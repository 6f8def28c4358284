"""``costroute route``: route a file of prompts (a saved router, or one fitted on a shipped dataset)."""

from __future__ import annotations

import argparse
import sys
import warnings

from ._common import (
    DATASETS,
    EXIT_OK,
    add_penalty_arguments,
    add_prompt_arguments,
    add_trust_argument,
    fit_defaults,
    fit_router,
    load_router,
    refuse_fit_options,
    report_warnings,
    say,
)
from ._prompt_files import read_prompts


def run(args: argparse.Namespace) -> int:
    prompts = read_prompts(args.prompts, args.column)
    if args.router is not None:
        refuse_fit_options(args)
    else:
        fit_defaults(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if args.router is not None:
            say(args, f"{len(prompts)} prompt(s) to route; loading the router {args.router!r} ...")
            router = load_router(args)
        else:
            router = fit_router(args, f"{len(prompts)} prompt(s) to route; ")
        cascade = hasattr(router, "first_choices")
        if cascade:
            say(
                args,
                f"{args.router!r} holds a CascadeRouter: these are its first choices; `costroute generate` "
                "scores each image and may escalate to another generator ...",
            )
            plan = router.first_choices(prompts, cost_penalty=args.cost_penalty, budget=args.budget)
        else:
            say(args, "routing ...")
            plan = router.route(prompts, cost_penalty=args.cost_penalty, budget=args.budget)
    report_warnings(caught)
    frame = plan.to_frame()
    for k, name in enumerate(plan.generators.names):
        frame[f"predicted_{name}"] = plan.predicted_quality[:, k]
    frame.to_csv(sys.stdout, index=False, float_format="%.6g")
    sys.stdout.flush()
    say(
        args,
        f"{len(plan)} prompts {'given their first choice' if cascade else 'routed'} with cost_penalty={plan.cost_penalty:.4g}, "
        f"mean normalised cost {plan.mean_normalized_cost:.4f}, "
        f"total {plan.total_cost:.4g} {plan.generators.cost_unit}",
    )
    if not args.quiet:
        print(plan.summary().round(4).to_string(), file=sys.stderr)
    return EXIT_OK


def add_parser(sub) -> None:
    """Add the ``route`` subcommand to the subparsers ``sub``."""
    from ..router import FEATURE_CHOICES, QUALITY_MODEL_CHOICES

    route = sub.add_parser(
        "route",
        help="route a file of prompts with a router fitted on a rated dataset, or a "
        "saved one (--router); CSV to stdout",
    )
    add_prompt_arguments(route)
    route.add_argument(
        "--router",
        default=None,
        metavar="ROUTER.skops",
        help="a router saved by `costroute fit` or costroute.io.save, used as it is (no refit); for a "
        "saved CascadeRouter, the generator each prompt starts with",
    )
    add_trust_argument(route)
    route.add_argument(
        "--dataset", choices=DATASETS, default=None, help="training ratings (default: genai-bench); not with --router"
    )
    route.add_argument("--cost-unit", choices=("flops", "usd"), default=None, help="default: flops")
    route.add_argument("--features", choices=FEATURE_CHOICES, default=None, help="default: minilm")
    route.add_argument("--quality-model", choices=QUALITY_MODEL_CHOICES, default=None, help="default: knn")
    add_penalty_arguments(route)
    route.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    route.set_defaults(func=run)
