"""The ``costroute`` command: collect, fit and save a router or cascade, route prompts, generate images, costs.

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
    costroute tiny models                               # tiny offline models to try the commands with
    costroute collect prompts.txt --generators small=diffusers:models/sd:2 large=diffusers:models/sd:8 \\
        --scorer judge=clip:models/judge fast=clip:models/clip --store run.sqlite --save-images images
    costroute fit --dataset run.sqlite --scorer judge --verify fast -o cascade.skops   # a CascadeRouter
    costroute generate prompts.txt --router cascade.skops --out images/   # generate, score, escalate
    costroute serve cascade.skops --budget 0.3 --store served.sqlite --api-key-env COSTROUTE_KEY
    costroute serve --demo                              # a tiny cascade fitted on the spot; open http://127.0.0.1:8000/

Routers
-------
``fit`` saves a router with :func:`costroute.io.save`; ``route --router`` and ``generate``
load it with :func:`costroute.io.load` (never a pickle), which refuses a file naming a type
outside its allow-list unless ``--trust TYPE`` names it. With ``--router`` the saved router
is used as it is: the options that fit one (``--dataset``, ``--features``,
``--quality-model``, ``--cost-unit``) are refused. ``generate`` needs generators that make
images (presets, ``DiffusersGenerator``; a store's are rebuilt by ``fit``); it writes the
images and ``images.csv`` into ``--out`` (also when some images fail: exit status 1). See
``docs/persistence.md``.

Cascades
--------
``fit --dataset STORE --scorer QUALITY --verify SCORER`` saves a
:class:`~costroute.cascade.CascadeRouter` that verifies each image with the store's
``SCORER`` (rebuilt from the store) and escalates when that pays. ``route --router`` with it
prints the generator each prompt starts with, and says so; ``generate --router`` runs the
cascade and writes the returned images, every other candidate (``*_candidate.png``) and
``images.csv`` (generators tried, returned, every score, cost). See ``docs/cascade.md``.

Serving
-------
``serve ROUTER.skops`` runs :func:`costroute.serve.create_app` with uvicorn: OpenAI's Images API
on ``/v1``, dynamic batching, a budget over a sliding window, a collection store. The API key
is read from the environment variable ``--api-key-env`` names (never from the command line);
without one the command refuses a host other than loopback (status 2). SIGTERM finishes the
requests in flight, writes their rows and exits. ``GET /`` is a playground page that calls the
API and shows every candidate; ``serve --demo`` (instead of a router) builds tiny offline
models, collects a small matrix and fits a cascade in a temporary folder (seconds), and serves
that. See ``docs/serving.md``.

Input
-----
``route`` reads UTF-8 text (a byte-order mark and CRLF endings are fine). A file whose name
ends in ``.csv``, or any input when ``--column`` is given (the way to read CSV from standard
input), is CSV: a header row, then one row per prompt, with the quoting and multi-line
fields of Python's :mod:`csv` module. The prompts come from the ``--column`` column, by
default the column named ``prompt``, else the only column; blank lines are skipped, and a
row whose prompt field is empty or whitespace is an error naming its line. Any other input
holds one prompt per line; blank and whitespace-only lines are skipped.

Every argument is checked before the training data is loaded or anything is fitted. Long
steps (loading the ratings, fitting: 10-40 s) report on stderr; ``-q/--quiet`` silences
everything there but warnings and errors.

Exit status
-----------
0
    Success.
1
    The command could not complete: a shipped dataset's ratings cannot be loaded, fitting
    on them or routing failed, images failed (``generate``), or the output cannot be
    written.
2
    Usage or bad input: an unknown option or a bad value (``--budget`` and
    ``--cost-penalty`` must be finite and >= 0), a prompts file that is missing, unreadable,
    not UTF-8, holds no prompts, or lacks the column to read; a router file that is missing,
    not a skops file, holds untrusted types or no fitted CostAwareRouter or CascadeRouter; a router whose
    generators cannot make images (``generate``); an output folder that cannot be used;
    ``fit --dataset STORE.sqlite`` with a store that is missing, a directory, not a store, or
    whose ratings cannot be fitted (fewer than 2 prompts, missing cells without
    ``--drop-incomplete`` or ``--missing``, infinite scores); ``--missing nan`` without
    ``--quality-model lowrank``; ``--scorer``, ``--drop-incomplete`` or ``--missing`` without a
    store.
130
    Interrupted (Ctrl-C).
141
    Standard output was closed early (``costroute route ... | head``): the command stops
    quietly, with the status of a program ended by SIGPIPE.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import _collect, _costs, _fit, _generate, _route, _serve, _tiny
from ._common import EXIT_BROKEN_PIPE, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE
from ._prompt_files import InputError

__all__ = ["build_parser", "main"]

_COMMANDS = (_route, _fit, _generate, _costs, _collect, _tiny, _serve)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``costroute`` command."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="costroute",
        description="Cost-aware routing of text-to-image prompts.",
        epilog="Exit status: 0 ok, 1 the command could not complete, 2 usage or bad input, "
        "130 interrupted, 141 output closed early.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in _COMMANDS:
        command.add_parser(sub)
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
    except InputError as exc:
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
