"""The playground: ``GET /`` serves a page that calls the app's own Images API and shows every candidate.

The page is three static files of this package (``static/playground.html``, ``.js`` and
``.css``; no build step, nothing fetched from another origin): a prompt, a λ slider, a seed,
an API key field and a button. It posts to ``v1/images/generations`` with ``model="auto"``,
``response_format="b64_json"`` and ``costroute: {"candidates": true, ...}``, then shows the
returned image and, beside it, every candidate the router or cascade made with its generator,
scores and cost, or the error JSON's message. The key, when given, goes in the
``Authorization`` header of those calls and is kept nowhere else.

The files need no key (:class:`~costroute.serve._middleware.RequireKey` guards ``/v1/...``
and ``/metrics`` only); they are served with a Content-Security-Policy that allows scripts,
styles, images and requests from this origin only (and the ``data:`` images of the
responses), so the page cannot load or send anything elsewhere.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.responses import Response

__all__ = ["PAGE_FILES", "add_page_routes", "page_file"]

#: URL path -> (file in ``costroute/serve/static``, media type).
PAGE_FILES = {
    "/": ("playground.html", "text/html; charset=utf-8"),
    "/playground.js": ("playground.js", "text/javascript; charset=utf-8"),
    "/playground.css": ("playground.css", "text/css; charset=utf-8"),
}

#: Everything from this origin only; images also as ``data:`` URLs (the base64 PNGs of the responses).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def page_file(name: str) -> bytes:
    """The bytes of the playground's file ``name`` (``"playground.html"`` ...), from the installed package."""
    return resources.files("costroute.serve").joinpath("static", name).read_bytes()


def add_page_routes(app: FastAPI) -> None:
    """Serve :data:`PAGE_FILES` on ``app`` (read once, now: a missing package file fails here, not per request)."""
    for path, (name, media_type) in PAGE_FILES.items():
        app.add_api_route(
            path, _endpoint(page_file(name), media_type), methods=["GET"], include_in_schema=False, name=name
        )


def _endpoint(content: bytes, media_type: str):
    async def serve() -> Response:
        return Response(content, media_type=media_type, headers=_HEADERS)

    return serve
