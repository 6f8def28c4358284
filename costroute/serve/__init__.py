"""Serving a router or cascade over HTTP: OpenAI's Images API, with routing, batching and a budget.

:func:`create_app` returns a FastAPI (ASGI) app; ``costroute serve ROUTER.skops`` runs it
with uvicorn. Any OpenAI client can call it::

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="...")
    image = client.images.generate(model="auto", prompt="a red kite", response_format="b64_json",
                                   extra_body={"costroute": {"seed": 7}})

Requests that arrive together are batched per generator, a budget is held over a sliding
window of recent images, and every image made and score computed can be written to a
collection store to fit the next router on (``docs/serving.md``). ``GET /`` is a playground
page that calls the API and shows every candidate; :func:`demo_app` serves a cascade of tiny
offline models fitted on the spot (``costroute serve --demo``).

The package is organised by concept: ``_app`` (the app and its endpoints), ``_batcher``
(dynamic batching into one worker thread), ``_engine`` (a batch's decisions, images, costs
and rows), ``_making`` (generating and scoring a batch), ``_budget`` (the stream budget and
its hard guard), ``_store`` (the collection store writer), ``_middleware`` (API key, body
limit, request metrics), ``_errors`` (OpenAI's error JSON), ``_metrics`` (Prometheus),
``_schemas`` (the request bodies), ``_jobs`` (what the endpoints and the worker exchange),
``_images`` (PNG encoding, image sizes), ``_page`` (the playground page) and ``_demo`` (the
tiny demo cascade). Importing :mod:`costroute` does not import this
package; importing it imports FastAPI and prometheus_client (``pip install costroute[serve]``).
"""

from ._app import DEFAULT_MAX_N, DEFAULT_MAX_PROMPT_CHARS, DEFAULT_MAX_ROUTE_PROMPTS, Service, create_app
from ._budget import SpendWindow, StreamBudget
from ._demo import DEMO_PROMPTS, Demo, build_demo, demo_app
from ._errors import APIError

__all__ = [
    "DEFAULT_MAX_N",
    "DEMO_PROMPTS",
    "DEFAULT_MAX_PROMPT_CHARS",
    "DEFAULT_MAX_ROUTE_PROMPTS",
    "APIError",
    "Demo",
    "Service",
    "SpendWindow",
    "StreamBudget",
    "build_demo",
    "create_app",
    "demo_app",
]
