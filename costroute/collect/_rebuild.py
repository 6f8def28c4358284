"""Generators and scorers rebuilt from what a store recorded of them: :func:`rebuild_generator`, :func:`rebuild_scorer`.

A store keeps, for every generator and scorer, the identity its key was hashed from
(:func:`~costroute.collect.generator_identity`, :func:`~costroute.collect.scorer_identity`):
the class name and every setting. A :class:`~costroute.generators.DiffusersGenerator`, a
:class:`~costroute.generators.DeepFloydIFGenerator` (the presets are one of the two), a
:class:`~costroute.scoring.CLIPScorer` or a :class:`~costroute.scoring.VQAScorer` is made
again from those settings, so that a router or cascade fitted on a store generates and scores
with the very models the store was collected with. Only these classes are rebuilt: a class
name read from a file never chooses code to import, and the wrapped function of a
:class:`~costroute.generators.CallableGenerator` is not looked up. Anything else, or a
rebuild whose key differs from the stored one (a setting that did not survive JSON, a model
folder that no longer exists), gives ``None`` and the reason.
"""

from __future__ import annotations

import json
from typing import Any

from ..generators import DeepFloydIFGenerator, DiffusersGenerator, GeneratorSpec
from ..scoring import CLIPScorer, VQAScorer
from ._keys import generator_key, scorer_key

__all__ = ["REBUILT_GENERATORS", "REBUILT_SCORERS", "rebuild_generator", "rebuild_scorer"]

#: Generator classes made again from a store's settings, by the class name it records.
REBUILT_GENERATORS = {cls.__qualname__: cls for cls in (DiffusersGenerator, DeepFloydIFGenerator)}
#: Scorer classes made again from a store's settings, by the class name it records.
REBUILT_SCORERS = {cls.__qualname__: cls for cls in (CLIPScorer, VQAScorer)}


def _identity(settings: str, what: str) -> dict[str, Any]:
    try:
        identity = json.loads(settings)
    except (TypeError, ValueError):
        identity = None
    if not isinstance(identity, dict):
        raise ValueError(f"the store's record of {what} is not a JSON object; the store is damaged")
    return identity


def rebuild_generator(key: str, name: str, cost: float, cost_unit: str, settings: str) -> tuple[Any, str | None]:
    """The generator a store's ``generators`` row describes, with a backend where it can be.

    Parameters
    ----------
    key, name : str
        The row's key and name.
    cost : float
        The cost per image the store recorded (the counted FLOPs, for a counted cost).
    cost_unit : str
    settings : str
        The row's JSON identity (:func:`~costroute.collect.generator_identity`).

    Returns
    -------
    generator : GeneratorSpec
        A :class:`~costroute.generators.DiffusersGenerator` or
        :class:`~costroute.generators.DeepFloydIFGenerator` whose key is ``key`` and whose cost
        is the recorded one (nothing is counted or loaded); otherwise a plain
        :class:`~costroute.generators.GeneratorSpec` (name, cost, unit, settings) that routes
        but cannot make images.
    problem : str or None
        Why the generator could not be rebuilt with its backend; ``None`` when it was, or when
        the store recorded a plain spec.
    """
    identity = _identity(settings, f"generator {name!r}")
    stored = identity.get("settings", {})
    plain = GeneratorSpec(name, cost, cost_unit=cost_unit, **stored)
    cls_name = identity.get("class")
    if cls_name == "GeneratorSpec":
        return plain, None
    cls = REBUILT_GENERATORS.get(cls_name)
    if cls is None:
        kind = f"{cls_name} of {identity['fn']}" if "fn" in identity else str(cls_name)
        return plain, f"a {kind}; only DiffusersGenerator and DeepFloydIFGenerator (presets included) are rebuilt"
    explicit = identity.get("cost") is not None
    try:
        generator = cls(name, cost=cost if explicit else None, **stored)
    except (TypeError, ValueError, OSError) as exc:
        return plain, f"its settings no longer make a {cls_name}: {exc}"
    if not explicit:  # the FLOPs the store counted for these settings: nothing is counted again
        generator._cost = float(cost)
    if generator.cost_unit != cost_unit or generator_key(generator) != key:
        return plain, f"a {cls_name} rebuilt from the stored settings is not the one collected (its key differs)"
    return generator, None


def rebuild_scorer(key: str, name: str, cost: float | None, cost_unit: str, settings: str) -> tuple[Any, str | None]:
    """The scorer a store's ``scorers`` row describes, or ``None`` and the reason.

    Parameters
    ----------
    key, name : str
        The row's key and name.
    cost : float or None
        The cost per image the store recorded.
    cost_unit : str
    settings : str
        The row's JSON identity (:func:`~costroute.collect.scorer_identity`).

    Returns
    -------
    scorer : CLIPScorer, VQAScorer or None
        The scorer, whose key is ``key``; loading its weights waits for its first use.
    problem : str or None
        Why it could not be rebuilt.
    """
    identity = _identity(settings, f"scorer {name!r}")
    cls_name = identity.get("class")
    cls = REBUILT_SCORERS.get(cls_name)
    if cls is None:
        return None, f"a {cls_name}: only {sorted(REBUILT_SCORERS)} are rebuilt from a store"
    try:
        scorer = cls(**identity.get("params", {}))
    except (TypeError, ValueError, OSError) as exc:
        return None, f"its settings no longer make a {cls_name}: {exc}"
    if scorer_key(scorer) != key:
        return None, f"a {cls_name} rebuilt from the stored settings is not the one collected (its key differs)"
    return scorer, None
