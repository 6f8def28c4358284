"""``costroute costs``: the per-image FLOPs of shipped architectures, with a breakdown."""

from __future__ import annotations

import argparse

from ._common import EXIT_OK, positive_int
from ._prompt_files import InputError


def run(args: argparse.Namespace) -> int:
    from ..costs import ARCHITECTURES, pipeline_cost

    unknown = [arch for arch in args.arch if arch not in ARCHITECTURES]
    if unknown:
        raise InputError(f"unknown architecture(s) {unknown}; valid architectures: {list(ARCHITECTURES)}")
    guidance = not args.no_guidance
    for arch in args.arch or list(ARCHITECTURES):
        # DeepFloyd IF takes one value per stage
        two_stage = arch == "deepfloyd_if"
        steps = (args.steps, args.steps) if two_stage and args.steps is not None else args.steps
        try:
            cost = pipeline_cost(
                arch,
                height=args.height,
                width=args.width,
                steps=steps,
                guidance=(guidance, guidance) if two_stage else guidance,
                progress=not args.quiet,
            )
        except ValueError as exc:  # the arguments are the only input
            raise InputError(str(exc)) from None
        print(cost, flush=True)
    return EXIT_OK


def add_parser(sub) -> None:
    """Add the ``costs`` subcommand to the subparsers ``sub``."""
    costs = sub.add_parser("costs", help="per-image FLOPs of shipped architectures, with a breakdown")
    costs.add_argument("arch", nargs="*", help="architectures (default: all)")
    costs.add_argument("--steps", type=positive_int, default=None)
    costs.add_argument("--height", type=positive_int, default=None)
    costs.add_argument("--width", type=positive_int, default=None)
    costs.add_argument("--no-guidance", action="store_true", help="no classifier-free guidance")
    costs.add_argument("-q", "--quiet", action="store_true", help="no progress bar while FLOPs are counted")
    costs.set_defaults(func=run)
