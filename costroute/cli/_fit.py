"""``costroute fit``: fit a router on a shipped dataset or a collection store and save it (skops)."""

from __future__ import annotations

import argparse
import os
import warnings

from ._common import DATASETS, EXIT_OK, fit_router, generators_of, nonnegative_float, report_warnings, say
from ._prompt_files import InputError


def _dataset(text: str) -> str:
    """A shipped dataset name or a collection store path (``.sqlite``)."""
    if text in DATASETS or text.lower().endswith(".sqlite"):
        return text
    raise argparse.ArgumentTypeError(
        f"unknown dataset {text!r}; choose one of {', '.join(DATASETS)}, or a collection store STORE.sqlite"
    )


def _missing(args: argparse.Namespace) -> str:
    """What ``load_collection`` does with missing cells: ``--missing``, or ``drop`` for ``--drop-incomplete``."""
    missing = getattr(args, "missing", None) or "raise"
    if getattr(args, "drop_incomplete", False):
        if missing == "nan":
            raise InputError("--drop-incomplete is --missing drop; it contradicts --missing nan: pass one of them")
        return "drop"
    return missing


def _load_store(args: argparse.Namespace):
    """A collection store as a dataset (the scorer given by ``--scorer`` is the quality)."""
    path = args.dataset
    if os.path.isdir(path):
        raise InputError(f"{path!r} is a directory, not a collection store; give the store's .sqlite file")
    if not os.path.isfile(path):
        raise InputError(f"no collection store {path!r}: the file does not exist")
    if args.cost_unit is not None:
        raise InputError(
            "--cost-unit chooses the cost table of a shipped dataset; a collection store's costs "
            "are in its generators' own unit: drop --cost-unit"
        )
    from ..datasets import load_collection

    try:
        return load_collection(path, scorer=getattr(args, "scorer", None), missing=_missing(args))
    except ValueError as exc:  # an ambiguous or unknown scorer, missing cells: the arguments or the store
        raise InputError(str(exc)) from None


