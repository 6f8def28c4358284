"""Generators, scorers and backends named on a command line: :func:`parse_generator`, :func:`parse_scorer`,
:func:`parse_backend`.

Generators::

    PRESET[:STEPS]              a preset of costroute.generators.presets (sdxl-turbo-1, sd15-25 ...)
    diffusers:MODEL[:STEPS]     a diffusers pipeline: a local folder (save_pretrained) or a hub id

Scorers::

    clip[:MODEL]                CLIPScore of a CLIP model (default openai/clip-vit-large-patch14)
    vqa[:MODEL]                 VQAScore of a LLaVA-style model (default llava-hf/llava-1.5-7b-hf)

Either may start with ``NAME=`` to name it (``fast=diffusers:./tiny:2``). Default names: the
preset (``PRESET-STEPSsteps`` with STEPS), the model folder's last part (``tiny-2steps``),
``clipscore:MODEL``, ``vqascore:MODEL``. Parsing checks the form and that local folders
exist; it loads nothing, counts nothing and imports neither torch nor diffusers.
"""

from __future__ import annotations

import os
import re
from typing import Any

from ..generators import BackendGenerator, DiffusersGenerator, presets
from ..scoring import CLIPScorer, Scorer, VQAScorer
from ._backend import Backend
from ._local import LocalBackend
from ._ray import RayBackend

__all__ = [
    "BACKENDS",
    "GENERATOR_FORMS",
    "SCORER_FORMS",
    "parse_backend",
    "parse_generator",
    "parse_scorer",
    "resolve_backend",
]

GENERATOR_FORMS = "[NAME=]PRESET[:STEPS] or [NAME=]diffusers:MODEL[:STEPS]"
SCORER_FORMS = "[NAME=]clip[:MODEL] or [NAME=]vqa[:MODEL]"

_NAMED = re.compile(r"^([^=:/\\]+)=(.+)$")


def _split_name(text: str, what: str, forms: str) -> tuple[str | None, str]:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"empty {what}; expected {forms}")
    match = _NAMED.match(text.strip())
    if match:
        return match.group(1).strip(), match.group(2).strip()
    return None, text.strip()


def _split_steps(rest: str, text: str) -> tuple[str, int | None]:
    """``(model or preset, steps)``: what follows the last ``:`` is the steps, unless it is part of a path."""
    head, sep, tail = rest.rpartition(":")
    if not sep or re.search(r"[/\\]", tail):  # no steps; or a Windows drive such as C:\models\x
        return rest, None
    if not re.fullmatch(r"\d+", tail.strip()):
        raise ValueError(
            f"steps must be an integer >= 1 in generator {text!r}, got {tail!r}; expected "
            f"{GENERATOR_FORMS}, e.g. {text.strip().rpartition(':')[0]}:4"
        )
    steps = int(tail)
    if steps < 1:
        raise ValueError(f"steps must be >= 1 in generator {text!r}, got {tail}")
    return head, steps


def parse_generator(text: str) -> BackendGenerator:
    """The generator a command-line spec names (see the module docstring for the forms).

    Raises
    ------
    ValueError
        An unknown preset or form (the message lists the forms and presets).
    FileNotFoundError
        A local model folder that does not exist or holds no ``model_index.json``.

    Examples
    --------
    >>> from costroute.collect import parse_generator
    >>> g = parse_generator("turbo=sdxl-turbo-1:2")
    >>> g.name, g.steps, g.model
    ('turbo', 2, 'stabilityai/sdxl-turbo')
    """
    name, rest = _split_name(text, "generator", GENERATOR_FORMS)
    if rest.startswith("diffusers:"):
        model, steps = _split_steps(rest[len("diffusers:") :], text)
        if not model:
            raise ValueError(f"generator {text!r} names no model; expected diffusers:FOLDER_OR_HUB_ID[:STEPS]")
        default = os.path.basename(model.rstrip("/\\")) or model
        kwargs = {} if steps is None else {"steps": steps}
        return DiffusersGenerator(name or (default if steps is None else f"{default}-{steps}steps"), model, **kwargs)
    preset, steps = _split_steps(rest, text)
    if preset not in presets.PRESETS:
        raise ValueError(
            f"unknown generator {text!r}; expected {GENERATOR_FORMS}, with PRESET one of {presets.names()}"
        )
    default = preset if steps is None else f"{preset}-{steps}steps"
    changes = {"name": name or default}
    if steps is not None:
        changes["steps"] = steps
    return presets.get(preset, **changes)


def parse_scorer(text: str) -> Scorer:
    """The scorer a command-line spec names (see the module docstring for the forms).

    Raises
    ------
    ValueError
        An unknown form.
    FileNotFoundError
        A local model folder that does not exist or holds no config.

    Examples
    --------
    >>> from costroute.collect import parse_scorer
    >>> parse_scorer("clip").name
    'clipscore:clip-vit-large-patch14'
    """
    name, rest = _split_name(text, "scorer", SCORER_FORMS)
    kind, _, model = rest.partition(":")
    classes = {"clip": CLIPScorer, "vqa": VQAScorer}
    if kind not in classes:
        raise ValueError(f"unknown scorer {text!r}; expected {SCORER_FORMS}")
    kwargs = {"name": name} if name else {}
    if model:
        return classes[kind](model, **kwargs)
    return classes[kind](**kwargs)


#: Backend names accepted by ``collect(backend=...)``: name -> factory (called with no argument).
BACKENDS: dict[str, Any] = {"local": LocalBackend, "ray": RayBackend}


def resolve_backend(backend: Any) -> Backend:
    """A checked :class:`Backend` from a name of :data:`BACKENDS` or an instance."""
    if isinstance(backend, str) and backend in BACKENDS:
        backend = BACKENDS[backend]()
    if isinstance(backend, Backend):
        backend.check()
        return backend
    raise ValueError(
        f"backend must be one of {sorted(BACKENDS)} or a costroute.collect.Backend instance, got {backend!r}"
    )


def parse_backend(
    name: str, workers: int | None = None, address: str | None = None, connect_timeout: float | None = None
) -> Backend:
    """The backend of ``costroute collect --backend NAME [--workers N] [--address ADDRESS] [--connect-timeout S]``.

    ``workers``, ``address`` and ``connect_timeout`` are settings of the Ray backend
    (:class:`RayBackend`; ``None`` keeps its default); with another backend they are an
    error. The backend is checked (worker count, address form, ray installed, the cluster
    at the address reachable); nothing is started.

    Raises
    ------
    ValueError
        An unknown backend, a bad setting, or a Ray setting given with another backend.
    ConnectionError
        The Ray cluster at the address does not answer within ``connect_timeout`` seconds.
    """
    if name == "ray":
        kwargs = {} if connect_timeout is None else {"connect_timeout": connect_timeout}
        return resolve_backend(RayBackend(num_workers=workers, address=address, **kwargs))
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {sorted(BACKENDS)}")
    given = [
        flag
        for flag, value in (("--workers", workers), ("--address", address), ("--connect-timeout", connect_timeout))
        if value is not None
    ]
    if given:
        raise ValueError(
            f"{' and '.join(given)} set(s) the Ray backend's pool; add --backend ray, or drop "
            f"{' and '.join(given)} for --backend {name}"
        )
    return resolve_backend(name)
