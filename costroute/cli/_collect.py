"""``costroute collect``: generate and score every prompt x generator x seed into a store."""

from __future__ import annotations

import argparse
import math
import sys
import warnings

from ._common import EXIT_FAILURE, EXIT_OK, positive_int, report_warnings, say
from ._prompt_files import InputError, read_prompts


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be finite and > 0, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    from ..collect import ConcurrentWriterWarning, FailedImagesWarning, collect, parse_generator, parse_scorer
    from ..collect._arguments import check_arguments
    from ..collect._specs import parse_backend

    prompts = read_prompts(args.prompts, args.column)
    try:  # every argument is checked before any cost is counted or model loaded
        generators = [parse_generator(text) for text in args.generators]
        scorers = [parse_scorer(text) for text in args.scorer]
        backend = parse_backend(args.backend, args.workers, args.address, args.connect_timeout)
        check_arguments(
            prompts,
            generators,
            scorers,
            args.store,
            args.seeds,
            args.batch_size,
            backend,
            save_images=args.save_images,
            regenerate=args.regenerate,
        )
    except (ValueError, TypeError, OSError, ImportError) as exc:
        raise InputError(str(exc)) from None
    say(
        args,
        f"{len(prompts)} prompt(s) x {len(generators)} generator(s) x {args.seeds} seed(s), scored by "
        f"{', '.join(s.name for s in scorers)}, into {args.store}",
    )
    caught: list[warnings.WarningMessage] = []

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ConcurrentWriterWarning):  # now, not after the run: it is running beside another
            print(f"costroute collect: warning: {message}", file=sys.stderr, flush=True)
        else:
            caught.append(warnings.WarningMessage(message, category, filename, lineno, file, line))

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        summary = collect(
            prompts,
            generators,
            scorers,
            args.store,
            seeds=args.seeds,
            batch_size=args.batch_size,
            backend=backend,
            progress=not args.quiet,
            save_images=args.save_images,
            regenerate=args.regenerate,
        )
    report_warnings(caught, "collect", skip=(FailedImagesWarning,))  # failures are reported below
    say(args, str(summary))
    if summary.failures:
        for (prompt, generator, seed), why in list(summary.failures.items())[:5]:
            print(f"costroute collect: failed: {generator} seed {seed} {prompt[:60]!r}: {why}", file=sys.stderr)
        print(
            f"costroute collect: error: {len(summary.failures)} image(s) failed; run the same command again "
            "to retry them",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    return EXIT_OK


def add_parser(sub) -> None:
    """Add the ``collect`` subcommand to the subparsers ``sub``."""
    collect = sub.add_parser(
        "collect",
        help="generate every prompt with every generator and seed, score every image, store it (SQLite; resumable)",
        description="Generate every prompt with every generator (and seed), score every image with every scorer and "
        "store one row per (prompt, generator, seed, scorer) in an SQLite file. Running the same command "
        "again resumes: stored cells are skipped. Generators: [NAME=]PRESET[:STEPS] or "
        "[NAME=]diffusers:MODEL[:STEPS] (MODEL a local folder or a hub id). Scorers: [NAME=]clip[:MODEL] "
        "or [NAME=]vqa[:MODEL].",
    )
    collect.add_argument("prompts", help="text file with one prompt per line, a .csv file, or - for standard input")
    collect.add_argument("--column", default=None, help="read the input as CSV and take the prompts from this column")
    collect.add_argument(
        "--generators",
        nargs="+",
        required=True,
        metavar="SPEC",
        help="generators: [NAME=]PRESET[:STEPS] or [NAME=]diffusers:MODEL[:STEPS]",
    )
    collect.add_argument(
        "--scorer", nargs="+", required=True, metavar="SPEC", help="scorers: [NAME=]clip[:MODEL] or [NAME=]vqa[:MODEL]"
    )
    collect.add_argument("--store", required=True, help="the SQLite file (created when missing)")
    collect.add_argument("--seeds", type=positive_int, default=1, help="images per prompt and generator (default 1)")
    collect.add_argument("--batch-size", type=positive_int, default=8, help="images per generator call (default 8)")
    collect.add_argument(
        "--save-images",
        default=None,
        metavar="FOLDER",
        help="save every image there (PNG named by content hash); lets a later scorer reuse them",
    )
    collect.add_argument(
        "--regenerate", action="store_true", help="generate again the unsaved images a newly added scorer needs"
    )
    collect.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="run here (local, the default) or on a pool of Ray actors, one per GPU (ray)",
    )
    collect.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="with --backend ray: actors in the pool (default: one per GPU, else one per CPU)",
    )
    collect.add_argument(
        "--address",
        default=None,
        help="with --backend ray: the cluster to attach to (auto, HOST:PORT; default: $RAY_ADDRESS, "
        "else a local instance started for the run)",
    )
    collect.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="with --backend ray: seconds to wait for the cluster at the address to answer before "
        "exiting with status 2 (default 30)",
    )
    collect.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    collect.set_defaults(func=run)
