"""``costroute serve``: serve a saved router or cascade over HTTP (OpenAI's Images API) with uvicorn."""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import sys
import tempfile
import time

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


def _check_demo(args: argparse.Namespace) -> None:
    """``--demo`` or ``ROUTER.skops``, exactly one; otherwise the usage and an error (status 2)."""
    problem = None
    if args.demo and args.router is not None:
        problem = (
            f"--demo serves a cascade of tiny models fitted on the spot, so it takes no ROUTER (got {args.router!r}); "
            "drop one of them"
        )
    elif not args.demo and args.router is None:
        problem = "give the saved router or cascade to serve (ROUTER.skops), or --demo to try the playground page"
    elif args.demo and args.scorer:
        problem = "--demo serves its cascade's own scorer; drop --scorer"
    if problem is not None:
        args.parser.print_usage(sys.stderr)
        raise InputError(problem)


def _build_demo(args: argparse.Namespace, folder: str, **settings):
    """The demo app, built in ``folder`` (tiny models, a collected matrix, a fitted cascade)."""
    from ..serve import demo_app

    say(args, f"building the demo in {folder!r}: tiny random-weight models, a small matrix, a cascade ...")
    started = time.perf_counter()
    try:
        app = demo_app(folder, **settings)
    except (TypeError, ValueError) as exc:
        raise InputError(f"cannot serve the demo: {exc}") from None
    demo = app.state.demo
    generators = ", ".join(demo.cascade.router_.generators_.names)
    say(
        args,
        f"fitted a cascade over {generators} on {len(demo.prompts)} prompts in {time.perf_counter() - started:.1f} s "
        "(images and scores of random weights: they show the machinery, not quality)",
    )
    return app


def run(args: argparse.Namespace) -> int:
    _check_demo(args)
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
    settings = dict(
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
    if args.demo:
        return _serve_demo(args, settings, uvicorn)
    say(args, f"loading the router {args.router!r} ...")
    router = load_router(args)
    try:
        app = create_app(
            router, scorer=None if scorers is None else (scorers[0] if len(scorers) == 1 else scorers), **settings
        )
    except (TypeError, ValueError) as exc:
        raise InputError(f"cannot serve {args.router!r}: {exc}") from None
    return _serve(args, app, uvicorn)


class _Terminated(Exception):
    """SIGTERM, raised so that the demo's temporary folder is removed before the process ends."""


def _terminated(signum, frame) -> None:
    raise _Terminated


def _serve_demo(args: argparse.Namespace, settings: dict, uvicorn) -> int:
    """Build the demo in a temporary folder, serve it, remove the folder (on SIGTERM too) and exit.

    uvicorn ends a SIGTERM by raising the signal again once it has shut down, which kills the
    process before any ``finally`` runs; here that signal raises :class:`_Terminated` instead,
    the folder goes, and the process then ends by SIGTERM as a plain ``costroute serve`` does.
    """
    if not os.environ.get("OMP_NUM_THREADS"):
        import torch

        # tiny models: a second thread gains nothing, and on a busy machine its spinning makes
        # the start-up 2-4x slower (7 s against 16-32 s on 2 shared cores)
        torch.set_num_threads(1)
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        with tempfile.TemporaryDirectory(prefix="costroute-demo-") as folder:
            return _serve(args, _build_demo(args, folder, **settings), uvicorn)
    except _Terminated:
        signal.signal(signal.SIGTERM, previous)
        signal.raise_signal(signal.SIGTERM)
        return EXIT_OK  # where SIGTERM does not end the process (a handler of the caller's)
    finally:
        signal.signal(signal.SIGTERM, previous)


def base_url(host: str, port: int) -> str:
    """``http://HOST:PORT/`` (an IPv6 address in brackets)."""
    host = host.strip()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def _serve(args: argparse.Namespace, app, uvicorn) -> int:
    """Run ``app`` with uvicorn until SIGTERM/SIGINT; print the page's URL on stdout once it accepts requests."""
    url = base_url(args.host, args.port)

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                print(f"costroute serve: ready: open {url} (the playground); the API is {url}v1", flush=True)

    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="warning" if args.quiet else "info",
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        lifespan="on",
    )
    server = Server(config)
    say(args, f"serving on {url} (loading the models first) ...")
    server.run()
    return EXIT_OK if server.started else EXIT_FAILURE


def add_parser(sub) -> None:
    """Add the ``serve`` subcommand to the subparsers ``sub``."""
    serve = sub.add_parser(
        "serve",
        help="serve a saved router or cascade over HTTP: OpenAI's Images API, routing, batching, a budget",
        description="Serve a saved CostAwareRouter or CascadeRouter: POST /v1/images/generations (OpenAI's Images "
        "API; model 'auto' routes), POST /v1/route (decisions only), GET /v1/models, /healthz, /metrics, and the "
        "playground page on GET / (--demo: a tiny cascade fitted on the spot, to try it). "
        "Concurrent requests are batched per generator; --budget holds the mean normalised cost per image over "
        "the last --window images; --store writes every image and score to a collection store. SIGTERM "
        "finishes the requests in flight and exits. See docs/serving.md.",
    )
    serve.add_argument(
        "router", metavar="ROUTER.skops", nargs="?", default=None, help="a saved router or cascade (costroute fit)"
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="instead of ROUTER: serve a cascade of tiny random-weight models, collected and fitted on the spot in "
        "a temporary folder (no weights, GPU or network needed; a few seconds), to try the playground page",
    )
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
    serve.set_defaults(func=run, parser=serve)
