"""The ``costroute`` command: route a file of prompts, or print per-image costs.

Examples
--------
::

    costroute route prompts.txt --budget 0.3            # fit on GenAI-Bench, route, CSV to stdout
    costroute route - --cost-penalty 0.2 < prompts.txt
    costroute route prompts.csv --column text -q        # prompts from a CSV column, no progress
    costroute costs sdxl --steps 25                     # FLOPs breakdown of one image

Input
-----
``route`` reads UTF-8 text (a byte-order mark and CRLF endings are fine). A file whose name
ends in ``.csv``, or any input when ``--column`` is given (the way to read CSV from standard
input), is CSV: a header row, then one row per prompt, with the quoting and multi-line
fields of Python's :mod:`csv` module. The prompts come from the ``--column`` column, by
default the column named ``prompt``, else the only column; blank lines are skipped and an
empty field is an empty prompt. Any other input holds one prompt per line: blank lines
inside it are (empty) prompts, trailing blank lines are not.

Every argument is checked before the training data is loaded or anything is fitted. Long
steps (loading the ratings, fitting: 10-40 s) report on stderr; ``-q/--quiet`` silences
everything there but warnings and errors.

Exit status
-----------
0
    Success.
1
    The command could not complete: the training data cannot be loaded, fitting or routing
    failed, or the output cannot be written.
2
    Usage or bad input: an unknown option or a bad value (``--budget`` and
    ``--cost-penalty`` must be finite and >= 0), a prompts file that is missing, unreadable,
    not UTF-8, holds no prompts, or lacks the column to read.
130
    Interrupted (Ctrl-C).
141
    Standard output was closed early (``costroute route ... | head``): the command stops
    quietly, with the status of a program ended by SIGPIPE.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import io
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence

DATASETS = ("genai-bench", "agiqa3k-alignment", "agiqa3k-quality")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


class _InputError(Exception):
    """Bad input or arguments found while running a command (exit status 2)."""


# ---------------------------------------------------------------------- argument types
def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be finite and >= 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


# ---------------------------------------------------------------------- reading prompts
def _read_bytes(source: str) -> tuple[bytes, str]:
    """The raw input and the name to report it by."""
    if source == "-":
        return sys.stdin.buffer.read(), "standard input"
    try:
        with open(source, "rb") as fh:
            return fh.read(), repr(source)
    except OSError as exc:
        raise _InputError(f"cannot read the prompts file {source!r}: {exc.strerror or exc}") from None


def _decode(data: bytes, where: str) -> str:
    """``data`` as UTF-8 text (a byte-order mark dropped), or an error naming the line."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _InputError(
            f"{where} starts with a UTF-16 byte-order mark; expected UTF-8. Convert it, e.g. "
            "`iconv -f UTF-16 -t UTF-8`"
        )
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _InputError(
            f"{where}, line {line}: byte 0x{data[exc.start]:02x} (byte {column} of the line) is not "
            "valid UTF-8; expected UTF-8 text. Re-save it as UTF-8, e.g. `iconv -f LATIN1 -t UTF-8`"
        ) from None


def _text_prompts(text: str) -> list[str]:
    prompts = [line.rstrip("\r\n") for line in io.StringIO(text, newline="")]
    while prompts and not prompts[-1]:
        prompts.pop()
    return prompts


def _csv_prompts(text: str, where: str, column: str | None) -> list[str]:
    reader = csv.reader(io.StringIO(text, newline=""))
    prompts: list[str] = []
    index = None
    try:
        for row in reader:
            if index is None:
                if not row:
                    continue  # blank lines before the header
                header = row
                index = _pick_column(header, where, column)
                continue
            if not row:
                continue
            if index >= len(row):
                raise _InputError(
                    f"{where}, line {reader.line_num}: {len(row)} field(s), so no {header[index]!r} value "
                    f"(the header has {len(header)} columns)"
                )
            prompts.append(row[index])
    except csv.Error as exc:
        raise _InputError(f"{where}, line {reader.line_num}: not valid CSV: {exc}") from None
    return prompts


def _pick_column(header: list[str], where: str, column: str | None) -> int:
    names = [name.strip() for name in header]
    wanted = column if column is not None else "prompt"
    if names.count(wanted) > 1:
        raise _InputError(f"{where} has {names.count(wanted)} columns named {wanted!r}; rename one")
    if wanted in names:
        return names.index(wanted)
    if column is not None:
        raise _InputError(f"{where} has no column {column!r}; its columns are {names}")
    if len(names) == 1:
        return 0
    raise _InputError(
        f"{where} has the columns {names} and none is named 'prompt'; choose one with --column"
    )


def _read_prompts(source: str, column: str | None = None) -> list[str]:
    """The prompts of a text or CSV file (``-`` for standard input); see the module docstring."""
    data, where = _read_bytes(source)
    text = _decode(data, where)
    if column is not None or source.lower().endswith(".csv"):
        prompts = _csv_prompts(text, where, column)
        what = "one row per prompt under a header"
    else:
        prompts = _text_prompts(text)
        what = "one prompt per line"
    if not prompts:
        raise _InputError(f"no prompts in {where} ({what})")
    return prompts


