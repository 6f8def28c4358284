"""Validation of prompt lists shared by the feature transformers and the router."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Set

import numpy as np


def check_prompts(X, *, name: str = "X") -> list[str]:
    """Return ``X`` as a list of strings, or raise a clear error.

    Accepts a list, tuple, 1-d ndarray (or an (n, 1) one), pandas Series or one-column
    DataFrame of ``str``. An empty collection, a bare string, ``None``, a set, a dict, an
    iterator or a non-string element is not; nor is an empty or whitespace-only prompt (there
    is nothing to draw, and paying a generator for it is a mistake): a ``ValueError`` names
    its position.

    A prompt holding a lone surrogate code point (``"\\ud800"``, the debris of text decoded
    with ``errors="surrogateescape"`` or of a split UTF-16 pair) is not valid Unicode text: it
    cannot be tokenised, encoded as UTF-8 or written to a file, so it raises a ``ValueError``
    naming the prompt's position rather than being altered silently.
    """
    if isinstance(X, (str, bytes)):
        raise TypeError(
            f"{name} must be a list of prompt strings, got a single {type(X).__name__}; wrap it in a list: [{X!r}]"
        )
    if hasattr(X, "to_numpy") and getattr(X, "ndim", 1) == 2:
        if X.shape[1] != 1:
            raise ValueError(f"{name} must be a 1-d collection of prompts, got a frame with {X.shape[1]} columns")
        X = X.iloc[:, 0]
    if isinstance(X, np.ndarray):
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 1:
            raise ValueError(f"{name} must be a 1-d collection of prompts, got an array of shape {X.shape}")
    if X is None or isinstance(X, (Set, Mapping, Iterator)) or not isinstance(X, Iterable) or not hasattr(X, "__len__"):
        raise TypeError(
            f"{name} must be an ordered collection of prompt strings (list, tuple, 1-d array or "
            f"Series), got {type(X).__name__}; sets, dicts and iterators have no fixed order or length"
        )
    prompts = list(X)
    if not prompts:
        raise ValueError(f"{name} is empty: pass at least one prompt")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(p).__name__}: {p!r}; every prompt must be text")
    check_prompt_text(prompts, name=name)
    return prompts


def check_prompt_text(prompts: list[str], *, name: str = "X") -> None:
    """Raise a ``ValueError`` naming the first empty, whitespace-only or not UTF-8-encodable prompt.

    ``prompts`` is a list of ``str`` (the types are checked by the caller). Every place where
    prompts enter costroute (the estimators through :func:`check_prompts`,
    :func:`costroute.collect.collect`) applies this check, so a prompt is refused the same way
    everywhere.
    """
    for i, p in enumerate(prompts):
        if not p.strip():
            raise ValueError(
                f"{name}[{i}] is {'empty' if not p else f'whitespace only ({p!r})'}; every prompt must hold "
                "some text. Remove it (a prompts file skips blank and whitespace-only lines)"
            )
    _check_encodable(prompts, name)


def _check_encodable(prompts: list[str], name: str) -> None:
    """Raise a ValueError naming the first prompt that holds a lone surrogate."""
    try:
        "".join(prompts).encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        return
    for i, p in enumerate(prompts):
        try:
            p.encode("utf-8")
        except UnicodeEncodeError as exc:
            context = p[max(0, exc.start - 20) : exc.start + 20]
            raise ValueError(
                f"{name}[{i}] holds the lone surrogate {p[exc.start]!r} at character {exc.start} "
                f"({context!r}), which is not valid Unicode text; it usually comes from bytes decoded "
                "with errors='surrogateescape' or a split UTF-16 pair. Decode the source as UTF-8, or "
                "replace it: prompt.encode('utf-8', 'replace').decode('utf-8')"
            ) from None
