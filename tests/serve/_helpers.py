"""Real servers on loopback for the serving tests: generators made of plain functions, routers, a server thread.

:class:`ServerThread` runs a real uvicorn server on a free 127.0.0.1 port in a background thread
(stopped through ``should_exit``, which runs the app's shutdown); clients are the real
``openai`` client and httpx.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import threading
import time

import numpy as np
import uvicorn
from PIL import Image

from costroute import CascadeRouter, CostAwareRouter
from costroute.generators import CallableGenerator, DiffusersGenerator
from costroute.scoring import CallableScorer

#: Prompts of varied length and structure, so that the complexity features separate them.
TRAIN_PROMPTS = [
    "a cat",
    "a red apple",
    "a white wall",
    "a dog",
    "sunset",
    "a blue car",
    "two cats and three dogs playing on a sofa next to a window at night",
    "a crowded market with red umbrellas, a clock tower on the left and rain",
    "four people left of a tall tree, one holding a yellow kite, at dusk",
    "a kitchen with seven copper pots hanging above a wooden table",
    "an astronaut riding a horse on the moon, earth behind, in watercolour",
    "three red balls on top of a green box beside two blue cubes",
    "a lighthouse",
    "a small boat",
    "a bowl of soup",
    "a city skyline at night with neon signs, reflections in a river and fog",
]
#: Prompts never seen in training.
NEW_PROMPTS = [
    "a green pear",
    "five birds on a wire above a red barn, with mountains behind at sunrise",
    "a dog in the snow",
    "two glasses of wine next to a candle on a table by the window",
    "a teapot",
    "a library with tall shelves, a ladder on the left and a sleeping cat",
]


def draw(prompts, seeds):
    """A 16x16 RGB noise image per prompt, from its seed and the prompt: deterministic, per image."""
    out = []
    for prompt, seed in zip(prompts, seeds):
        rng = np.random.default_rng([int(seed), len(prompt)])
        out.append(Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)))
    return out


def slow_draw(prompts, seeds):
    """:func:`draw`, taking 0.4 s per call (a model in flight long enough to be interrupted)."""
    time.sleep(0.4)
    return draw(prompts, seeds)


def brightness(prompts, images):
    """Mean pixel value in [0, 1]: a real function of each image."""
    return [float(np.asarray(im, dtype=float).mean() / 255) for im in images]


class Counting:
    """:func:`draw`, counting its calls and images; raises for prompts holding ``fail_on``."""

    def __init__(self, fail_on: str | None = None):
        self.calls = 0
        self.images = 0
        self.batches: list[int] = []
        self.fail_on = fail_on

    def __deepcopy__(self, memo):  # the router's copies of the generator share the counts
        return self

    def __call__(self, prompts, seeds):
        self.calls += 1
        self.images += len(prompts)
        self.batches.append(len(prompts))
        if self.fail_on is not None and any(self.fail_on in p for p in prompts):
            raise RuntimeError(f"this generator fails on {self.fail_on!r}")
        return draw(prompts, seeds)


def quality(prompts, costs):
    """A constructed quality matrix: long prompts gain from expensive generators, short ones do not."""
    words = np.array([len(p.split()) for p in prompts], dtype=float)[:, None]
    costs = np.asarray(costs, dtype=float)[None, :]
    return 1.0 + 0.05 * words * np.log1p(costs) - 0.02 * np.log1p(costs)


def make_router(fns=None, costs=(1.0, 3.0, 10.0), names=("cheap", "mid", "dear"), **params):
    """A CostAwareRouter over CallableGenerators (``fns``: one callable per generator; default :func:`draw`)."""
    fns = fns or [draw] * len(names)
    generators = [CallableGenerator(name, fn, cost=cost, size="16x16") for name, fn, cost in zip(names, fns, costs)]
    router = CostAwareRouter(generators, features="complexity", quality_model="ridge", **params)
    return router.fit(TRAIN_PROMPTS, quality(TRAIN_PROMPTS, costs))


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """A real uvicorn server for ``app`` on a free loopback port, in a background thread.

    ``with ServerThread(app) as server:`` starts it (models loaded: the app's lifespan ran) and
    stops it on exit (the app's shutdown runs); ``server.url`` is ``http://127.0.0.1:PORT``.
    """

    def __init__(self, app, timeout: float = 60.0, root_path: str = ""):
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.timeout = timeout
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", root_path=root_path
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + self.timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(self.timeout)
        assert not self.thread.is_alive(), "the test server did not stop"

    def __exit__(self, *exc) -> None:
        self.stop()


#: Calls of :class:`CountedDiffusers` per generator name.
PIPELINE_CALLS: collections.Counter = collections.Counter()


class CountedDiffusers(DiffusersGenerator):
    """A real :class:`~costroute.generators.DiffusersGenerator` that counts its pipeline calls in :data:`PIPELINE_CALLS`."""

    def generate_images(self, prompts, seeds):
        PIPELINE_CALLS[self.name] += 1
        return super().generate_images(prompts, seeds)


def make_cascade(fns=None, scoring_cost=0.05, cost_penalty=0.05, **params):
    """A CascadeRouter over :func:`make_router`'s generators whose router is uncertain and whose scorer is not."""
    costs = (1.0, 3.0, 10.0)
    rng = np.random.default_rng(0)
    Q = quality(TRAIN_PROMPTS, costs) + 0.4 * rng.normal(size=(len(TRAIN_PROMPTS), 3))
    S = Q + 0.1 * rng.normal(size=Q.shape)
    router = make_router(fns)
    scorer = CallableScorer("bright", brightness, cost=scoring_cost)
    cascade = CascadeRouter(router, scorer=scorer, cost_penalty=cost_penalty, random_state=0, **params)
    return cascade.fit(TRAIN_PROMPTS, Q, scores=S)