# ---------------------------------------------------------------------- commands
def _say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(f"costroute {args.command}: {message}", file=sys.stderr, flush=True)


def _report_warnings(caught) -> None:
    """Print each distinct warning once, as one line; library deprecation notices are dropped."""
    seen = set()
    for warning in caught:
        text = str(warning.message)
        if issubclass(warning.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning)) or text in seen:
            continue
        seen.add(text)
        print(f"costroute route: warning: {text}", file=sys.stderr)


def _load_training_data(name: str, cost_unit: str):
    from .datasets import load_agiqa3k, load_genai_bench

    if name == "genai-bench":
        return load_genai_bench(cost_unit=cost_unit)
    return load_agiqa3k(target=name.split("-", 1)[1], cost_unit=cost_unit)


def _route(args: argparse.Namespace) -> int:
    from . import CostAwareRouter

    prompts = _read_prompts(args.prompts, args.column)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _say(args, f"{len(prompts)} prompt(s) to route; loading the {args.dataset} ratings ...")
        start = time.perf_counter()
        data = _load_training_data(args.dataset, args.cost_unit)
        _say(args, f"fitting the router on {len(data.prompts)} rated prompts (features={args.features}, "
                   f"quality_model={args.quality_model}) ...")
        router = CostAwareRouter(data.generators, features=args.features, quality_model=args.quality_model,
                                 random_state=0, progress=not args.quiet).fit(data.prompts, data.quality)
        _say(args, f"fitted in {time.perf_counter() - start:.1f} s; routing ...")
        plan = router.route(prompts, cost_penalty=args.cost_penalty, budget=args.budget)
    _report_warnings(caught)
    frame = plan.to_frame()
    for k, name in enumerate(plan.generators.names):
        frame[f"predicted_{name}"] = plan.predicted_quality[:, k]
    frame.to_csv(sys.stdout, index=False, float_format="%.6g")
    sys.stdout.flush()
    _say(args, f"{len(plan)} prompts routed with cost_penalty={plan.cost_penalty:.4g}, "
               f"mean normalised cost {plan.mean_normalized_cost:.4f}, "
               f"total {plan.total_cost:.4g} {plan.generators.cost_unit}")
    if not args.quiet:
        print(plan.summary().round(4).to_string(), file=sys.stderr)
    return EXIT_OK


def _costs(args: argparse.Namespace) -> int:
    from .costs import ARCHITECTURES, pipeline_cost

    unknown = [arch for arch in args.arch if arch not in ARCHITECTURES]
    if unknown:
        raise _InputError(f"unknown architecture(s) {unknown}; valid architectures: {list(ARCHITECTURES)}")
    guidance = not args.no_guidance
    for arch in args.arch or list(ARCHITECTURES):
        # DeepFloyd IF takes one value per stage
        two_stage = arch == "deepfloyd_if"
        steps = (args.steps, args.steps) if two_stage and args.steps is not None else args.steps
        try:
            cost = pipeline_cost(arch, height=args.height, width=args.width, steps=steps,
                                 guidance=(guidance, guidance) if two_stage else guidance,
                                 progress=not args.quiet)
        except ValueError as exc:  # the arguments are the only input
            raise _InputError(str(exc)) from None
        print(cost, flush=True)
    return EXIT_OK


