"""Errors in OpenAI's JSON shape: :class:`APIError` and the handlers that turn every failure into one.

Every response that is not a success carries ``{"error": {"message", "type", "param",
"code"}}``, as OpenAI's API does, so that its clients raise their usual exceptions
(``openai.BadRequestError``, ``openai.RateLimitError`` ...) with a readable message: a request
the schema refuses (FastAPI's validation error, overridden here), an unknown path or method,
and any unexpected exception, which is logged and reported without its internals.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["APIError", "error_response", "install_error_handlers"]

logger = logging.getLogger("costroute.serve")

#: OpenAI's error ``type`` for each status this server answers with.
_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "server_error",
    503: "server_error",
}


class APIError(Exception):
    """A failure to answer with ``status`` and OpenAI's error JSON.

    Parameters
    ----------
    status : int
        The HTTP status.
    message : str
        What went wrong and what to do about it.
    param : str or None, default=None
        The request field at fault (``"n"``, ``"costroute.seed"`` ...).
    code : str or None, default=None
        A short machine-readable reason (``"queue_full"``, ``"invalid_api_key"`` ...).
    type : str or None, default=None
        OpenAI's error type; default from the status (``invalid_request_error``, ...).
    headers : dict or None, default=None
        Extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = int(status)
        self.message = message
        self.param = param
        self.code = code
        self.type = type or _TYPES.get(self.status, "invalid_request_error" if status < 500 else "server_error")
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """``{"error": {"message", "type", "param", "code"}}``."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def error_response(error: APIError) -> JSONResponse:
    """The JSON response of ``error``."""
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def _location(loc: Any) -> str | None:
    """``("body", "costroute", "seed")`` -> ``"costroute.seed"``."""
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


async def _on_api_error(request: Request, exc: APIError) -> JSONResponse:
    return error_response(exc)


async def _on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    param = _location(first.get("loc", ()))
    if first.get("type") == "json_invalid":
        message, param = "the request body is not valid JSON", None
    elif first.get("type") == "missing" and param is None:
        message = "the request needs a JSON body"
    else:
        message = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem(s))"
    return error_response(APIError(400, message, param=param, code="invalid_value"))


async def _on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    codes = {404: "not_found", 405: "method_not_allowed"}
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404:
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    return error_response(
        APIError(exc.status_code, message, code=codes.get(exc.status_code), headers=dict(exc.headers or {}))
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        APIError(500, f"internal error ({type(exc).__name__}); the server log has the details", code="internal_error")
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` answer in OpenAI's error JSON (validation errors as 400)."""
    app.add_exception_handler(APIError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
