"""Keys, body limits, a full queue and failing generators: every refusal is quick and in OpenAI's error JSON."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest

from costroute.scoring import CallableScorer
from costroute.serve import create_app

from ._helpers import NEW_PROMPTS, Counting, ServerThread, make_router, slow_draw


def is_openai_error(response: httpx.Response) -> bool:
    return set(response.json().get("error", {})) == {"message", "type", "param", "code"}


def test_a_missing_or_wrong_key_is_401_and_the_right_one_works():
    with ServerThread(create_app(make_router(), api_key="sekrit")) as server:
        wrong = openai.OpenAI(base_url=f"{server.url}/v1", api_key="guess", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as caught:
            wrong.images.generate(model="auto", prompt="a cat")
        assert caught.value.status_code == 401 and caught.value.body["code"] == "invalid_api_key"
        bare = httpx.post(f"{server.url}/v1/route", json={"prompt": "a cat"})
        assert bare.status_code == 401 and is_openai_error(bare) and bare.headers["www-authenticate"] == "Bearer"
        assert httpx.get(f"{server.url}/metrics").status_code == 401
        assert httpx.get(f"{server.url}/healthz").status_code == 200  # open to load balancers
        right = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sekrit", max_retries=0)
        assert right.images.generate(model="auto", prompt="a cat").data
        assert httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer sekrit"}).status_code == 200


def test_a_body_over_the_limit_is_413_with_or_without_its_length():
    with ServerThread(create_app(make_router(), max_prompt_chars=100)) as server:
        url = f"{server.url}/v1/images/generations"
        big = b'{"prompt": "' + b"x" * 50_000 + b'"}'
        declared = httpx.post(url, content=big, headers={"content-type": "application/json"})
        assert declared.status_code == 413 and is_openai_error(declared)

        def chunks():
            for start in range(0, len(big), 4096):
                yield big[start : start + 4096]

        streamed = httpx.post(url, content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413 and is_openai_error(streamed)
        long_prompt = httpx.post(url, json={"prompt": "x" * 101})  # under the body limit, over the prompt's
        assert long_prompt.status_code == 400 and long_prompt.json()["error"]["code"] == "prompt_too_long"
        assert httpx.post(url, json={"prompt": "x" * 100}).status_code == 200


async def _burst(url: str, n: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as client:
        return await asyncio.gather(*(client.post(url, json={"prompt": f"a cat {i}"}) for i in range(n)))


def test_a_full_queue_answers_429_with_retry_after_at_once():
    router = make_router([slow_draw] * 3)  # 0.4 s per generator call
    app = create_app(router, max_queue=1, max_batch_size=1, batch_wait_ms=0)
    with ServerThread(app) as server:
        started = time.perf_counter()
        responses = asyncio.run(_burst(f"{server.url}/v1/images/generations", 6))
        elapsed = time.perf_counter() - started
        refused = [r for r in responses if r.status_code == 429]
        assert refused and all(is_openai_error(r) and int(r.headers["retry-after"]) >= 1 for r in refused)
        assert refused[0].json()["error"]["code"] == "queue_full"
        assert {r.status_code for r in responses} == {200, 429}
        assert elapsed < 0.4 * (6 - len(refused)) + 3.0  # the refused were never queued behind the others
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        assert client.images.generate(model="auto", prompt="a cat").data  # serving again once the queue drained


def test_a_failing_generator_falls_back_by_utility_and_says_so():
    failing = Counting(fail_on="")  # raises on every prompt
    router = make_router([Counting(), Counting(), failing])  # λ = 0: long prompts go to "dear", which fails
    with ServerThread(create_app(router)) as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        response = client.images.generate(model="auto", prompt=NEW_PROMPTS[1], extra_body={"costroute": {"seed": 1}})
        ext = response.data[0].model_extra["costroute"]
        plan = router.route([NEW_PROMPTS[1]])
        second = plan.utilities()[0].argsort()[::-1][1]
        assert ext["generators_tried"] == ["dear", router.generator_names_[second]]
        assert ext["generator"] == router.generator_names_[second]
        assert ext["fallbacks"][0]["generator"] == "dear" and "fails" in ext["fallbacks"][0]["error"]
        assert ext["cost"] == router.generators_[ext["generator"]].cost  # the failed attempt is not charged
        named = httpx.post(f"{server.url}/v1/images/generations", json={"prompt": "a cat", "model": "dear"})
        assert named.status_code == 502 and is_openai_error(named)  # a request naming it gets no other
        assert "fails" in named.json()["error"]["message"]
        metrics = httpx.get(f"{server.url}/metrics").text
        assert "costroute_fallbacks_total 1.0" in metrics


def test_when_every_generator_fails_the_request_gets_a_5xx_error_not_a_hang():
    router = make_router([Counting(fail_on="")] * 3)
    with ServerThread(create_app(router)) as server:
        response = httpx.post(f"{server.url}/v1/images/generations", json={"prompt": "a cat"}, timeout=30)
        assert response.status_code == 502 and is_openai_error(response)
        assert response.json()["error"]["code"] == "generation_failed"
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.InternalServerError):
            client.images.generate(model="auto", prompt="a cat")


def test_a_failing_scorer_leaves_the_image_served_unscored_and_uncharged():
    def broken(prompts, images):
        raise RuntimeError("the judge is down")

    router = make_router()
    app = create_app(router, scorer=CallableScorer("judge", broken, cost=5.0), cost_penalty=100.0)
    with ServerThread(app) as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        ext = client.images.generate(model="auto", prompt="a cat").data[0].model_extra["costroute"]
    assert ext["scores"] == {} and "the judge is down" in ext["warnings"][0]
    assert ext["cost"] == 1.0


def test_bad_settings_are_refused_naming_them():
    router = make_router()
    with pytest.raises(ValueError, match="explore"):
        create_app(router, explore=1.5)
    with pytest.raises(ValueError, match="max_queue"):
        create_app(router, max_queue=0)
    with pytest.raises(TypeError, match="budget"):
        create_app(router, budget="0.3")
    with pytest.raises(TypeError, match="CostAwareRouter or CascadeRouter"):
        create_app("router.skops")
    with pytest.raises(ValueError, match="not fitted"):
        create_app(type(router)(router.generators))


@pytest.mark.parametrize("how", ["mounted", "root_path"])
def test_the_key_is_required_when_the_app_is_mounted_or_behind_a_root_path(how):
    from fastapi import FastAPI

    served = create_app(make_router(), api_key="sekrit")
    if how == "mounted":
        host = FastAPI()
        host.mount("/img", served)
        app, prefix, root = host, "/img", ""
    else:  # behind a proxy that strips /api: uvicorn puts it back into the path the middleware sees
        app, prefix, root = served, "", "/api"
    with ServerThread(app, root_path=root) as server:
        url = f"{server.url}{prefix}/v1/images/generations"
        body = {"prompt": "a red cat", "costroute": {"seed": 0}}
        assert httpx.post(url, json=body, timeout=30).status_code == 401
        assert httpx.get(f"{server.url}{prefix}/metrics", timeout=30).status_code == 401
        ok = httpx.post(url, json=body, headers={"Authorization": "bearer sekrit"}, timeout=30)
        assert ok.status_code == 200, ok.text
