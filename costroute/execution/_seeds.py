"""Per-image seeds: :func:`image_seed` (run seed, prompt position) for plans, :func:`candidate_seed`
(run seed, prompt position, generator) for cascades."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = ["candidate_seed", "image_seed"]


def check_non_negative_int(value: Any, what: str) -> int:
    """``value`` as an int if it is an integer >= 0 (not a bool); else a ``ValueError`` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)


def image_seed(seed: int, index: int) -> int:
    """The seed of the image of prompt number ``index`` in a run seeded with ``seed``.

    Derived with :class:`numpy.random.SeedSequence` from ``(seed, index)``, so it does not
    depend on the batch, the generator or the other prompts, and nearby ``(seed, index)``
    pairs give unrelated streams (``image_seed(1, 2)`` is not ``image_seed(0, 3)``). The
    value fits ``torch.Generator.manual_seed`` (< 2**63).

    Parameters
    ----------
    seed : int
        The run's seed (>= 0).
    index : int
        Position of the prompt in the plan (>= 0).

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``seed`` or ``index`` is not a non-negative integer.

    Examples
    --------
    >>> from costroute.execution import image_seed
    >>> image_seed(0, 3) == image_seed(0, 3) != image_seed(1, 3)
    True
    """
    seed, index = check_non_negative_int(seed, "seed"), check_non_negative_int(index, "index")
    state = np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))


def candidate_seed(seed: int, index: int, generator: str) -> int:
    """The seed of generator ``generator``'s image of prompt ``index`` in a cascade seeded with ``seed``.

    Like :func:`image_seed`, derived with :class:`numpy.random.SeedSequence`, here from
    ``(seed, index, crc32(generator))``: a cascade that tries several generators on one prompt
    gives each its own stream, and the same (seed, prompt, generator) always gives the same
    image whatever else the cascade did. It differs from :func:`image_seed`, so a cascade's
    first image is not the image :meth:`RoutingPlan.generate <costroute.RoutingPlan.generate>`
    makes with the same run seed.

    Examples
    --------
    >>> from costroute.execution import candidate_seed
    >>> candidate_seed(0, 3, "sdxl") == candidate_seed(0, 3, "sdxl") != candidate_seed(0, 3, "turbo")
    True
    """
    import zlib

    seed, index = check_non_negative_int(seed, "seed"), check_non_negative_int(index, "index")
    if not isinstance(generator, str):
        raise TypeError(f"generator must be a generator name (str), got {type(generator).__name__}")
    tag = zlib.crc32(generator.encode("utf-8"))
    state = np.random.SeedSequence([seed, index, tag]).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))
