"""The arguments of :func:`~costroute.collect.collect`, checked before any cost is counted or file opened."""

from __future__ import annotations

import dataclasses
import numbers
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..features._validation import check_prompt_text
from ..generators import BackendGenerator, GeneratorRegistry, GeneratorSpec
from ..scoring import Scorer
from ._backend import Backend
from ._specs import resolve_backend
from ._store import CollectionStore, check_store_file

__all__ = ["CollectArguments", "check_arguments"]


@dataclasses.dataclass
class CollectArguments:
    """What :func:`check_arguments` returns: :func:`~costroute.collect.collect`'s arguments, checked."""

    prompts: list[str]
    generators: list[BackendGenerator]
    scorers: list[Scorer]
    store: str
    seeds: list[int]
    batch_size: int
    backend: Backend
    progress: bool
    save_images: str | None
    regenerate: bool


def _check_prompts(prompts: Any) -> list[str]:
    if isinstance(prompts, (str, bytes)):
        raise TypeError(
            f"prompts must be a sequence of str, got a single {type(prompts).__name__} {prompts!r}; wrap it in a list"
        )
    if prompts is None or isinstance(prompts, Mapping) or not isinstance(prompts, Iterable):
        raise TypeError(
            f"prompts must be a sequence of str (a list, a pandas Series ...), got "
            f"{type(prompts).__name__}: {prompts!r}"
        )
    prompts = list(prompts)
    if not prompts:
        raise ValueError("prompts is empty; pass at least one prompt")
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise TypeError(f"prompts[{i}] must be a str, got {type(prompt).__name__}: {prompt!r}")
    check_prompt_text(prompts, name="prompts")  # empty, whitespace-only, lone surrogates: before any file exists
    seen: set[str] = set()
    dupes = [p for p in prompts if p in seen or seen.add(p)]
    if dupes:
        shown = list(dict.fromkeys(dupes))[:5]
        raise ValueError(
            f"prompts holds {len(dupes)} duplicate(s), e.g. {shown}; a prompt is one row of the "
            "collection (use seeds= for several images of it): pass list(dict.fromkeys(prompts))"
        )
    return prompts


def _check_generators(generators: Any) -> list[BackendGenerator]:
    if isinstance(generators, GeneratorSpec):
        raise TypeError(
            f"generators must be a list of generators, got a single {type(generators).__name__} "
            f"{generators.name!r}; wrap it in a list"
        )
    if generators is None or isinstance(generators, (str, bytes, Mapping)) or not isinstance(generators, Iterable):
        raise TypeError(
            "generators must be a GeneratorRegistry or a list of generators with a backend "
            "(DiffusersGenerator, CallableGenerator, a preset), got "
            f"{type(generators).__name__}: {generators!r}"
        )
    specs = list(generators)
    for spec in specs:
        if not isinstance(spec, BackendGenerator):
            what = (
                f"a plain GeneratorSpec {spec.name!r}"
                if isinstance(spec, GeneratorSpec)
                else f"{type(spec).__name__} {spec!r}"
            )
            raise TypeError(
                f"every generator must be able to make images (DiffusersGenerator, CallableGenerator, "
                f"a preset from costroute.generators.presets); got {what}"
            )
    GeneratorRegistry(specs)  # at least one, unique names, one cost unit
    return specs


def _check_scorers(scorers: Any) -> list[Scorer]:
    if isinstance(scorers, Scorer):
        return [scorers]
    if scorers is None or isinstance(scorers, (str, bytes, Mapping)) or not isinstance(scorers, Iterable):
        raise TypeError(
            f"scorers must be a list of Scorer (CLIPScorer, VQAScorer, CallableScorer), got "
            f"{type(scorers).__name__}: {scorers!r}"
        )
    out = list(scorers)
    if not out:
        raise ValueError("scorers is empty; pass at least one Scorer, e.g. [CLIPScorer(...)]")
    for scorer in out:
        if not isinstance(scorer, Scorer):
            raise TypeError(
                f"every scorer must be a costroute.scoring.Scorer (wrap a function with "
                f"CallableScorer), got {type(scorer).__name__}: {scorer!r}"
            )
    names = [s.name for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"scorer names must be unique; duplicated: {dupes} (pass name= to tell them apart)")
    return out


def _check_seeds(seeds: Any) -> list[int]:
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds must be a number of seeds >= 1 or a list of seed indices, got {seeds!r}")
        return list(range(int(seeds)))
    if isinstance(seeds, (str, bytes, Mapping)) or not isinstance(seeds, Iterable):
        raise TypeError(
            f"seeds must be a number of seeds >= 1 or a list of seed indices >= 0, got "
            f"{type(seeds).__name__}: {seeds!r}"
        )
    out = list(seeds)
    if not out:
        raise ValueError("seeds is an empty list; pass a number of seeds >= 1 or seed indices such as [0, 1]")
    for s in out:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0:
            raise ValueError(f"seed indices must be integers >= 0, got {s!r} in seeds={out!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"seed indices must be distinct, got {out!r}")
    return [int(s) for s in out]


def _check_folder(save_images: Any) -> str | None:
    if save_images is None:
        return None
    if isinstance(save_images, os.PathLike):
        save_images = os.fspath(save_images)
    if not isinstance(save_images, str) or not save_images.strip():
        raise TypeError(f"save_images must be a folder path or None, got {type(save_images).__name__}: {save_images!r}")
    folder = os.path.abspath(os.path.expanduser(save_images))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"save_images={save_images!r} is a file; pass a folder (it is created when missing)")
    return folder


def _check_store_path(store: Any) -> str:
    if isinstance(store, CollectionStore):
        return store.path
    if isinstance(store, os.PathLike):
        store = os.fspath(store)
    if not isinstance(store, str) or not store.strip():
        raise TypeError(
            f"store must be the path of an SQLite file such as 'run.sqlite', got {type(store).__name__}: {store!r}"
        )
    path = os.path.abspath(os.path.expanduser(store))
    if os.path.isdir(path):
        raise ValueError(
            f"store={store!r} is a folder; pass the path of an SQLite file, e.g. {os.path.join(store, 'run.sqlite')!r}"
        )
    if not os.path.isdir(os.path.dirname(path)):
        raise ValueError(f"the folder of store={store!r} does not exist; create {os.path.dirname(path)!r} first")
    check_store_file(path)  # a text file, another database, a future schema: refused before any model loads
    return path


def check_arguments(
    prompts: Any,
    generators: Any,
    scorers: Any,
    store: Any,
    seeds: Any = 1,
    batch_size: Any = 8,
    backend: Any = "local",
    progress: Any = True,
    save_images: Any = None,
    regenerate: Any = False,
) -> CollectArguments:
    """Check :func:`collect`'s arguments before any cost is counted or model loaded.

    An existing store file is opened read-only to check that it is a store, and a Ray
    backend's cluster address is probed; nothing is created or written.
    """
    prompts = _check_prompts(prompts)
    generators = _check_generators(generators)
    scorers = _check_scorers(scorers)
    path = _check_store_path(store)
    seeds = _check_seeds(seeds)
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    for name, flag in (("progress", progress), ("regenerate", regenerate)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    backend = resolve_backend(backend)
    return CollectArguments(
        prompts,
        generators,
        scorers,
        path,
        seeds,
        int(batch_size),
        backend,
        bool(progress),
        _check_folder(save_images),
        bool(regenerate),
    )
