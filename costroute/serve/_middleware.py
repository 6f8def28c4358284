"""The ASGI layers in front of the endpoints: request metrics, the API key and the body size limit.

They answer before any endpoint runs, in OpenAI's error JSON:

* :class:`RequireKey`: with a key set, ``/v1/...`` and ``/metrics`` need
  ``Authorization: Bearer KEY`` (what OpenAI's clients send); a missing or wrong key is 401.
  The key is compared in constant time. ``/healthz`` stays open for load balancers.
* :class:`LimitBody`: a body larger than ``max_bytes`` is 413, from its ``Content-Length`` or,
  without one, as soon as the bytes read exceed it; nothing larger is ever buffered.
* :class:`CountRequests`: every request's status and latency, by endpoint, into the metrics.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from ._errors import APIError, error_response
from ._metrics import Metrics

__all__ = ["CountRequests", "LimitBody", "RequireKey"]

#: Endpoints with their own label in the metrics (anything else counts as "other").
ENDPOINTS = ("/v1/images/generations", "/v1/route", "/v1/models", "/healthz", "/metrics", "/")


def route_path(scope: dict) -> str:
    """The path the app's routes see: ``scope["path"]`` without ``root_path`` (a mount or a proxy prefix)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


class CountRequests:
    """Count every HTTP request by endpoint and status, and time it."""

    def __init__(self, app: Any, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        endpoint = path if path in ENDPOINTS else "other"
        status = {"code": 500}
        started = time.perf_counter()

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.requests.labels(endpoint=endpoint, status=str(status["code"])).inc()
            self.metrics.latency.labels(endpoint=endpoint).observe(time.perf_counter() - started)


class RequireKey:
    """With ``api_key`` set, refuse ``/v1/...`` and ``/metrics`` without ``Authorization: Bearer <api_key>`` (401)."""

    def __init__(self, app: Any, api_key: str | None):
        self.app = app
        self.expected = None if api_key is None else api_key.encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = route_path(scope)
        if self.expected is None or scope["type"] != "http" or not (path.startswith("/v1/") or path == "/metrics"):
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"authorization")
        scheme, _, token = (given or b"").partition(b" ")
        if given is None or scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self.expected):
            error = APIError(
                401,
                "missing API key: send 'Authorization: Bearer <key>'"
                if given is None
                else "wrong API key in the Authorization header",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
            await error_response(error)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class LimitBody:
    """Refuse request bodies over ``max_bytes`` with 413; the body is read (bounded) before the app sees it.

    ``per_path`` gives other limits to some paths (``/v1/route`` takes many prompts at once).
    """

    def __init__(self, app: Any, max_bytes: int, per_path: dict[str, int] | None = None):
        self.app = app
        self.default = int(max_bytes)
        self.per_path = dict(per_path or {})

    def _too_large(self, limit: int) -> APIError:
        return APIError(
            413,
            f"the request body is larger than {limit} bytes; send shorter prompts or fewer at once",
            code="request_too_large",
        )

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(route_path(scope), self.default)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared > limit:
                await error_response(self._too_large(limit))(scope, receive, send)
                return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await error_response(self._too_large(limit))(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
