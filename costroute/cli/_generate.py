"""``costroute generate``: route a file of prompts with a saved router and make the images."""

from __future__ import annotations

import argparse

import os
import sys
import warnings

from ._common import (
    EXIT_FAILURE,
    EXIT_OK,
    add_penalty_arguments,
    add_prompt_arguments,
    add_trust_argument,
    load_router,
    nonnegative_int,
    positive_int,
    report_warnings,
    say,
)
from ._prompt_files import InputError, read_prompts


def _check_output_folder(path: str) -> None:
    if os.path.exists(path) and not os.path.isdir(path):
        raise InputError(f"--out {path!r} is a file; give a folder for the images (created if needed)")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise InputError(f"cannot create the folder {path!r}: its parent {parent!r} does not exist")


def _write_generation(args: argparse.Namespace, plan, result) -> str:
    """Save the images there are and ``images.csv``; returns the CSV's path."""
    os.makedirs(args.out, exist_ok=True)
    saved = iter(result.save(args.out, missing="skip"))
    frame = result.to_frame()
    frame["expected_quality"] = plan.expected_quality
    frame["file"] = [os.path.basename(next(saved)) if made else "" for made in (s == "made" for s in result.status())]
    path = os.path.join(args.out, "images.csv")
    frame.to_csv(path, index=False, float_format="%.6g")
    return path


def run(args: argparse.Namespace) -> int:
    from ..execution import GenerationError
    from ..generators import BackendGenerator

    prompts = read_prompts(args.prompts, args.column)
    _check_output_folder(args.out)
    say(args, f"{len(prompts)} prompt(s) to generate; loading the router {args.router!r} ...")
    router = load_router(args)
    plain = [spec.name for spec in router.generators_ if not isinstance(spec, BackendGenerator)]
    if plain:
        raise InputError(
            f"the router's generator(s) {plain} are plain GeneratorSpecs (a name and a cost) and cannot make "
            "images; fit and save a router over generators with a backend: presets "
            "(costroute.generators.presets.paper_pool()), DiffusersGenerator or CallableGenerator"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = router.route(prompts, cost_penalty=args.cost_penalty, budget=args.budget)
    report_warnings(caught, "generate")
    say(args, f"routed with cost_penalty={plan.cost_penalty:.4g}: "
               + ", ".join(f"{name} {idx.size}" for name, idx in plan.groups().items()) + "; generating ...")
    try:
        result = plan.generate(seed=args.seed, batch_size=args.batch_size, progress=not args.quiet)
    except GenerationError as exc:
        csv_path = _write_generation(args, plan, exc.result)
        print(f"costroute generate: error: {exc}", file=sys.stderr)
        print(f"costroute generate: the {len(exc.result) - len(exc.result.missing)} images made and {csv_path!r} "
              "were written", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt as exc:
        partial = getattr(exc, "result", None)
        if partial is not None:
            _write_generation(args, plan, partial)
        raise
    csv_path = _write_generation(args, plan, result)
    say(args, f"{len(result)} images in {args.out!r} ({result.total_seconds:.1f} s, {len(result.fallbacks)} "
               f"fallback(s), total cost {result.total_cost:.4g} {result.cost_unit}); table: {csv_path!r}")
    return EXIT_OK


def add_parser(sub) -> None:
    """Add the ``generate`` subcommand to the subparsers ``sub``."""
    generate = sub.add_parser("generate", help="route a file of prompts with a saved router and make the images")
    add_prompt_arguments(generate)
    generate.add_argument("--router", required=True, metavar="ROUTER.skops",
                          help="a saved router whose generators can make images (presets, DiffusersGenerator)")
    generate.add_argument("--out", required=True, metavar="DIR", help="folder for the images and images.csv")
    add_trust_argument(generate)
    generate.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the run (default: 0)")
    generate.add_argument("--batch-size", type=positive_int, default=8, help="largest batch per generator call")
    add_penalty_arguments(generate)
    generate.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    generate.set_defaults(func=run)
