"""``costroute tiny``: tiny random-weight pipelines and CLIP scorers, built offline, to try the commands with."""

from __future__ import annotations

import argparse
import os
import sys

from ._common import EXIT_OK, say
from ._prompt_files import InputError

#: What ``costroute tiny FOLDER`` writes: sub-folder -> (kind, seed).
TINY_MODELS = {"sd": ("pipeline", 0), "sd-b": ("pipeline", 1), "clip": ("clip", 0), "judge": ("clip", 7)}


def run(args: argparse.Namespace) -> int:
    from ..generators import build_tiny_pipeline
    from ..scoring import build_tiny_clip

    parent = os.path.dirname(os.path.abspath(args.folder))
    if os.path.exists(args.folder) and not os.path.isdir(args.folder):
        raise InputError(f"{args.folder!r} is a file; give a folder for the tiny models (created if needed)")
    if not os.path.isdir(parent):
        raise InputError(f"cannot create the folder {args.folder!r}: its parent {parent!r} does not exist")
    for sub, (kind, seed) in TINY_MODELS.items():
        path = os.path.join(args.folder, sub)
        if kind == "pipeline":
            build_tiny_pipeline(path, seed=seed)
        else:
            build_tiny_clip(path, seed=seed)
        say(
            args,
            f"wrote a tiny {'Stable Diffusion pipeline' if kind == 'pipeline' else 'CLIP model'} "
            f"(random weights, seed {seed}) to {path!r}",
        )
    folder = args.folder.rstrip("/")
    print(
        f"generators: small=diffusers:{folder}/sd:2 large=diffusers:{folder}/sd:8 other=diffusers:{folder}/sd-b:4\n"
        f"scorers:    judge=clip:{folder}/judge fast=clip:{folder}/clip",
        file=sys.stdout,
    )
    return EXIT_OK


def add_parser(sub) -> None:
    """Add the ``tiny`` subcommand to the subparsers ``sub``."""
    tiny = sub.add_parser(
        "tiny",
        help="write tiny random-weight diffusers pipelines and CLIP models to a folder (offline, seconds), "
        "to try collect, fit, route and generate without downloading anything",
        description="Write tiny models with random weights: FOLDER/sd and FOLDER/sd-b (Stable Diffusion pipelines, "
        "64x64 noise-like images) and FOLDER/clip and FOLDER/judge (CLIP models). They load offline like "
        "real ones (diffusers:FOLDER/sd:STEPS, clip:FOLDER/clip); their images and scores mean nothing.",
    )
    tiny.add_argument("folder", help="where to write them (created if needed)")
    tiny.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    tiny.set_defaults(func=run)
