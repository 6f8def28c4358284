"""The ASGI app: :func:`create_app` and its endpoints.

``POST /v1/images/generations`` speaks OpenAI's Images API (``prompt``, ``n``, ``model``,
``size``, ``response_format="b64_json"``) with a ``costroute`` extension object in the
request (``seed``, ``cost_penalty``, ``candidates``) and in the response (per image: the
generator, the generators tried, scores, cost, seconds, seed and, when asked, every candidate
made with its pixels). ``POST /v1/route`` returns the decisions only (with a budget, each is
charged to the budget window at its predicted cost). ``GET /v1/models``, ``GET /healthz`` and
``GET /metrics`` (Prometheus) complete it, and ``GET /`` serves the playground page
(:mod:`._page`).

The app holds a :class:`Service`: the engine (the router, the budget window, the store) in a
one-thread executor, and the batcher that feeds it. Its lifespan loads the models before the
first request and, on shutdown, finishes the batch in flight and closes the store. An app
mounted inside another (whose lifespan Starlette does not run) starts on its first request;
the host then calls ``await app.state.service.aclose()`` on its own shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import numbers
import os
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..features._validation import check_prompt_text
from ._batcher import Batcher
from ._engine import Engine
from ._errors import APIError, install_error_handlers
from ._images import encode_png, format_size, generator_size, parse_size
from ._jobs import ImageJob, ImageJobResult, RouteJob, ServedImage
from ._metrics import Metrics
from ._middleware import CountRequests, LimitBody, RequireKey
from ._page import add_page_routes
from ._schemas import MAX_SEED, ImageRequest, RouteRequest

__all__ = [
    "DEFAULT_MAX_N",
    "DEFAULT_MAX_PROMPT_CHARS",
    "DEFAULT_MAX_ROUTE_PROMPTS",
    "Service",
    "create_app",
]

#: Longest prompt accepted, in characters (OpenAI's DALL-E 3 limit).
DEFAULT_MAX_PROMPT_CHARS = 4000
#: Most images one request may ask for.
DEFAULT_MAX_N = 4
#: Most prompts one ``/v1/route`` request may hold.
DEFAULT_MAX_ROUTE_PROMPTS = 256


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= 1, got {type(value).__name__}: {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _nonnegative(value: Any, name: str, *, allow_none: bool = False, most: float | None = None) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number >= 0, got {type(value).__name__}: {value!r}")
    if not math.isfinite(value) or value < 0 or (most is not None and value > most):
        bound = f"in [0, {most:g}]" if most is not None else "finite and >= 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return float(value)


class Service:
    """The state behind an app: engine, worker thread, batcher, metrics and request limits.

    Created by :func:`create_app` (``app.state.service``); :meth:`start` and :meth:`aclose`
    are the app's lifespan.
    """

    def __init__(
        self,
        engine: Engine,
        metrics: Metrics,
        *,
        max_batch_size: int,
        batch_wait_ms: float,
        max_queue: int,
        max_prompt_chars: int,
        max_n: int,
        max_route_prompts: int,
        seed: Any,
    ):
        self.engine = engine
        self.metrics = metrics
        self.max_batch_size = max_batch_size
        self.batch_wait_ms = batch_wait_ms
        self.max_queue = max_queue
        self.max_prompt_chars = max_prompt_chars
        self.max_n = max_n
        self.max_route_prompts = max_route_prompts
        self.rng = np.random.default_rng(seed)
        self.sizes = {g.name: generator_size(g) for g in engine.registry}
        self.state = "starting"
        self.executor: ThreadPoolExecutor | None = None
        self.batcher: Batcher | None = None
        self._start: asyncio.Task | None = None

    # ------------------------------------------------------------------ life cycle
    def begin(self) -> asyncio.Task:
        """Start loading (once) without waiting; the task that :meth:`start` awaits."""
        if self._start is None:
            self._start = asyncio.get_running_loop().create_task(self._starting(), name="costroute-start")
        return self._start

    async def start(self) -> None:
        """Load the models and open the store in the worker thread, then accept jobs (idempotent)."""
        await asyncio.shield(self.begin())

    async def _starting(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="costroute-worker")
        await asyncio.get_running_loop().run_in_executor(self.executor, self.engine.start)
        self.batcher = Batcher(
            self.engine.run_batch,
            self.executor,
            # a batch is split per generator, each call holding up to max_batch_size images: a batch
            # of max_batch_size x K images lets every generator's call fill up (the same calls as generate)
            max_batch_size=self.max_batch_size * max(1, len(self.engine.names)),
            batch_wait_ms=self.batch_wait_ms,
            max_queue=self.max_queue,
            metrics=self.metrics,
        )
        self.batcher.start()
        self.state = "ready"

    async def aclose(self) -> None:
        """Refuse new requests, finish the batch in flight, close the store and the worker thread."""
        if self.state in ("stopping", "stopped"):
            return
        self.state = "stopping"
        if self._start is not None:
            with contextlib.suppress(Exception):
                await self._start
        if self.batcher is not None:
            await self.batcher.aclose()
        if self.executor is not None:
            await asyncio.get_running_loop().run_in_executor(self.executor, self.engine.close)
            self.executor.shutdown(wait=True)
        self.state = "stopped"

    @contextlib.asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.aclose()

    async def submit(self, job: Any) -> Any:
        if self.state in ("stopping", "stopped"):
            raise APIError(503, "the server is shutting down; retry on another instance", code="shutting_down")
        await self.start()
        answer = await self.batcher.submit(job)
        if isinstance(answer, APIError):
            raise answer
        return answer

    # ------------------------------------------------------------------ checks
    def check_prompt(self, prompt: str, param: str) -> str:
        if not prompt.strip():
            raise APIError(400, f"{param} must not be empty", param=param, code="invalid_value")
        try:  # the router's own rule (e.g. no lone surrogate), so that one prompt cannot fail a batch
            check_prompt_text([prompt], name=param)
        except ValueError as exc:
            raise APIError(400, str(exc).replace(f"{param}[0]", param), param=param, code="invalid_value") from None
        if len(prompt) > self.max_prompt_chars:
            raise APIError(
                400,
                f"{param} has {len(prompt)} characters; the most this server accepts is {self.max_prompt_chars}",
                param=param,
                code="prompt_too_long",
            )
        return prompt

    def check_model(self, model: str | None) -> str | None:
        if model is None or model == "auto":
            return None
        if model not in self.sizes:
            raise APIError(
                400,
                f"unknown model {model!r}; the models are 'auto' (routed) and {list(self.sizes)}",
                param="model",
                code="model_not_found",
            )
        return model

    def check_size(self, size: str | None, model: str | None) -> None:
        if size is None:
            return
        try:
            wanted = parse_size(size)
        except ValueError as exc:
            raise APIError(400, str(exc), param="size", code="invalid_value") from None
        if wanted is None:
            return
        names = list(self.sizes) if model is None else [model]
        unknown = [n for n in names if self.sizes[n] is None]
        if unknown:
            raise APIError(
                400,
                f"the size of generator(s) {unknown} is not declared, so size={size!r} cannot be checked; omit size",
                param="size",
                code="invalid_size",
            )
        made = sorted({format_size(self.sizes[n]) for n in names})
        if made != [format_size(wanted)]:
            what = f"model {model!r} makes" if model is not None else "the routed generators make"
            raise APIError(
                400,
                f"{what} {' and '.join(made)} images, not {size!r}; omit size"
                + (f" or ask for {made[0]!r}" if len(made) == 1 else " or name a model"),
                param="size",
                code="invalid_size",
            )


def _number(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _encode(image: ServedImage, candidates: bool) -> tuple[str, list[str]]:
    """The image's PNG as base64, and (when asked) each of its candidates' (the returned one's reused)."""
    b64 = encode_png(image.image)
    if not candidates:
        return b64, []
    return b64, [b64 if c.image is image.image else encode_png(c.image) for c in image.candidates or []]


def create_app(
    router: Any,
    *,
    scorer: Any = None,
    budget: float | None = None,
    cost_penalty: float | None = None,
    store: str | os.PathLike | None = None,
    explore: float = 0.0,
    max_batch_size: int = 8,
    batch_wait_ms: float = 10,
    max_queue: int = 64,
    api_key: str | None = None,
    window: int = 256,
    max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS,
    max_n: int = DEFAULT_MAX_N,
    max_route_prompts: int = DEFAULT_MAX_ROUTE_PROMPTS,
    seed: int | None = None,
) -> FastAPI:
    """A FastAPI app that serves ``router`` behind OpenAI's Images API (see ``docs/serving.md``).

    Parameters
    ----------
    router : CostAwareRouter or CascadeRouter
        Fitted, over generators that make images. A cascade verifies each routed image with
        its scorer(s) and escalates when that pays.
    scorer : Scorer, list or dict of Scorers, or None, default=None
        A router's scorer(s): every image served is scored (and charged), for the response
        and the store. A cascade's: instead of its own ``scorer`` (same number of scorers).
    budget : float or None, default=None
        Target mean normalised cost per image over the last ``window`` images (generation,
        escalations and scoring), held by each image's λ and a hard guard; ``None``: the
        router's own ``budget`` if it has one.
    cost_penalty : float or None, default=None
        λ; with a budget, the least λ. ``None``: the router's own ``cost_penalty``.
    store : str, path-like or None, default=None
        A collection store (SQLite file; created when missing) that gets every image made
        and every score, one transaction per batch.
    explore : float, default=0.0
        Share of routed images sent to a uniformly drawn generator instead (in [0, 1]).
    max_batch_size : int, default=8
        Most images per batch, hence per pipeline call.
    batch_wait_ms : float, default=10
        How long a batch waits for more requests after its first.
    max_queue : int, default=64
        Requests that may wait; more are refused with 429 and ``Retry-After``.
    api_key : str or None, default=None
        Require ``Authorization: Bearer <api_key>`` on ``/v1/...`` and ``/metrics``.
    window : int, default=256
        Images in the budget window.
    max_prompt_chars : int, default=4000
    max_n : int, default=4
        Most images per request.
    max_route_prompts : int, default=256
        Most prompts per ``/v1/route`` request.
    seed : int or None, default=None
        Seeds the seeds drawn for requests that give none, and the exploration.

    Returns
    -------
    fastapi.FastAPI
        The app; ``app.state.service`` is its :class:`Service`.

    Raises
    ------
    TypeError, ValueError
        A router that is not a fitted router or cascade, generators that cannot make images,
        a cascade without a scorer, or a bad setting (the message names it).
    """
    budget = _nonnegative(budget, "budget", allow_none=True)
    cost_penalty = _nonnegative(cost_penalty, "cost_penalty", allow_none=True)
    explore = _nonnegative(explore, "explore", most=1.0)
    max_batch_size = _positive_int(max_batch_size, "max_batch_size")
    batch_wait_ms = _nonnegative(batch_wait_ms, "batch_wait_ms")
    max_queue = _positive_int(max_queue, "max_queue")
    window = _positive_int(window, "window")
    max_prompt_chars = _positive_int(max_prompt_chars, "max_prompt_chars")
    max_n = _positive_int(max_n, "max_n")
    max_route_prompts = _positive_int(max_route_prompts, "max_route_prompts")
    if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
        raise ValueError("api_key must be a non-empty string or None")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    if store is not None and not isinstance(store, (str, os.PathLike)):
        raise TypeError(f"store must be the path of an SQLite file, got {type(store).__name__}: {store!r}")
    seeds = np.random.SeedSequence(seed).spawn(2)
    metrics = Metrics()
    engine = Engine(
        router,
        scorer=scorer,
        budget=budget,
        cost_penalty=cost_penalty,
        store=store,
        explore=explore,
        max_batch_size=max_batch_size,
        window=window,
        seed=seeds[0],
        metrics=metrics,
    )
    service = Service(
        engine,
        metrics,
        max_batch_size=max_batch_size,
        batch_wait_ms=batch_wait_ms,
        max_queue=max_queue,
        max_prompt_chars=max_prompt_chars,
        max_n=max_n,
        max_route_prompts=max_route_prompts,
        seed=seeds[1],
    )
    # a prompt in JSON takes up to 6 bytes per character (\uXXXX escapes); 16 KiB for the other fields
    image_body = max_prompt_chars * 6 + 16384
    route_body = max_prompt_chars * 6 * max_route_prompts + 16384
    app = FastAPI(
        title="costroute",
        summary="Cost-aware routing of text-to-image prompts, behind OpenAI's Images API",
        lifespan=service.lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # the schema would be the one /v1 path open without the key
    )
    app.state.service = service
    install_error_handlers(app)
    app.add_middleware(LimitBody, max_bytes=image_body, per_path={"/v1/route": route_body})
    app.add_middleware(RequireKey, api_key=api_key)
    app.add_middleware(CountRequests, metrics=metrics)
    _add_routes(app, service)
    add_page_routes(app)
    return app


def _add_routes(app: FastAPI, service: Service) -> None:
    engine = service.engine
    unit = engine.unit

    @app.post("/v1/images/generations")
    async def generate_images(request: ImageRequest) -> JSONResponse:
        prompt = service.check_prompt(request.prompt, "prompt")
        n = 1 if request.n is None else request.n
        if not 1 <= n <= service.max_n:
            raise APIError(400, f"n must be between 1 and {service.max_n}, got {n}", param="n", code="invalid_value")
        model = service.check_model(request.model)
        if request.response_format not in (None, "b64_json"):
            message = (
                "response_format 'url' is not served: this server returns images inline; ask for "
                "response_format='b64_json'"
                if request.response_format == "url"
                else f"response_format must be 'b64_json', got {request.response_format!r}"
            )
            raise APIError(400, message, param="response_format", code="unsupported_response_format")
        if request.output_format not in (None, "png"):
            raise APIError(
                400,
                f"output_format must be 'png' (the format returned), got {request.output_format!r}",
                param="output_format",
                code="invalid_value",
            )
        service.check_size(request.size, model)
        options = request.costroute
        seed = options.seed if options is not None and options.seed is not None else None
        if seed is None:
            seed = int(service.rng.integers(0, MAX_SEED, endpoint=True))
        keep = bool(options is not None and options.candidates)
        job = ImageJob(prompt, n, model, seed, None if options is None else options.cost_penalty, keep)
        result: ImageJobResult = await service.submit(job)
        made = result.made
        failed = [{"index": im.index, "error": im.error} for im in result.images if im.image is None]
        if not made:
            raise APIError(
                502,
                "no image could be made: " + "; ".join(f["error"] or "unknown error" for f in failed),
                code="generation_failed",
            )
        encoded = await asyncio.to_thread(lambda: [_encode(im, keep) for im in made])
        sizes = sorted({f"{im.image.size[0]}x{im.image.size[1]}" for im in made if hasattr(im.image, "size")})
        data = []
        for (b64, others), im in zip(encoded, made):
            extension = im.extension(unit)
            if keep:
                extension["candidates"] = [c.extension(b, unit) for c, b in zip(im.candidates or [], others)]
            data.append({"b64_json": b64, "costroute": extension})
        body = {
            "created": int(time.time()),
            "data": data,
            "output_format": "png",
            "costroute": {
                "seed": seed,
                "model": model or "auto",
                "cascade": engine.is_cascade,
                "budget": None if engine.budget is None else engine.budget.budget,
                "cost_unit": unit,
                "failed": failed,
            },
        }
        if len(sizes) == 1:
            body["size"] = sizes[0]
        return JSONResponse(body)

    @app.post("/v1/route")
    async def route(request: RouteRequest) -> JSONResponse:
        if (request.prompts is None) == (request.prompt is None):
            raise APIError(
                400, "give either 'prompts' (a list) or 'prompt' (one)", param="prompts", code="invalid_value"
            )
        prompts = [request.prompt] if request.prompt is not None else request.prompts
        if not 1 <= len(prompts) <= service.max_route_prompts:
            raise APIError(
                400,
                f"prompts must hold between 1 and {service.max_route_prompts} prompts, got {len(prompts)}",
                param="prompts",
                code="invalid_value",
            )
        for i, p in enumerate(prompts):
            service.check_prompt(p, f"prompts[{i}]" if request.prompt is None else "prompt")
        result = await service.submit(RouteJob(list(prompts), request.cost_penalty))
        note = (
            "a cascade's first choice: after scoring its image the cascade may escalate to another generator"
            if engine.is_cascade
            else "the router's choice"
        )
        return JSONResponse(
            {
                "object": "list",
                "cascade": engine.is_cascade,
                "decision": "first_choice" if engine.is_cascade else "route",
                "note": note,
                "budget": None if engine.budget is None else engine.budget.budget,
                "cost_unit": unit,
                "data": [
                    {
                        "prompt": d.prompt,
                        "generator": d.generator,
                        "predicted_quality": d.predicted_quality,
                        "cost": d.cost,
                        "normalized_cost": d.normalized_cost,
                        "cost_penalty": _number(d.cost_penalty),
                        "budget_guard": d.budget_guard,
                        "charged_normalized_cost": d.charged,
                    }
                    for d in result.decisions
                ],
            }
        )

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        data = [{"id": "auto", "object": "model", "created": 0, "owned_by": "costroute", "costroute": {"routed": True}}]
        normalized = engine.costs
        for k, g in enumerate(engine.registry):
            data.append(
                {
                    "id": g.name,
                    "object": "model",
                    "created": 0,
                    "owned_by": "costroute",
                    "costroute": {
                        "cost": float(engine.registry.costs[k]),
                        "cost_unit": unit,
                        "normalized_cost": float(normalized[k]),
                        "size": format_size(service.sizes[g.name]),
                    },
                }
            )
        return JSONResponse({"object": "list", "data": data})

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        if service.state == "starting":  # a mounted app, whose host did not start it: start now, answer at once
            service.begin()
        queue = 0 if service.batcher is None else service.batcher.queue.qsize()
        body = {"status": service.state, "queue": queue, "generators": engine.names, "cascade": engine.is_cascade}
        return JSONResponse(body, status_code=200 if service.state == "ready" else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        if service.batcher is not None:
            service.metrics.queue.set(service.batcher.queue.qsize())
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
