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
    generators_of,
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
    result.save(args.out, missing="skip")
    frame = result.to_frame()
    frame["expected_quality"] = plan.expected_quality
    frame["file"] = [result.file_name(i) or "" for i in range(len(result))]
    path = os.path.join(args.out, "images.csv")
    frame.to_csv(path, index=False, float_format="%.6g")
    return path


def _write_cascade(args: argparse.Namespace, result) -> str:
    """Save every candidate image there is and ``images.csv`` (candidates and scores); returns the CSV's path."""
    os.makedirs(args.out, exist_ok=True)
    result.save(args.out, candidates=True, missing="skip")
    frame = result.to_frame()
    frame["file"] = [result.file_name(i, g) if g is not None else "" for i, g in enumerate(result.returned)]
    frame["candidate_files"] = [
        ";".join(result.file_name(i, g) for g in made if g != result.returned[i])
        for i, made in enumerate(result.candidates)
    ]
    path = os.path.join(args.out, "images.csv")
    frame.to_csv(path, index=False, float_format="%.6g")
    return path


def _check_can_generate(router) -> None:
    from ..generators import BackendGenerator

    plain = [spec.name for spec in generators_of(router) if not isinstance(spec, BackendGenerator)]
    if plain:
        raise InputError(
            f"the router's generator(s) {plain} are plain GeneratorSpecs (a name and a cost) and cannot make "
            "images; fit and save a router over generators with a backend: presets "
            "(costroute.generators.presets.paper_pool()), DiffusersGenerator or CallableGenerator (a store's "
            "DiffusersGenerator and preset generators are rebuilt by load_collection and `costroute fit`)"
        )
    if hasattr(router, "first_choices") and router.scorer is None:
        raise InputError(
            "the CascadeRouter has no scorer to verify images with (`costroute fit --verify` keeps the store's "
            "scorer when it can be rebuilt); give the CascadeRouter a scorer and save it again"
        )


def _run_cascade(args: argparse.Namespace, cascade, prompts) -> int:
    from ..execution import GenerationError

    say(args, "running the cascade: route, generate, score, escalate while it pays ...")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = cascade.generate(
                prompts,
                seed=args.seed,
                batch_size=args.batch_size,
                progress=not args.quiet,
                cost_penalty=args.cost_penalty,
                budget=args.budget,
            )
        except GenerationError as exc:
            report_warnings(caught, "generate")
            csv_path = _write_cascade(args, exc.result)
            print(f"costroute generate: error: {exc}", file=sys.stderr)
            print(f"costroute generate: the images made and {csv_path!r} were written", file=sys.stderr)
            return EXIT_FAILURE
        except KeyboardInterrupt as exc:
            partial = getattr(exc, "result", None)
            if partial is not None:
                _write_cascade(args, partial)
            raise
    report_warnings(caught, "generate")
    csv_path = _write_cascade(args, result)
    made = sum(len(c) for c in result.candidates)
    escalated = sum(len(c) > 1 for c in result.candidates)
    say(
        args,
        f"{len(result)} prompts in {args.out!r}: {made} images made ({escalated} prompt(s) escalated), "
        f"{int(result.scores.notna().to_numpy().sum())} scored, cost_penalty={result.cost_penalty:.4g}, "
        f"mean normalised cost {result.normalized_cost.mean():.4f}, total cost {result.total_cost:.4g} "
        f"{result.cost_unit}; table: {csv_path!r}",
    )
    return EXIT_FAILURE if result.missing else EXIT_OK


def run(args: argparse.Namespace) -> int:
    from ..execution import GenerationError

    prompts = read_prompts(args.prompts, args.column)
    _check_output_folder(args.out)
    say(args, f"{len(prompts)} prompt(s) to generate; loading the router {args.router!r} ...")
    router = load_router(args)
    _check_can_generate(router)
    if hasattr(router, "first_choices"):
        return _run_cascade(args, router, prompts)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = router.route(prompts, cost_penalty=args.cost_penalty, budget=args.budget)
    report_warnings(caught, "generate")
    say(
        args,
        f"routed with cost_penalty={plan.cost_penalty:.4g}: "
        + ", ".join(f"{name} {idx.size}" for name, idx in plan.groups().items())
        + "; generating ...",
    )
    try:
        result = plan.generate(seed=args.seed, batch_size=args.batch_size, progress=not args.quiet)
    except GenerationError as exc:
        csv_path = _write_generation(args, plan, exc.result)
        print(f"costroute generate: error: {exc}", file=sys.stderr)
        print(
            f"costroute generate: the {len(exc.result) - len(exc.result.missing)} images made and {csv_path!r} "
            "were written",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    except KeyboardInterrupt as exc:
        partial = getattr(exc, "result", None)
        if partial is not None:
            _write_generation(args, plan, partial)
        raise
    csv_path = _write_generation(args, plan, result)
    say(
        args,
        f"{len(result)} images in {args.out!r} ({result.total_seconds:.1f} s, {len(result.fallbacks)} "
        f"fallback(s), total cost {result.total_cost:.4g} {result.cost_unit}); table: {csv_path!r}",
    )
    return EXIT_OK


def add_parser(sub) -> None:
    """Add the ``generate`` subcommand to the subparsers ``sub``."""
    generate = sub.add_parser(
        "generate",
        help="route a file of prompts with a saved router and make the images; "
        "with a saved CascadeRouter, also score them and escalate",
    )
    add_prompt_arguments(generate)
    generate.add_argument(
        "--router",
        required=True,
        metavar="ROUTER.skops",
        help="a saved CostAwareRouter or CascadeRouter whose generators can make images (presets, DiffusersGenerator)",
    )
    generate.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="folder for the images and images.csv (a cascade's candidates and scores too)",
    )
    add_trust_argument(generate)
    generate.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the run (default: 0)")
    generate.add_argument("--batch-size", type=positive_int, default=8, help="largest batch per generator call")
    add_penalty_arguments(generate)
    generate.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    generate.set_defaults(func=run)
