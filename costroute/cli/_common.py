"""What the subcommands share: exit codes, argument types, messages, loading and fitting routers."""

from __future__ import annotations

import argparse
import math
import sys
import time

from ._prompt_files import InputError

DATASETS = ("genai-bench", "agiqa3k-alignment", "agiqa3k-quality")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


def nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be finite and >= 0, got {text!r}")
    return value


def nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


def say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(f"costroute {args.command}: {message}", file=sys.stderr, flush=True)


#: Warnings meant for developers, never printed by the command.
_DEVELOPER_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning, ResourceWarning)


def report_warnings(caught, command: str = "route", skip: tuple[type[Warning], ...] = ()) -> None:
    """Print each distinct warning once, as one line.

    Deprecation notices and resource warnings (developers' matters) are dropped, and so is any
    category in ``skip`` (what the command reports in its own words).
    """
    seen = set()
    for warning in caught:
        text = str(warning.message)
        if issubclass(warning.category, _DEVELOPER_WARNINGS + tuple(skip)) or text in seen:
            continue
        seen.add(text)
        print(f"costroute {command}: warning: {text}", file=sys.stderr)


def load_training_data(name: str, cost_unit: str):
    from ..datasets import load_agiqa3k, load_genai_bench

    if name == "genai-bench":
        return load_genai_bench(cost_unit=cost_unit)
    return load_agiqa3k(target=name.split("-", 1)[1], cost_unit=cost_unit)


# options that fit a router: refused next to --router, defaults filled in otherwise
_FIT_OPTIONS = {"dataset": "genai-bench", "features": "minilm", "quality_model": "knn", "cost_unit": None}


def fit_defaults(args: argparse.Namespace) -> None:
    """Fill in the defaults of the options that fit a router (they are ``None`` when not given)."""
    for key, default in _FIT_OPTIONS.items():
        if getattr(args, key) is None:
            setattr(args, key, default)


def refuse_fit_options(args: argparse.Namespace) -> None:
    given = [f"--{key.replace('_', '-')}" for key in _FIT_OPTIONS if getattr(args, key) is not None]
    if given:
        raise InputError(
            f"{', '.join(given)} fit a router, but --router gives a fitted one, used as it is; drop "
            f"{'them' if len(given) > 1 else 'it'}, or fit a new router with `costroute fit`"
        )


def load_router(args: argparse.Namespace):
    """The fitted CostAwareRouter or CascadeRouter saved at ``args.router`` (bad files exit 2)."""
    from ..cascade import CascadeRouter
    from ..io import load
    from ..router import CostAwareRouter

    path = args.router
    try:
        router = load(path, trusted=args.trust or None)
    except OSError as exc:
        raise InputError(f"cannot read the router file {path!r}: {exc.strerror or exc}") from None
    except ValueError as exc:  # untrusted types, a pickle, not a skops file
        raise InputError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - a damaged file: say so instead of a traceback
        raise InputError(f"cannot load the router file {path!r}: {type(exc).__name__}: {exc}") from None
    if not isinstance(router, (CostAwareRouter, CascadeRouter)):
        raise InputError(
            f"{path!r} holds a {type(router).__name__}, not a CostAwareRouter or CascadeRouter; save a fitted one "
            "(costroute fit, or costroute.io.save(router, path))"
        )
    cascade = isinstance(router, CascadeRouter)
    if not hasattr(router, "posterior_" if cascade else "quality_model_"):
        raise InputError(f"{path!r} holds a {type(router).__name__} that is not fitted; fit it before saving it")
    inner = router.router_ if cascade else router
    if inner.features is None:
        raise InputError(
            f"{path!r} holds a router fitted on numeric features (features=None); it cannot route prompt text"
        )
    inner.set_params(progress=not args.quiet)
    return router


def generators_of(router):
    """The fitted generators of a CostAwareRouter or of a CascadeRouter's router."""
    return getattr(router, "router_", router).generators_


def fit_router(args: argparse.Namespace, what: str):
    """Load the ``--dataset`` ratings and fit a router on them, saying so on stderr."""
    from .. import CostAwareRouter

    say(args, f"{what}loading the {args.dataset} ratings ...")
    start = time.perf_counter()
    data = load_training_data(args.dataset, args.cost_unit or "flops")
    say(
        args,
        f"fitting the router on {len(data.prompts)} rated prompts (features={args.features}, "
        f"quality_model={args.quality_model}) ...",
    )
    router = CostAwareRouter(
        data.generators,
        features=args.features,
        quality_model=args.quality_model,
        random_state=0,
        progress=not args.quiet,
    ).fit(data.prompts, data.quality)
    say(args, f"fitted in {time.perf_counter() - start:.1f} s")
    return router


def add_prompt_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompts", help="text file with one prompt per line, a .csv file, or - for standard input")
    parser.add_argument(
        "--column",
        default=None,
        help="read the input as CSV and take the prompts from this column "
        "(default for .csv files: the column 'prompt', else the only column)",
    )


def add_trust_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust",
        action="append",
        default=None,
        metavar="TYPE",
        help="also trust this type (module.Name) in the router file, after reviewing it; repeatable",
    )


def add_penalty_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cost-penalty",
        type=nonnegative_float,
        default=None,
        help="lambda >= 0 (default: the router's, 0 for a fresh one); with --budget, the least lambda used",
    )
    parser.add_argument(
        "--budget",
        type=nonnegative_float,
        default=None,
        help="target mean normalised cost of the batch, >= 0 (lambda is raised until it is met)",
    )
