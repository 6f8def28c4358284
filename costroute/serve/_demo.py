"""A cascade to serve on any machine: tiny offline models, a collected matrix and a fit, in seconds.

:func:`build_demo` writes tiny random-weight models into a folder (the ones ``costroute tiny``
writes), collects a small matrix with :func:`costroute.collect.collect` -- a few built-in
prompts, two generators that differ in their number of denoising steps, a quality scorer and
a second scorer that verifies -- and fits a :class:`~costroute.CascadeRouter` on it, the way
``costroute collect`` then ``costroute fit --verify`` would. :func:`demo_app` serves it.
``costroute serve --demo`` does both in a temporary folder, so that the playground page opens
without weights, a GPU or the network. The images are noise and the scores those of random
weights: it shows the machinery, not image quality.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

__all__ = ["DEMO_GENERATORS", "DEMO_PROMPTS", "Demo", "build_demo", "demo_app"]

#: The prompts the demo's matrix is collected on: short and long, simple and compositional.
DEMO_PROMPTS = [
    "a red apple on a table",
    "a white wall",
    "a crowded park at dusk with a red kite",
    "two cats on a sofa",
    "a lighthouse in a storm",
    "an astronaut riding a horse",
    "a bowl of soup",
    "a city skyline at night with neon signs and fog",
    "a small boat",
    "three red balls on top of a green box beside two blue cubes",
    "a dog",
    "a kitchen with copper pots above a wooden table",
    "a teapot",
    "a mountain lake at sunrise",
    "a library with tall shelves and a sleeping cat",
    "a green pear",
]

#: The demo's generators: name -> denoising steps of the same tiny pipeline (cost grows with steps).
DEMO_GENERATORS = {"sd-2steps": 2, "sd-8steps": 8}

#: Quality scorer (what the router predicts) and verifier (what the cascade scores images with).
QUALITY_SCORER = "judge"
VERIFIER = "check"


@dataclasses.dataclass
class Demo:
    """What :func:`build_demo` made: the fitted cascade and where its models and store are.

    Attributes
    ----------
    cascade : CascadeRouter
        Fitted; its generators and scorer load from ``folder``.
    folder : str
        The models (``sd``, ``judge``, ``clip``) and the store (``demo.sqlite``).
    store : str
        The collection store the cascade was fitted on.
    prompts : list of str
        The prompts of the matrix (:data:`DEMO_PROMPTS`).
    seconds : float
        Wall time of :func:`build_demo`.
    """

    cascade: Any
    folder: str
    store: str
    prompts: list[str]
    seconds: float


def build_demo(folder: str | os.PathLike, *, seeds: int = 2) -> Demo:
    """Write tiny models to ``folder``, collect a matrix over :data:`DEMO_PROMPTS`, fit a cascade on it.

    The generators are one tiny Stable Diffusion pipeline (random weights, 64x64 images) run
    with 2 and 8 steps (:data:`DEMO_GENERATORS`; costs in FLOPs, counted from the pipeline);
    the quality is the CLIPScore of one tiny CLIP model (``judge``) and the cascade verifies
    with the cosine of another (``check``), both with their costs in FLOPs. The router
    predicts quality from the prompt's MiniLM embedding (shipped with the package, offline)
    with ridge regression; the cascade's own λ is 0, so a request that gives none gets the
    best image the cascade can find. About 5-10 s on 2 CPU cores.

    Parameters
    ----------
    folder : str or path-like
        An existing folder to write into (``sd``, ``judge``, ``clip``, ``demo.sqlite``); it
        must outlive the cascade, which loads its models from there.
    seeds : int, default=2
        Images per (prompt, generator) in the matrix.

    Returns
    -------
    Demo

    Raises
    ------
    ValueError
        ``folder`` is not an existing folder, or ``seeds`` is not an integer >= 1.
    """
    from ..cascade import CascadeRouter
    from ..collect import collect
    from ..datasets import load_collection
    from ..generators import DiffusersGenerator, build_tiny_pipeline
    from ..router import CostAwareRouter
    from ..scoring import CLIPScorer, build_tiny_clip

    started = time.perf_counter()
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise ValueError(f"folder must be an existing folder to write the demo's models into, got {folder!r}")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an integer >= 1, got {seeds!r}")
    folder = os.path.abspath(folder)
    pipeline = build_tiny_pipeline(os.path.join(folder, "sd"), seed=0)
    judge = build_tiny_clip(os.path.join(folder, "judge"), seed=7)
    check = build_tiny_clip(os.path.join(folder, "clip"), seed=0)
    generators = [DiffusersGenerator(name, pipeline, steps=steps) for name, steps in DEMO_GENERATORS.items()]
    scorers = [CLIPScorer(judge, name=QUALITY_SCORER), CLIPScorer(check, name=VERIFIER, output="cosine")]
    store = os.path.join(folder, "demo.sqlite")
    collect(DEMO_PROMPTS, generators, scorers, store, seeds=seeds, progress=False)
    data = load_collection(store, scorer=QUALITY_SCORER)
    router = CostAwareRouter(data.generators, features="minilm", quality_model="ridge", random_state=0, progress=False)
    cascade = CascadeRouter(
        router, scorer=scorers[1], scoring_cost=data.scorer_costs[VERIFIER][0], cost_penalty=0.0, random_state=0
    ).fit(data.prompts, data.quality, scores=data.scores[VERIFIER])
    return Demo(cascade, folder, store, list(data.prompts), time.perf_counter() - started)


def demo_app(folder: str | os.PathLike, **settings: Any) -> Any:
    """The app (:func:`~costroute.serve.create_app`) serving :func:`build_demo`'s cascade built in ``folder``.

    ``settings`` are :func:`~costroute.serve.create_app`'s keyword arguments (``api_key``,
    ``seed``, ``budget`` ...). ``app.state.demo`` is the :class:`Demo`.
    """
    from ._app import create_app

    demo = build_demo(folder)
    app = create_app(demo.cascade, **settings)
    app.state.demo = demo
    return app
