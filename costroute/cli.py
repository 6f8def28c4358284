"""The ``costroute`` command: fit and save a router, route a file of prompts, generate its images, print costs.

Examples
--------
::

    costroute route prompts.txt --budget 0.3            # fit on GenAI-Bench, route, CSV to stdout
    costroute route - --cost-penalty 0.2 < prompts.txt
    costroute route prompts.csv --column text -q        # prompts from a CSV column, no progress
    costroute fit --dataset agiqa3k-quality -o router.skops   # fit once, save (skops, never pickle)
    costroute route prompts.txt --router router.skops   # route with the saved router, no refit
    costroute generate prompts.txt --router presets.skops --out images/ --budget 0.3
    costroute costs sdxl --steps 25                     # FLOPs breakdown of one image

Routers
-------
``fit`` saves a router with :func:`costroute.io.save`; ``route --router`` and ``generate``
load it with :func:`costroute.io.load` (never a pickle), which refuses a file naming a type
outside its allow-list unless ``--trust TYPE`` names it. With ``--router`` the saved router
is used as it is: the options that fit one (``--dataset``, ``--features``,
``--quality-model``, ``--cost-unit``) are refused. ``generate`` needs generators that make
images (presets, ``DiffusersGenerator``); it writes the images and ``images.csv`` into
``--out`` (also when some images fail: exit status 1). See ``docs/persistence.md``.

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
    not UTF-8, holds no prompts, or lacks the column to read; a router file that is missing,
    not a skops file, holds untrusted types or no fitted CostAwareRouter; a router whose
    generators cannot make images (``generate``); an output folder that cannot be used.
130
    Interrupted (Ctrl-C).
141
    Standard output was closed early (``costroute route ... | head``): the command stops
    quietly, with the status of a program ended by SIGPIPE.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence

from ._prompt_files import InputError as _InputError
from ._prompt_files import read_prompts as _read_prompts

DATASETS = ("genai-bench", "agiqa3k-alignment", "agiqa3k-quality")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


# ---------------------------------------------------------------------- argument types
def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be finite and >= 0, got {text!r}")
    return value


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


# ---------------------------------------------------------------------- commands
def _say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(f"costroute {args.command}: {message}", file=sys.stderr, flush=True)


def _report_warnings(caught, command: str = "route") -> None:
    """Print each distinct warning once, as one line; library deprecation notices are dropped."""
    seen = set()
    for warning in caught:
        text = str(warning.message)
        if issubclass(warning.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning)) or text in seen:
            continue
        seen.add(text)
        print(f"costroute {command}: warning: {text}", file=sys.stderr)


def _load_training_data(name: str, cost_unit: str):
    from .datasets import load_agiqa3k, load_genai_bench

    if name == "genai-bench":
        return load_genai_bench(cost_unit=cost_unit)
    return load_agiqa3k(target=name.split("-", 1)[1], cost_unit=cost_unit)


# options that fit a router: refused next to --router, defaults filled in otherwise
_FIT_OPTIONS = {"dataset": "genai-bench", "features": "minilm", "quality_model": "knn", "cost_unit": None}


def _fit_defaults(args: argparse.Namespace) -> None:
    """Fill in the defaults of the options that fit a router (they are ``None`` when not given)."""
    for key, default in _FIT_OPTIONS.items():
        if getattr(args, key) is None:
            setattr(args, key, default)


def _refuse_fit_options(args: argparse.Namespace) -> None:
    given = [f"--{key.replace('_', '-')}" for key in _FIT_OPTIONS if getattr(args, key) is not None]
    if given:
        raise _InputError(
            f"{', '.join(given)} fit a router, but --router gives a fitted one, used as it is; drop "
            f"{'them' if len(given) > 1 else 'it'}, or fit a new router with `costroute fit`"
        )


def _load_router(args: argparse.Namespace):
    """The fitted CostAwareRouter saved at ``args.router`` (bad files exit 2)."""
    from .io import load
    from .router import CostAwareRouter

    path = args.router
    try:
        router = load(path, trusted=args.trust or None)
    except OSError as exc:
        raise _InputError(f"cannot read the router file {path!r}: {exc.strerror or exc}") from None
    except ValueError as exc:  # untrusted types, a pickle, not a skops file
        raise _InputError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - a damaged file: say so instead of a traceback
        raise _InputError(f"cannot load the router file {path!r}: {type(exc).__name__}: {exc}") from None
    if not isinstance(router, CostAwareRouter):
        raise _InputError(
            f"{path!r} holds a {type(router).__name__}, not a CostAwareRouter; save a fitted CostAwareRouter "
            "(costroute fit, or costroute.io.save(router, path))"
        )
    if not hasattr(router, "quality_model_"):
        raise _InputError(f"{path!r} holds a CostAwareRouter that is not fitted; fit it before saving it")
    if router.features is None:
        raise _InputError(
            f"{path!r} holds a router fitted on numeric features (features=None); it cannot route prompt text"
        )
    router.set_params(progress=not args.quiet)
    return router


def _fit_router(args: argparse.Namespace, what: str):
    """Load the ``--dataset`` ratings and fit a router on them, saying so on stderr."""
    from . import CostAwareRouter

    _say(args, f"{what}loading the {args.dataset} ratings ...")
    start = time.perf_counter()
    data = _load_training_data(args.dataset, args.cost_unit or "flops")
    _say(args, f"fitting the router on {len(data.prompts)} rated prompts (features={args.features}, "
               f"quality_model={args.quality_model}) ...")
    router = CostAwareRouter(data.generators, features=args.features, quality_model=args.quality_model,
                             random_state=0, progress=not args.quiet).fit(data.prompts, data.quality)
    _say(args, f"fitted in {time.perf_counter() - start:.1f} s")
    return router


def _route(args: argparse.Namespace) -> int:
    prompts = _read_prompts(args.prompts, args.column)
    if args.router is not None:
        _refuse_fit_options(args)
    else:
        _fit_defaults(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if args.router is not None:
            _say(args, f"{len(prompts)} prompt(s) to route; loading the router {args.router!r} ...")
            router = _load_router(args)
        else:
            router = _fit_router(args, f"{len(prompts)} prompt(s) to route; ")
        _say(args, "routing ...")
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


def _dataset(text: str) -> str:
    """A shipped dataset name or a collection store path (``.sqlite``)."""
    if text in DATASETS or text.lower().endswith(".sqlite"):
        return text
    raise argparse.ArgumentTypeError(
        f"unknown dataset {text!r}; choose one of {', '.join(DATASETS)}, or a collection store STORE.sqlite"
    )


def _load_store(args: argparse.Namespace):
    """A collection store as a dataset (the scorer given by ``--scorer`` is the quality)."""
    path = args.dataset
    if not os.path.isfile(path):
        raise _InputError(f"no collection store {path!r}: the file does not exist")
    if args.cost_unit is not None:
        raise _InputError("--cost-unit chooses the cost table of a shipped dataset; a collection store's costs "
                          "are in its generators' own unit: drop --cost-unit")
    from .datasets import load_collection

    try:
        return load_collection(path, scorer=getattr(args, "scorer", None))
    except ValueError as exc:  # an ambiguous or unknown scorer, missing cells: the arguments or the store
        raise _InputError(str(exc)) from None


def _check_output_file(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise _InputError(f"the output {path!r} is a directory; give a file name such as router.skops")
    if not os.path.isdir(folder):
        raise _InputError(f"cannot write {path!r}: the folder {folder!r} does not exist")


def _fit(args: argparse.Namespace) -> int:
    from . import CostAwareRouter
    from .io import save

    _check_output_file(args.output)
    store = args.dataset.lower().endswith(".sqlite")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if store:
            data = _load_store(args)
            _say(args, f"fitting the router on {len(data.prompts)} rated prompts of {args.dataset!r} "
                       f"(features={args.features}, quality_model={args.quality_model}) ...")
            router = CostAwareRouter(data.generators, features=args.features, quality_model=args.quality_model,
                                     random_state=0, progress=not args.quiet).fit(data.prompts, data.quality)
        else:
            router = _fit_router(args, "")
        router.set_params(cost_penalty=args.cost_penalty or 0.0, budget=args.budget)
        save(router, args.output)
    _report_warnings(caught, "fit")
    names = ", ".join(router.generators_.names)
    _say(args, f"saved the router to {args.output!r}: generators {names} (costs in {router.generators_.cost_unit}), "
               f"cost_penalty={router.cost_penalty:g}, budget={router.budget}")
    return EXIT_OK


def _check_output_folder(path: str) -> None:
    if os.path.exists(path) and not os.path.isdir(path):
        raise _InputError(f"--out {path!r} is a file; give a folder for the images (created if needed)")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise _InputError(f"cannot create the folder {path!r}: its parent {parent!r} does not exist")


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


def _generate(args: argparse.Namespace) -> int:
    from .execution import GenerationError
    from .generators import BackendGenerator

    prompts = _read_prompts(args.prompts, args.column)
    _check_output_folder(args.out)
    _say(args, f"{len(prompts)} prompt(s) to generate; loading the router {args.router!r} ...")
    router = _load_router(args)
    plain = [spec.name for spec in router.generators_ if not isinstance(spec, BackendGenerator)]
    if plain:
        raise _InputError(
            f"the router's generator(s) {plain} are plain GeneratorSpecs (a name and a cost) and cannot make "
            "images; fit and save a router over generators with a backend: presets "
            "(costroute.generators.presets.paper_pool()), DiffusersGenerator or CallableGenerator"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = router.route(prompts, cost_penalty=args.cost_penalty, budget=args.budget)
    _report_warnings(caught, "generate")
    _say(args, f"routed with cost_penalty={plan.cost_penalty:.4g}: "
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
    _say(args, f"{len(result)} images in {args.out!r} ({result.total_seconds:.1f} s, {len(result.fallbacks)} "
               f"fallback(s), total cost {result.total_cost:.4g} {result.cost_unit}); table: {csv_path!r}")
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
    from .collect._specs import parse_backend

    prompts = _read_prompts(args.prompts, args.column)
    try:  # every argument is checked before any cost is counted or model loaded
        generators = [parse_generator(text) for text in args.generators]
        scorers = [parse_scorer(text) for text in args.scorer]
        backend = parse_backend(args.backend, args.workers, args.address)
        check_arguments(prompts, generators, scorers, args.store, args.seeds, args.batch_size, backend,
                        save_images=args.save_images, regenerate=args.regenerate)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        raise _InputError(str(exc)) from None
    _say(args, f"{len(prompts)} prompt(s) x {len(generators)} generator(s) x {args.seeds} seed(s), scored by "
               f"{', '.join(s.name for s in scorers)}, into {args.store}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = collect(prompts, generators, scorers, args.store, seeds=args.seeds, batch_size=args.batch_size,
                          backend=backend, progress=not args.quiet, save_images=args.save_images,
                          regenerate=args.regenerate)
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


def _add_prompt_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompts", help="text file with one prompt per line, a .csv file, or - for standard input")
    parser.add_argument("--column", default=None,
                        help="read the input as CSV and take the prompts from this column "
                             "(default for .csv files: the column 'prompt', else the only column)")


def _add_trust_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust", action="append", default=None, metavar="TYPE",
                        help="also trust this type (module.Name) in the router file, after reviewing it; repeatable")


def _add_penalty_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cost-penalty", type=_nonnegative_float, default=None,
                        help="lambda >= 0 (default: the router's, 0 for a fresh one); with --budget, the least "
                             "lambda used")
    parser.add_argument("--budget", type=_nonnegative_float, default=None,
                        help="target mean normalised cost of the batch, >= 0 (lambda is raised until it is met)")


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

    route = sub.add_parser("route", help="route a file of prompts with a router fitted on a rated dataset, or a "
                                         "saved one (--router); CSV to stdout")
    _add_prompt_arguments(route)
    route.add_argument("--router", default=None, metavar="ROUTER.skops",
                       help="a router saved by `costroute fit` or costroute.io.save, used as it is (no refit)")
    _add_trust_argument(route)
    route.add_argument("--dataset", choices=DATASETS, default=None,
                       help="training ratings (default: genai-bench); not with --router")
    route.add_argument("--cost-unit", choices=("flops", "usd"), default=None, help="default: flops")
    route.add_argument("--features", choices=FEATURE_CHOICES, default=None, help="default: minilm")
    route.add_argument("--quality-model", choices=QUALITY_MODEL_CHOICES, default=None, help="default: knn")
    _add_penalty_arguments(route)
    route.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    route.set_defaults(func=_route)

    fit = sub.add_parser("fit", help="fit a router on a rated dataset and save it (skops format)")
    fit.add_argument("--dataset", type=_dataset, default="genai-bench", metavar="DATASET",
                     help=f"training ratings: one of {', '.join(DATASETS)} (default: %(default)s), or a collection "
                          "store STORE.sqlite")
    fit.add_argument("--scorer", default=None, metavar="NAME",
                     help="with a collection store: the scorer whose scores are the quality (default: its only one)")
    fit.add_argument("-o", "--output", required=True, metavar="ROUTER.skops", help="the file to write")
    fit.add_argument("--cost-unit", choices=("flops", "usd"), default=None,
                     help="cost table of a shipped dataset (default: flops)")
    fit.add_argument("--features", choices=FEATURE_CHOICES, default="minilm")
    fit.add_argument("--quality-model", choices=QUALITY_MODEL_CHOICES, default="knn")
    fit.add_argument("--cost-penalty", type=_nonnegative_float, default=None,
                     help="lambda >= 0 stored in the router (default 0); route/generate may override it")
    fit.add_argument("--budget", type=_nonnegative_float, default=None,
                     help="target mean normalised cost stored in the router; route/generate may override it")
    fit.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    fit.set_defaults(func=_fit)

    generate = sub.add_parser("generate", help="route a file of prompts with a saved router and make the images")
    _add_prompt_arguments(generate)
    generate.add_argument("--router", required=True, metavar="ROUTER.skops",
                          help="a saved router whose generators can make images (presets, DiffusersGenerator)")
    generate.add_argument("--out", required=True, metavar="DIR", help="folder for the images and images.csv")
    _add_trust_argument(generate)
    generate.add_argument("--seed", type=_nonnegative_int, default=0, help="seed of the run (default: 0)")
    generate.add_argument("--batch-size", type=_positive_int, default=8, help="largest batch per generator call")
    _add_penalty_arguments(generate)
    generate.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    generate.set_defaults(func=_generate)

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
    collect.add_argument("--backend", choices=["local", "ray"], default="local",
                         help="run here (local, the default) or on a pool of Ray actors, one per GPU (ray)")
    collect.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                         help="with --backend ray: actors in the pool (default: one per GPU, else one per CPU)")
    collect.add_argument("--address", default=None,
                         help="with --backend ray: the cluster to attach to (auto, HOST:PORT; default: $RAY_ADDRESS, "
                              "else a local instance started for the run)")
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
