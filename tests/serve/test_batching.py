"""Dynamic batching: concurrent requests share one pipeline call per generator, and each gets generate's image.

The router runs real tiny diffusers pipelines (``costroute tiny``'s kind, random weights) in
float64, where an image does not depend on the batch it was made in, so that the served images
can be compared pixel for pixel with ``RoutingPlan.generate`` of each prompt alone.
"""

from __future__ import annotations

import asyncio
import base64
import io

import httpx
import numpy as np
import pytest
from PIL import Image

from costroute import CostAwareRouter
from costroute.serve import create_app

from ._helpers import (
    NEW_PROMPTS,
    PIPELINE_CALLS,
    TRAIN_PROMPTS,
    CountedDiffusers,
    Counting,
    ServerThread,
    make_cascade,
    quality,
)


def pixels(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"))


async def _post_all(url: str, bodies: list[dict]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60) as client:
        return await asyncio.gather(*(client.post(url, json=body) for body in bodies))


def post_all(url: str, bodies: list[dict]) -> list[httpx.Response]:
    """Send every request at once, from one event loop."""
    return asyncio.run(_post_all(url, bodies))


@pytest.fixture(scope="module")
def diffusers_router(tiny_sd):
    generators = [
        CountedDiffusers("small", tiny_sd, steps=2, dtype="float64", cost=1.0),
        CountedDiffusers("large", tiny_sd, steps=4, dtype="float64", cost=3.0),
    ]
    router = CostAwareRouter(generators, features="complexity", quality_model="ridge", cost_penalty=0.3)
    return router.fit(TRAIN_PROMPTS, quality(TRAIN_PROMPTS, [1.0, 3.0]))


def test_concurrent_requests_share_one_pipeline_call_and_get_generates_images(diffusers_router):
    router = diffusers_router
    seeds = [101 + i for i in range(len(NEW_PROMPTS))]
    references = [router.route([p]).generate(seed=s, progress=False) for p, s in zip(NEW_PROMPTS, seeds)]
    used = {r.generators[0] for r in references}
    assert used == {"small", "large"}  # both generators serve some of the prompts
    app = create_app(router, max_batch_size=len(NEW_PROMPTS), batch_wait_ms=2000)
    with ServerThread(app) as server:
        PIPELINE_CALLS.clear()
        bodies = [
            {"prompt": p, "model": "auto", "response_format": "b64_json", "costroute": {"seed": s}}
            for p, s in zip(NEW_PROMPTS, seeds)
        ]
        responses = post_all(f"{server.url}/v1/images/generations", bodies)
        metrics = httpx.get(f"{server.url}/metrics").text
    assert dict(PIPELINE_CALLS) == {"small": 1, "large": 1}  # six requests, one call per generator
    for response, reference in zip(responses, references):
        assert response.status_code == 200, response.text
        data = response.json()
        assert data["size"] == "64x64"
        ext = data["data"][0]["costroute"]
        assert ext["generator"] == reference.generators[0] and ext["seed"] == reference.seeds[0]
        assert np.array_equal(pixels(data["data"][0]["b64_json"]), np.asarray(reference[0].convert("RGB")))
    assert "costroute_batch_images_count 1.0" in metrics  # one batch of six images
    assert "costroute_batch_images_sum 6.0" in metrics


def test_a_size_other_than_the_pipelines_is_refused(diffusers_router):
    with ServerThread(create_app(diffusers_router)) as server:
        bad = httpx.post(f"{server.url}/v1/images/generations", json={"prompt": "a cat", "size": "512x512"})
        good = httpx.post(f"{server.url}/v1/images/generations", json={"prompt": "a cat", "size": "64x64"})
    assert bad.status_code == 400 and "64x64" in bad.json()["error"]["message"]
    assert good.status_code == 200 and good.json()["size"] == "64x64"


def test_a_batch_waits_no_longer_than_batch_wait_ms_and_splits_at_max_batch_size():
    counter = Counting()
    cascade_free = make_cascade([counter] * 3).router_  # a fitted router over counting generators
    app = create_app(cascade_free, max_batch_size=4, batch_wait_ms=1000, cost_penalty=100.0)  # all to "cheap"
    with ServerThread(app) as server:
        bodies = [{"prompt": f"a cat number {i}", "costroute": {"seed": i}} for i in range(10)]
        responses = post_all(f"{server.url}/v1/images/generations", bodies)
    assert all(r.status_code == 200 for r in responses)
    assert counter.images == 10 and max(counter.batches) <= 4 and counter.calls == 3


def test_a_cascades_concurrent_requests_get_what_generate_makes_for_each(tmp_path):
    counters = [Counting(), Counting(), Counting()]
    cascade = make_cascade(counters)
    seeds = [7 + i for i in range(len(NEW_PROMPTS))]
    app = create_app(cascade, max_batch_size=len(NEW_PROMPTS), batch_wait_ms=2000)
    with ServerThread(app) as server:
        bodies = [{"prompt": p, "costroute": {"seed": s}} for p, s in zip(NEW_PROMPTS, seeds)]
        responses = post_all(f"{server.url}/v1/images/generations", bodies)
    served_calls = sum(c.calls for c in counters)
    exts = [r.json()["data"][0]["costroute"] for r in responses]
    made = sum(len(e["generators_tried"]) for e in exts)
    assert any(len(e["generators_tried"]) > 1 for e in exts)  # some requests escalated
    assert served_calls < made  # images of different requests shared calls
    for prompt, seed, response, ext in zip(NEW_PROMPTS, seeds, responses, exts):
        reference = cascade.generate([prompt], seed=seed, cost_penalty=ext["cost_penalty"], progress=False)
        assert ext["generators_tried"] == reference.order[0] and ext["generator"] == reference.returned[0]
        assert np.array_equal(pixels(response.json()["data"][0]["b64_json"]), np.asarray(reference[0].convert("RGB")))
        np.testing.assert_allclose(ext["normalized_cost"], reference.normalized_cost[0])
        scored = {g: v for g, v in reference.scores.iloc[0].items() if not np.isnan(v)}
        assert ext["scores"].get("bright", {}) == pytest.approx(scored)