def _check_output_file(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise InputError(f"the output {path!r} is a directory; give a file name such as router.skops")
    if not os.path.isdir(folder):
        raise InputError(f"cannot write {path!r}: the folder {folder!r} does not exist")


def _verifier(args: argparse.Namespace, data, name: str):
    """The scorer ``name`` of the store, rebuilt (or None), and its cost in the generators' unit (or None)."""
    if name not in data.scores:
        raise InputError(f"--verify {name!r} is not a scorer of the store; its scorers are {sorted(data.scores)}")
    if name == data.scorer:
        raise InputError(
            f"--verify {name!r} is the quality scorer itself (--scorer): a verifier whose scores are the "
            "quality looks perfect to the cascade; verify with another scorer of the store"
        )
    scorer = data.scorer_specs[name]
    cost, unit = data.scorer_costs[name]
    if scorer is not None and cost is not None and unit != data.cost_unit:
        raise InputError(
            f"the scorer {name!r} costs {cost:g} {unit} per image and the generators are in "
            f"{data.cost_unit!r}: collect both in one unit so that a scoring and an image can be compared"
        )
    scoring_cost = cost if cost is not None and unit == data.cost_unit else None
    if scorer is None and scoring_cost is None:
        raise InputError(
            f"the scorer {name!r} cannot be rebuilt from the store ({data.unbuilt_scorers[name]}) "
            f"and its cost is not in the generators' unit {data.cost_unit!r}"
        )
    return scorer, scoring_cost


def _fit_cascade(args: argparse.Namespace, data, router):
    """A CascadeRouter over ``router`` that verifies images with the store's scorer(s) ``--verify``."""
    from ..cascade import CascadeRouter

    names = list(dict.fromkeys(args.verify))
    if len(names) < len(args.verify):
        raise InputError(f"--verify names a scorer twice: {args.verify}")
    built = {name: _verifier(args, data, name) for name in names}
    unbuilt = [name for name, (scorer, _) in built.items() if scorer is None]
    for name in unbuilt:
        warnings.warn(
            f"the scorer {name!r} cannot be rebuilt from the store ({data.unbuilt_scorers[name]}): "
            "the saved cascade routes and simulates, but `costroute generate` cannot score with it",
            UserWarning,
            stacklevel=2,
        )
    costs = [cost for _, cost in built.values()]
    if any(cost is None for cost in costs):  # each rebuilt scorer then counts its own cost
        costs = None
    scorers = None if unbuilt else {name: scorer for name, (scorer, _) in built.items()}
    if len(names) == 1:
        scorers = None if scorers is None else scorers[names[0]]
        costs = None if costs is None else costs[0]
    say(
        args,
        f"fitting a cascade on {len(data.prompts)} rated prompts of {args.dataset!r}: quality {data.scorer!r}, "
        f"verified by {', '.join(map(repr, names))} (policy={args.policy}, features={args.features}, "
        f"quality_model={args.quality_model}) ...",
    )
    scores = data.scores[names[0]] if len(names) == 1 else {name: data.scores[name] for name in names}
    return CascadeRouter(router, scorer=scorers, scoring_cost=costs, random_state=0, policy=args.policy).fit(
        data.prompts, data.quality, scores=scores
    )


def run(args: argparse.Namespace) -> int:
    from .. import CostAwareRouter
    from ..io import save

    _check_output_file(args.output)
    store = args.dataset.lower().endswith(".sqlite")
    if args.verify is not None and not store:
        raise InputError(
            "--verify names a scorer of a collection store; pass --dataset STORE.sqlite (the shipped "
            "datasets hold human ratings, no scorer's scores)"
        )
    if not store:
        given = [
            flag
            for flag, value in (
                ("--scorer", args.scorer),
                ("--drop-incomplete", args.drop_incomplete),
                ("--missing", args.missing),
            )
            if value
        ]
        if given:
            raise InputError(
                f"{' and '.join(given)} apply to a collection store STORE.sqlite, not to the shipped "
                f"dataset {args.dataset!r}: drop {'them' if len(given) > 1 else 'it'}"
            )
    if store and _missing(args) == "nan" and args.quality_model != "lowrank":
        raise InputError(
            f"--missing nan loads the store with NaN where no image was made or scored, and only "
            f"--quality-model lowrank fits such a matrix (--quality-model {args.quality_model} needs every "
            "cell): add --quality-model lowrank, or use --drop-incomplete to keep the complete prompts only"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if store:
            data = _load_store(args)
            dropped = list(getattr(data, "dropped", None) or [])
            if _missing(args) == "nan":
                nan = int(data.quality.isna().to_numpy().sum())
                say(
                    args,
                    f"--missing nan: {nan} of {data.quality.size} quality cells are NaN (no image made or scored)"
                    + (f"; left out {len(dropped)} prompt(s) with no cell at all" if dropped else ""),
                )
            elif dropped:
                say(args, f"left out {len(dropped)} prompt(s) with missing cells (--drop-incomplete)")
            router = CostAwareRouter(
                data.generators,
                features=args.features,
                quality_model=args.quality_model,
                random_state=0,
                progress=not args.quiet,
            )
            try:
                if args.verify is not None:
                    model = _fit_cascade(args, data, router)
                else:
                    say(
                        args,
                        f"fitting the router on {len(data.prompts)} rated prompts of {args.dataset!r} "
                        f"(features={args.features}, quality_model={args.quality_model}) ...",
                    )
                    model = router.fit(data.prompts, data.quality)
            except ValueError as exc:  # the store's ratings: too few prompts, infinite or NaN cells
                raise InputError(
                    f"cannot fit a {'cascade' if args.verify else 'router'} on the store {args.dataset!r}: {exc}"
                ) from None
        else:
            model = fit_router(args, "")
        model.set_params(cost_penalty=args.cost_penalty or 0.0, budget=args.budget)
        save(model, args.output)
    report_warnings(caught, "fit")
    generators = generators_of(model)
    verified = f", verified by {', '.join(map(repr, args.verify))}" if args.verify is not None else ""
    say(
        args,
        f"saved the {'cascade' if args.verify is not None else 'router'} to {args.output!r}: generators {', '.join(generators.names)} "
        f"(costs in {generators.cost_unit}){verified}, cost_penalty={model.cost_penalty:g}, budget={model.budget}",
    )
    return EXIT_OK


def add_parser(sub) -> None:
    """Add the ``fit`` subcommand to the subparsers ``sub``."""
    from ..router import FEATURE_CHOICES, QUALITY_MODEL_CHOICES

    fit = sub.add_parser(
        "fit",
        help="fit a router (or, with --verify, a cascade) on a rated dataset or a collection "
        "store and save it (skops format)",
    )
    fit.add_argument(
        "--dataset",
        type=_dataset,
        default="genai-bench",
        metavar="DATASET",
        help=f"training ratings: one of {', '.join(DATASETS)} (default: %(default)s), or a collection "
        "store STORE.sqlite",
    )
    fit.add_argument(
        "--scorer",
        default=None,
        metavar="NAME",
        help="with a collection store: the scorer whose scores are the quality (default: its only one)",
    )
    fit.add_argument(
        "--verify",
        default=None,
        nargs="+",
        metavar="SCORER",
        help="with a collection store: fit a CascadeRouter that scores images with this scorer of the store "
        "(or these: several, cheap and dear, the cascade choosing per image which to run) and escalates to "
        "another generator when that pays",
    )
    fit.add_argument(
        "--policy",
        choices=("index", "myopic"),
        default="index",
        help="with --verify: how the cascade searches the generators (default: %(default)s; see docs/cascade.md)",
    )
    fit.add_argument(
        "--drop-incomplete",
        action="store_true",
        help="with a collection store: leave out the prompts missing a generator's score (an interrupted "
        "or failed collect) instead of refusing the store",
    )
    fit.add_argument(
        "--missing",
        choices=("raise", "drop", "nan"),
        default=None,
        help="with a collection store: what to do with missing cells: refuse the store (raise, the default), "
        "leave out the prompts that lack one (drop, as --drop-incomplete), or load NaN there (nan: the "
        "sparse store of a service that sends each prompt to one or a few generators; needs "
        "--quality-model lowrank)",
    )
    fit.add_argument("-o", "--output", required=True, metavar="ROUTER.skops", help="the file to write")
    fit.add_argument(
        "--cost-unit", choices=("flops", "usd"), default=None, help="cost table of a shipped dataset (default: flops)"
    )
    fit.add_argument("--features", choices=FEATURE_CHOICES, default="minilm")
    fit.add_argument("--quality-model", choices=QUALITY_MODEL_CHOICES, default="knn")
    fit.add_argument(
        "--cost-penalty",
        type=nonnegative_float,
        default=None,
        help="lambda >= 0 stored in the router (default 0); route/generate may override it",
    )
    fit.add_argument(
        "--budget",
        type=nonnegative_float,
        default=None,
        help="target mean normalised cost stored in the router; route/generate may override it",
    )
    fit.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    fit.set_defaults(func=run)
