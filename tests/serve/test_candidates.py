"""``costroute.candidates``: every image made for a served image, with its pixels, scores and cost, on request only."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
from PIL import Image

from costroute.scoring import CallableScorer
from costroute.serve import create_app

from ._helpers import NEW_PROMPTS, Counting, ServerThread, brightness, draw, make_cascade, make_router


def pixels(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"))


def ask(server, prompt: str, seed: int, **extension) -> httpx.Response:
    body = {"prompt": prompt, "response_format": "b64_json", "costroute": {"seed": seed, **extension}}
    return httpx.post(f"{server.url}/v1/images/generations", json=body, timeout=60)


@pytest.fixture(scope="module")
def cascade():
    return make_cascade()


@pytest.fixture(scope="module")
def cascade_server(cascade):
    with ServerThread(create_app(cascade, seed=0)) as server:
        yield server


def test_the_default_response_carries_no_candidates(cascade_server):
    response = ask(cascade_server, NEW_PROMPTS[1], seed=3)
    assert response.status_code == 200, response.text
    assert "candidates" not in response.json()["data"][0]["costroute"]
    response = ask(cascade_server, NEW_PROMPTS[1], seed=3, candidates=False)
    assert "candidates" not in response.json()["data"][0]["costroute"]


def test_a_cascades_candidates_are_the_images_generate_makes_with_their_scores_and_costs(cascade_server, cascade):
    escalated = 0
    for seed, prompt in enumerate(NEW_PROMPTS):
        response = ask(cascade_server, prompt, seed=seed, candidates=True)
        assert response.status_code == 200, response.text
        datum = response.json()["data"][0]
        ext = datum["costroute"]
        candidates = ext["candidates"]
        made = [c["generator"] for c in candidates]
        assert made == [g for g in ext["generators_tried"] if g in made]  # in the order made
        assert [c["generator"] for c in candidates if c["returned"]] == [ext["generator"]]
        reference = cascade.generate([prompt], seed=seed, cost_penalty=ext["cost_penalty"], progress=False)
        assert set(made) == set(reference.candidates[0])
        for c in candidates:
            assert np.array_equal(
                pixels(c["b64_json"]), np.asarray(reference.candidates[0][c["generator"]].convert("RGB"))
            )
            assert c["seed"] == reference.candidate_seeds[0][c["generator"]]
            assert c["scores"] == {s: by[c["generator"]] for s, by in ext["scores"].items() if c["generator"] in by}
            assert c["cost"] == pytest.approx(c["normalized_cost"] * 10.0)  # the dearest generator costs 10
            assert c["cost_unit"] == ext["cost_unit"] and c["seconds"] >= 0
        returned = next(c for c in candidates if c["returned"])
        assert returned["b64_json"] == datum["b64_json"]
        assert sum(c["normalized_cost"] for c in candidates) == pytest.approx(ext["normalized_cost"])
        assert sum(c["cost"] for c in candidates) == pytest.approx(ext["cost"])
        escalated += len(candidates) > 1
    assert escalated  # some image had more than one candidate


def test_a_routers_one_candidate_is_the_served_image_scored_and_charged(tmp_path):
    router = make_router(cost_penalty=0.3)
    scorer = CallableScorer("bright", brightness, cost=0.5)
    with ServerThread(create_app(router, scorer=scorer, seed=0)) as server:
        response = ask(server, NEW_PROMPTS[0], seed=5, candidates=True)
        explicit = httpx.post(
            f"{server.url}/v1/images/generations",
            json={"prompt": NEW_PROMPTS[0], "model": "dear", "costroute": {"seed": 5, "candidates": True}},
            timeout=60,
        )
    assert response.status_code == 200 and explicit.status_code == 200, response.text + explicit.text
    for datum in (response.json()["data"][0], explicit.json()["data"][0]):
        ext = datum["costroute"]
        (candidate,) = ext["candidates"]
        assert candidate["generator"] == ext["generator"] and candidate["returned"] is True
        assert candidate["b64_json"] == datum["b64_json"] and candidate["seed"] == ext["seed"]
        assert candidate["scores"] == {"bright": ext["scores"]["bright"][ext["generator"]]}
        assert candidate["cost"] == pytest.approx(ext["cost"])
        assert candidate["normalized_cost"] == pytest.approx(ext["normalized_cost"])
    assert explicit.json()["data"][0]["costroute"]["generator"] == "dear"


def test_candidates_must_be_a_boolean(cascade_server):
    response = ask(cascade_server, NEW_PROMPTS[0], seed=1, candidates="yes")
    assert response.status_code == 400
    error = response.json()["error"]
    assert "candidates" in error["param"] and error["type"] == "invalid_request_error"


def test_a_generator_that_failed_is_a_fallback_not_a_candidate():
    cascade = make_cascade([Counting(fail_on="wire"), Counting(fail_on="wire"), draw])
    with ServerThread(create_app(cascade, seed=0)) as server:
        response = ask(server, "a wire", seed=2, candidates=True)  # short: routed to a cheap generator first
    assert response.status_code == 200, response.text
    ext = response.json()["data"][0]["costroute"]
    failed = [f["generator"] for f in ext["fallbacks"]]
    assert failed and set(failed) <= {"cheap", "mid"}
    assert [c["generator"] for c in ext["candidates"]] == ["dear"] and ext["candidates"][0]["returned"]
    assert ext["candidates"][0]["normalized_cost"] == pytest.approx(ext["normalized_cost"])
