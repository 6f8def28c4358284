"""``costroute serve``: serve a saved router or cascade over HTTP (OpenAI's Images API) with uvicorn."""

from __future__ import annotations

import argparse
import ipaddress
import os

from ._common import (
    EXIT_FAILURE,
    EXIT_OK,
    add_trust_argument,
    load_router,
    nonnegative_float,
    nonnegative_int,
    positive_int,
    say,
)
from ._prompt_files import InputError

#: Seconds uvicorn waits for the requests in flight after SIGTERM before cancelling them.
GRACEFUL_SECONDS = 60


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def _share(text: str) -> float:
    value = nonnegative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text!r}")
    return value


def _api_key(args: argparse.Namespace) -> str | None:
    if args.api_key_env is None:
        return None
    key = os.environ.get(args.api_key_env, "")
    if not key.strip():
        raise InputError(
            f"--api-key-env {args.api_key_env}: that environment variable is unset or empty; export the key in it "
            "(the key is never given on the command line)"
        )
    return key


def run(args: argparse.Namespace) -> int:
    key = _api_key(args)
    if key is None and not is_loopback(args.host):
        raise InputError(
            f"refusing to serve on {args.host!r} without an API key: anyone who can reach it could spend your "
            "budget. Set one with --api-key-env VAR (the variable holding the key), or serve on 127.0.0.1"
        )
    if args.store is not None:
        from ..collect._store import check_store_file

        folder = os.path.dirname(os.path.abspath(args.store))
        if not os.path.isdir(folder):
            raise InputError(f"--store {args.store!r}: the folder {folder!r} does not exist")
        try:
            check_store_file(args.store)
        except ValueError as exc:
            raise InputError(f"--store: {exc}") from None
    scorers = None
    if args.scorer:
        from ..collect import parse_scorer

        try:
            scorers = [parse_scorer(text) for text in args.scorer]
        except (ValueError, OSError) as exc:
            raise InputError(f"--scorer: {exc}") from None
    try:
        import uvicorn

        from ..serve import create_app
    except ImportError as exc:
        raise InputError(f"serving needs the serve extra ({exc}); pip install 'costroute[serve]'") from None
    say(args, f"loading the router {args.router!r} ...")
    router = load_router(args)
    try:
        app = create_app(
            router,
            scorer=None if scorers is None else (scorers[0] if len(scorers) == 1 else scorers),
            budget=args.budget,
            cost_penalty=args.cost_penalty,
            store=args.store,
            explore=args.explore,
            max_batch_size=args.max_batch_size,
            batch_wait_ms=args.batch_wait_ms,
            max_queue=args.max_queue,
            api_key=key,
            window=args.window,
            seed=args.seed,
        )
    except (TypeError, ValueError) as exc:
        raise InputError(f"cannot serve {args.router!r}: {exc}") from None
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="warning" if args.quiet else "info",
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    say(args, f"serving on http://{args.host}:{args.port}/v1 (loading the models first) ...")
    server.run()
    return EXIT_OK if server.started else EXIT_FAILURE


def add_parser(sub) -> None:
    """Add the ``serve`` subcommand to the subparsers ``sub``."""
    serve = sub.add_parser(
        "serve",
        help="serve a saved router or cascade over HTTP: OpenAI's Images API, routing, batching, a budget",
        description="Serve a saved CostAwareRouter or CascadeRouter: POST /v1/images/generations (OpenAI's Images "
        "API; model 'auto' routes), POST /v1/route (decisions only), GET /v1/models, /healthz, /metrics. "
        "Concurrent requests are batched per generator; --budget holds the mean normalised cost per image over "
        "the last --window images; --store writes every image and score to a collection store. SIGTERM "
        "finishes the requests in flight and exits. See docs/serving.md.",
    )
    serve.add_argument("router", metavar="ROUTER.skops", help="a saved router or cascade (costroute fit)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=positive_int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--scorer",
        nargs="+",
        default=None,
        metavar="SPEC",
        help="score every image served ([NAME=]clip[:MODEL] or [NAME=]vqa[:MODEL], as collect's --scorer); "
        "for a cascade, instead of its own",
    )
    penalty = serve.add_mutually_exclusive_group()
    penalty.add_argument(
        "--budget",
        type=nonnegative_float,
        default=None,
        help="target mean normalised cost per image over the window (images, escalations and scoring)",
    )
    penalty.add_argument(
        "--cost-penalty", type=nonnegative_float, default=None, help="lambda >= 0 (default: the router's)"
    )
    serve.add_argument("--store", default=None, metavar="STORE.sqlite", help="write every image and score here")
    serve.add_argument(
        "--explore", type=_share, default=0.0, metavar="EPS", help="share of routed images sent to a random generator"
    )
    serve.add_argument("--max-batch-size", type=positive_int, default=8, help="images per batch (default 8)")
    serve.add_argument(
        "--batch-wait-ms", type=nonnegative_float, default=10.0, help="wait for more requests (default 10 ms)"
    )
    serve.add_argument("--max-queue", type=positive_int, default=64, help="requests that may wait (default 64)")
    serve.add_argument("--window", type=positive_int, default=256, help="images in the budget window (default 256)")
    serve.add_argument(
        "--api-key-env",
        default=None,
        metavar="VAR",
        help="require 'Authorization: Bearer KEY' with KEY read from this environment variable",
    )
    serve.add_argument(
        "--seed", type=nonnegative_int, default=None, help="seed of the server's own draws (request seeds, explore)"
    )
    add_trust_argument(serve)
    serve.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    serve.set_defaults(func=run)
