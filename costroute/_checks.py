"""Argument checks shared across costroute."""

from __future__ import annotations

import math
import numbers
from typing import Any


def check_nonnegative(value: Any, what: str) -> float:
    """Return ``value`` as a float if it is a finite real >= 0; otherwise raise a clear error.

    A bool or a non-number is a ``TypeError``; NaN, inf or a negative number a ``ValueError``.
    Both messages start with ``what``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a real number >= 0, got {type(value).__name__}: {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be finite and >= 0, got {value!r}")
    return value