def _collect(args: argparse.Namespace) -> int:
    from .collect import collect, parse_generator, parse_scorer
    from .collect._collect import check_arguments

    prompts = _read_prompts(args.prompts, args.column)
    try:  # every argument is checked before any cost is counted or model loaded
        generators = [parse_generator(text) for text in args.generators]
        scorers = [parse_scorer(text) for text in args.scorer]
        check_arguments(prompts, generators, scorers, args.store, args.seeds, args.batch_size,
                        save_images=args.save_images, regenerate=args.regenerate)
    except (ValueError, TypeError, OSError) as exc:
        raise _InputError(str(exc)) from None
    _say(args, f"{len(prompts)} prompt(s) x {len(generators)} generator(s) x {args.seeds} seed(s), scored by "
               f"{', '.join(s.name for s in scorers)}, into {args.store}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = collect(prompts, generators, scorers, args.store, seeds=args.seeds, batch_size=args.batch_size,
                          progress=not args.quiet, save_images=args.save_images, regenerate=args.regenerate)
    seen = set()
    for warning in caught:
        text = str(warning.message)
        if (issubclass(warning.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning))
                or (issubclass(warning.category, RuntimeWarning) and summary.failures) or text in seen):
            continue  # failures are reported below
        seen.add(text)
        print(f"costroute collect: warning: {text}", file=sys.stderr)
    _say(args, str(summary))
    if summary.failures:
        for (prompt, generator, seed), why in list(summary.failures.items())[:5]:
            print(f"costroute collect: failed: {generator} seed {seed} {prompt[:60]!r}: {why}", file=sys.stderr)
        print(f"costroute collect: error: {len(summary.failures)} image(s) failed; run the same command again "
              "to retry them", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``costroute`` command."""
    from . import __version__
    from .router import FEATURE_CHOICES, QUALITY_MODEL_CHOICES

    parser = argparse.ArgumentParser(
        prog="costroute", description="Cost-aware routing of text-to-image prompts.",
        epilog="Exit status: 0 ok, 1 the command could not complete, 2 usage or bad input, "
               "130 interrupted, 141 output closed early.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    route = sub.add_parser("route", help="fit a router on a rated dataset and route a file of prompts (CSV to stdout)")
    route.add_argument("prompts", help="text file with one prompt per line, a .csv file, or - for standard input")
    route.add_argument("--column", default=None,
                       help="read the input as CSV and take the prompts from this column "
                            "(default for .csv files: the column 'prompt', else the only column)")
    route.add_argument("--dataset", choices=DATASETS, default="genai-bench", help="training ratings (default: %(default)s)")
    route.add_argument("--cost-unit", choices=("flops", "usd"), default="flops")
    route.add_argument("--features", choices=FEATURE_CHOICES, default="minilm")
    route.add_argument("--quality-model", choices=QUALITY_MODEL_CHOICES, default="knn")
    route.add_argument("--cost-penalty", type=_nonnegative_float, default=None,
                       help="lambda >= 0 (default 0); with --budget, the least lambda used")
    route.add_argument("--budget", type=_nonnegative_float, default=None,
                       help="target mean normalised cost of the batch, >= 0 (lambda is raised until it is met)")
    route.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    route.set_defaults(func=_route)

    costs = sub.add_parser("costs", help="per-image FLOPs of shipped architectures, with a breakdown")
    costs.add_argument("arch", nargs="*", help="architectures (default: all)")
    costs.add_argument("--steps", type=_positive_int, default=None)
    costs.add_argument("--height", type=_positive_int, default=None)
    costs.add_argument("--width", type=_positive_int, default=None)
    costs.add_argument("--no-guidance", action="store_true", help="no classifier-free guidance")
    costs.add_argument("-q", "--quiet", action="store_true", help="no progress bar while FLOPs are counted")
    costs.set_defaults(func=_costs)

    collect = sub.add_parser(
        "collect", help="generate every prompt with every generator and seed, score every image, store it (SQLite; "
                        "resumable)",
        description="Generate every prompt with every generator (and seed), score every image with every scorer and "
                    "store one row per (prompt, generator, seed, scorer) in an SQLite file. Running the same command "
                    "again resumes: stored cells are skipped. Generators: [NAME=]PRESET[:STEPS] or "
                    "[NAME=]diffusers:MODEL[:STEPS] (MODEL a local folder or a hub id). Scorers: [NAME=]clip[:MODEL] "
                    "or [NAME=]vqa[:MODEL].")
    collect.add_argument("prompts", help="text file with one prompt per line, a .csv file, or - for standard input")
    collect.add_argument("--column", default=None, help="read the input as CSV and take the prompts from this column")
    collect.add_argument("--generators", nargs="+", required=True, metavar="SPEC",
                         help="generators: [NAME=]PRESET[:STEPS] or [NAME=]diffusers:MODEL[:STEPS]")
    collect.add_argument("--scorer", nargs="+", required=True, metavar="SPEC",
                         help="scorers: [NAME=]clip[:MODEL] or [NAME=]vqa[:MODEL]")
    collect.add_argument("--store", required=True, help="the SQLite file (created when missing)")
    collect.add_argument("--seeds", type=_positive_int, default=1, help="images per prompt and generator (default 1)")
    collect.add_argument("--batch-size", type=_positive_int, default=8, help="images per generator call (default 8)")
    collect.add_argument("--save-images", default=None, metavar="FOLDER",
                         help="save every image there (PNG named by content hash); lets a later scorer reuse them")
    collect.add_argument("--regenerate", action="store_true",
                         help="generate again the unsaved images a newly added scorer needs")
    collect.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    collect.set_defaults(func=_collect)
    return parser


def _discard_stdout() -> None:
    """Point stdout at the null device so that the interpreter's final flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (e.g. captured)
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``costroute`` command with ``argv`` (default: the process's arguments).

    Returns the exit status described in the module docstring; bad input never raises.
    """
    prefix = "costroute"
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help, --version or a usage error, printed by argparse
            status = exc.code if isinstance(exc.code, int) else EXIT_USAGE
        else:
            prefix = f"costroute {args.command}"
            status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows up here rather than at interpreter exit
        return status
    except _InputError as exc:
        print(f"{prefix}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (OSError, ValueError, TypeError) as exc:
        print(f"{prefix}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
