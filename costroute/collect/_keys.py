"""Stable identities: the key of a generator or scorer (a hash of its settings) and a prompt's seed number.

A collection store never mixes rows of two different generation functions under one name:
every generator is stored under :func:`generator_key`, a hash of everything that changes
its images, and every scorer under :func:`scorer_key`. Change a setting and the key
changes, so the next :func:`~costroute.collect.collect` treats it as a new generator and
leaves the old rows alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Mapping
from typing import Any

from ..execution import candidate_seed

__all__ = [
    "IGNORED_SETTINGS",
    "generator_identity",
    "generator_key",
    "image_seed_for",
    "prompt_number",
    "scorer_identity",
    "scorer_key",
]

#: Settings left out of the keys: where a model runs and how many images go through it at
#: once change the speed, not what is computed (up to floating-point rounding).
IGNORED_SETTINGS = frozenset({"device", "batch_size"})


def _callable_identity(fn: Any) -> str:
    """``module.qualname`` of a function, or of the class of a callable object."""
    module = getattr(fn, "__module__", None) or type(fn).__module__
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}.{qualname}"


def _plain(value: Any, where: str) -> Any:
    """``value`` as JSON-ready data whose text does not change between processes."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}[{k!r}]") for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(v, where) for v in value), key=repr)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__class__": type(value).__qualname__, **_plain(dataclasses.asdict(value), where)}
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():  # numpy scalar
        return _plain(value.item(), where)
    if type(value).__module__ == "torch":  # torch.dtype, torch.device
        return str(value)
    if callable(value):
        return _callable_identity(value)
    text = repr(value)
    if " at 0x" in text:
        raise TypeError(
            f"{where} is a {type(value).__name__} whose repr {text!r} changes from one process to the next, so "
            "the store could not recognise it again; use settings made of numbers, strings, lists and dicts"
        )
    return text


def digest(identity: Mapping[str, Any]) -> str:
    """16 hex digits of the SHA-256 of ``identity`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def generator_identity(generator: Any) -> dict[str, Any]:
    """What :func:`generator_key` hashes, as JSON-ready data.

    ``{"class": class name, "name": name, "cost": cost per image, "cost_unit": unit,
    "settings": every setting but those in :data:`IGNORED_SETTINGS`}``, plus ``"fn":
    module.qualname`` of the wrapped callable of a :class:`~costroute.generators.CallableGenerator`.
    ``"cost"`` is ``None`` for a cost that is counted from the settings (a
    :class:`~costroute.generators.DiffusersGenerator` without ``cost=``): it follows from
    them, and leaving it out keeps the key when a later costroute counts FLOPs differently.
    """
    settings = {k: v for k, v in generator.settings.items() if k not in IGNORED_SETTINGS}
    counted = getattr(generator, "_explicit_cost", True) is False
    identity = {
        "class": type(generator).__qualname__,
        "name": generator.name,
        "cost": None if counted else float(generator.cost),
        "cost_unit": generator.cost_unit,
        "settings": _plain(settings, f"a setting of generator {generator.name!r}"),
    }
    fn = getattr(generator, "fn", None)
    if fn is not None:
        identity["fn"] = _callable_identity(fn)
    return identity


def generator_key(generator: Any) -> str:
    """The store key of a generator: 16 hex digits of the SHA-256 of :func:`generator_identity`.

    The name, the class, the cost per image (when given rather than counted) and its unit,
    and every setting (model, steps,
    guidance scale, resolution, scheduler, dtype, extra pipeline arguments ...) except the
    device go into it; so does the wrapped function's ``module.qualname`` for a
    :class:`~costroute.generators.CallableGenerator` (its code does not: rename the
    generator or change a setting when the function changes). A model folder counts by its
    path: weights replaced inside the same folder keep the key.

    Parameters
    ----------
    generator : GeneratorSpec
        Any generator spec (a :class:`~costroute.generators.DiffusersGenerator` counts its
        FLOPs here, without loading weights).

    Returns
    -------
    str

    Examples
    --------
    >>> from costroute import GeneratorSpec
    >>> from costroute.collect import generator_key
    >>> a = GeneratorSpec("sd", cost=1.0, steps=20)
    >>> generator_key(a) == generator_key(a.clone()) != generator_key(a.clone(steps=30))
    True
    """
    return digest(generator_identity(generator))


def scorer_identity(scorer: Any) -> dict[str, Any]:
    """What :func:`scorer_key` hashes: the class, the scorer's settings (``batch_size`` and ``device`` left
    out; an explicit ``cost`` among them, a counted one not), the cost unit and the wrapped callable of a
    :class:`~costroute.scoring.CallableScorer`."""
    params = {k: v for k, v in scorer._params().items() if k not in IGNORED_SETTINGS}
    return {
        "class": type(scorer).__qualname__,
        "params": _plain(params, f"a setting of scorer {scorer.name!r}"),
        "cost_unit": scorer.cost_unit,
    }


def scorer_cost(scorer: Any) -> float | None:
    """The scorer's cost per image, or ``None`` when it has none (an uncountable model without ``cost=``)."""
    try:
        return float(scorer.cost)
    except ValueError:
        return None


def scorer_key(scorer: Any) -> str:
    """The store key of a scorer: 16 hex digits of the SHA-256 of :func:`scorer_identity`.

    Examples
    --------
    >>> from costroute.collect import scorer_key
    >>> from costroute.scoring import CallableScorer
    >>> def length(prompts, images):
    ...     return [len(p) for p in prompts]
    >>> scorer_key(CallableScorer("len", length, cost=0.0)) == scorer_key(CallableScorer("len", length, cost=1.0))
    False
    """
    return digest(scorer_identity(scorer))


def prompt_number(prompt: str) -> int:
    """A prompt's number for seeding: the first 63 bits of the SHA-256 of its UTF-8 text.

    It depends on the text only, not on the prompt's position in a list, so a prompt keeps
    its images when prompts are added, removed or reordered between runs.
    """
    return int.from_bytes(hashlib.sha256(prompt.encode("utf-8")).digest()[:8], "big") >> 1


def image_seed_for(seed_index: int, prompt: str, generator: str) -> int:
    """The seed of the image of ``prompt`` by generator ``generator`` at seed index ``seed_index``.

    ``candidate_seed(seed_index, prompt_number(prompt), generator)`` (see
    :func:`costroute.execution.candidate_seed`): a function of (seed index, prompt text,
    generator name) alone, the same whatever batch, run, machine or backend makes the image.

    Examples
    --------
    >>> from costroute.collect import image_seed_for
    >>> image_seed_for(0, "a cat", "sd") == image_seed_for(0, "a cat", "sd") != image_seed_for(1, "a cat", "sd")
    True
    """
    return candidate_seed(seed_index, prompt_number(prompt), generator)
