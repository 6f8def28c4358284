"""The official ``openai`` client against a real server: images, models, the extension fields, and /v1/route."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import openai
import pytest
from PIL import Image

from costroute.serve import create_app

from ._helpers import NEW_PROMPTS, ServerThread, make_router


def pixels(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"))


@pytest.fixture(scope="module")
def router():
    return make_router(cost_penalty=0.3)


@pytest.fixture(scope="module")
def server(router):
    with ServerThread(create_app(router, seed=0)) as server:
        yield server


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def test_the_openai_client_gets_the_image_generate_makes_for_that_seed(client, router):
    prompt = NEW_PROMPTS[1]
    response = client.images.generate(
        model="auto", prompt=prompt, response_format="b64_json", extra_body={"costroute": {"seed": 11}}
    )
    assert len(response.data) == 1 and response.size == "16x16" and response.output_format == "png"
    ext = response.data[0].model_extra["costroute"]
    plan = router.route([prompt])
    reference = plan.generate(seed=11, progress=False)
    assert ext["generator"] == plan.generator_names[0] == reference.generators[0]
    assert ext["seed"] == reference.seeds[0]
    assert np.array_equal(pixels(response.data[0].b64_json), np.asarray(reference[0].convert("RGB")))
    assert ext["cost"] == pytest.approx(reference.costs[0]) and ext["cost_unit"] == "usd"
    assert ext["normalized_cost"] == pytest.approx(plan.normalized_costs[0])
    assert ext["cost_penalty"] == pytest.approx(0.3) and ext["routed"] and not ext["explored"]
    assert ext["generators_tried"] == [ext["generator"]] and ext["fallbacks"] == []
    assert ext["predicted_quality"] == pytest.approx(plan.expected_quality[0])
    top = response.model_extra["costroute"]
    assert top["seed"] == 11 and top["model"] == "auto" and top["cascade"] is False and top["failed"] == []


def test_a_request_names_a_generator_its_cost_penalty_and_n_images(client, router):
    response = client.images.generate(
        model="mid", prompt="a teapot", n=3, response_format="b64_json", extra_body={"costroute": {"seed": 5}}
    )
    exts = [d.model_extra["costroute"] for d in response.data]
    assert [e["generator"] for e in exts] == ["mid"] * 3 and not any(e["routed"] for e in exts)
    reference = router.route(["a teapot"] * 3, cost_penalty=100.0)  # the cheapest, to check the seeds only
    assert [e["seed"] for e in exts] == reference.generate(seed=5, progress=False).seeds
    assert len({d.b64_json for d in response.data}) == 3  # three seeds, three images
    cheap = client.images.generate(
        model="auto", prompt=NEW_PROMPTS[1], extra_body={"costroute": {"seed": 5, "cost_penalty": 50.0}}
    )
    ext = cheap.data[0].model_extra["costroute"]
    assert ext["generator"] == "cheap" and ext["cost_penalty"] == 50.0


def test_without_a_seed_the_server_draws_one_and_says_which(client):
    a = client.images.generate(model="auto", prompt="a teapot")
    b = client.images.generate(
        model="auto", prompt="a teapot", extra_body={"costroute": {"seed": a.model_extra["costroute"]["seed"]}}
    )
    assert a.data[0].b64_json == b.data[0].b64_json


def test_models_lists_auto_and_every_generator(client):
    models = client.models.list()
    assert [m.id for m in models.data] == ["auto", "cheap", "mid", "dear"]
    assert models.data[1].model_extra["costroute"] == {
        "cost": 1.0,
        "cost_unit": "usd",
        "normalized_cost": 0.1,
        "size": "16x16",
    }


def test_route_returns_the_decisions_only(server, router):
    body = httpx.post(f"{server.url}/v1/route", json={"prompts": NEW_PROMPTS}).json()
    plan = router.route(NEW_PROMPTS)
    assert [d["generator"] for d in body["data"]] == plan.generator_names.tolist()
    np.testing.assert_allclose([d["predicted_quality"] for d in body["data"]], plan.expected_quality)
    np.testing.assert_allclose([d["normalized_cost"] for d in body["data"]], plan.normalized_costs)
    assert body["decision"] == "route" and body["cascade"] is False
    assert {d["cost_penalty"] for d in body["data"]} == {0.3}
    one = httpx.post(f"{server.url}/v1/route", json={"prompt": "a teapot", "cost_penalty": 100.0}).json()
    assert one["data"][0]["generator"] == "cheap"


def test_health_and_metrics(server, client):
    client.images.generate(model="auto", prompt="a cat")
    health = httpx.get(f"{server.url}/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ready"
    text = httpx.get(f"{server.url}/metrics").text
    assert 'costroute_requests_total{endpoint="/v1/images/generations",status="200"}' in text
    assert "costroute_images_total{generator=" in text and "costroute_spend_total" in text
    assert "costroute_request_seconds_bucket" in text and "costroute_queue_length" in text
    assert "costroute_batch_images_bucket" in text


@pytest.mark.parametrize(
    ("kwargs", "param", "says"),
    [
        ({"model": "auto", "response_format": "url"}, "response_format", "b64_json"),
        ({"model": "nope"}, "model", "'auto'"),
        ({"model": "mid", "size": "512x512"}, "size", "16x16"),
        ({"model": "auto", "size": "big"}, "size", "WIDTHxHEIGHT"),
        ({"model": "auto", "n": 9}, "n", "between 1 and 4"),
        ({"model": "auto", "extra_body": {"costroute": {"seed": -1}}}, "costroute.seed", "greater than or equal"),
        ({"model": "auto", "extra_body": {"costroute": {"colour": 1}}}, "costroute.colour", "Extra inputs"),
    ],
)
def test_bad_requests_raise_the_clients_bad_request_error_naming_the_field(client, kwargs, param, says):
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(prompt="a cat", **kwargs)
    error = caught.value.body
    assert caught.value.status_code == 400 and error["param"] == param and says in error["message"]
    assert set(error) >= {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"


def test_the_size_made_is_accepted_and_so_is_auto(client):
    assert client.images.generate(model="auto", prompt="a cat", size="16x16").size == "16x16"
    assert client.images.generate(model="dear", prompt="a cat", size="auto").size == "16x16"


def test_every_error_is_openai_error_json(server):
    for response in (
        httpx.get(f"{server.url}/no/such/path"),
        httpx.get(f"{server.url}/v1/images/generations"),
        httpx.post(
            f"{server.url}/v1/images/generations", content=b"{not json", headers={"content-type": "application/json"}
        ),
        httpx.post(f"{server.url}/v1/images/generations", json={"prompt": 42}),
        httpx.post(f"{server.url}/v1/images/generations", json={"prompt": "   "}),
        httpx.post(
            f"{server.url}/v1/images/generations",
            content=b'{"prompt": "a \\ud800 cat"}',  # a lone surrogate: not text a tokenizer can read
            headers={"content-type": "application/json"},
        ),
        httpx.post(f"{server.url}/v1/route", json={"prompts": []}),
        httpx.post(f"{server.url}/v1/route", json={"prompt": "a", "prompts": ["b"]}),
    ):
        assert response.status_code in (400, 404, 405), response.text
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}, response.text


def test_a_prompt_longer_than_the_limit_is_refused(router):
    with ServerThread(create_app(router, max_prompt_chars=20)) as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.BadRequestError, match="21 characters"):
            client.images.generate(model="auto", prompt="x" * 21)
        assert client.images.generate(model="auto", prompt="x" * 20).data
