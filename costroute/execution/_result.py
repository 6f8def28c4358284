"""What a run returns: :class:`GenerationResult`, its :class:`Fallback` records and :class:`GenerationError`."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._images import is_image
from ._seeds import image_seed

__all__ = ["Fallback", "GenerationError", "GenerationResult"]

# characters kept in a generator name when it becomes part of a file name; others become "_"
_UNSAFE_IN_FILE_NAME = re.compile(r"[^A-Za-z0-9._+-]")

_MISSING = ("raise", "skip")


def _file_name_part(name: str) -> str:
    """``name`` with every character but letters, digits, ``.``, ``_``, ``+`` and ``-`` replaced by ``_``.

    No separator survives (``/`` and ``\\`` become ``_``), and a run of dots is cut to one,
    so the part can never leave the folder or name a parent.
    """
    return re.sub(r"\.{2,}", ".", _UNSAFE_IN_FILE_NAME.sub("_", name))


def _ranges(indices: Sequence[int], most: int = 8) -> str:
    """``[0, 3, 4, 5, 9]`` as ``"0, 3-5, 9"`` (at most ``most`` parts, then an ellipsis)."""
    parts: list[str] = []
    start = prev = None
    for i in list(indices) + [None]:
        if start is not None and (i is None or i != prev + 1):
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if i is not None and start is None:
            start = i
        prev = i
    return ", ".join(parts[:most]) + (", ..." if len(parts) > most else "")


@dataclasses.dataclass(frozen=True)
class Fallback:
    """One prompt moved from a failing generator to the next one by utility.

    Attributes
    ----------
    index : int
        Position of the prompt in the plan.
    prompt : object
        The prompt.
    from_generator : str
        The generator that failed on it (at batch size 1, at load, or by returning
        something that is not an image).
    to_generator : str or None
        The generator it moved to; ``None`` when none was left.
    error : str
        The failure, as ``"ExceptionType: message"``.
    """

    index: int
    prompt: Any
    from_generator: str
    to_generator: str | None
    error: str


class GenerationResult(Sequence):
    """Images of a routed batch, in prompt order, with who made each one and at what cost.

    Behaves as a sequence of images (``result[i]`` is prompt ``i``'s image). Every image is
    an image in the sense of :func:`~costroute.execution.is_image` (an object with a
    ``save`` method, such as a PIL image): a backend's ``None`` or other non-image fails
    its prompt instead of being stored. A result carried by a :class:`GenerationError` (or
    by the ``KeyboardInterrupt`` that stopped a run) is partial: :attr:`missing` lists the
    prompts without an image (their ``images`` entries are ``None``), split into
    :attr:`failed` and :attr:`not_attempted`.

    Attributes
    ----------
    prompts : list
        The plan's prompts.
    images : list
        One image per prompt (PIL images for diffusers generators), ``None`` where missing.
    planned : list of str
        The generator the plan chose for each prompt.
    generators : list of str or None
        The generator that actually made each image.
    seeds : list of int
        Per-image seed (:func:`~costroute.execution.image_seed` of the run seed and the
        prompt index).
    costs : ndarray of float
        Cost of each image (the maker's cost), NaN where missing: a failed attempt or a
        non-image is not charged.
    seconds : ndarray of float
        Wall time of each image: its batch's wall time divided by the batch size.
    batch_sizes : list of int
        Size of the batch that made each image (0 where missing).
    fallbacks : list of Fallback
        Every move from a failed generator to another, in the order they happened.
    errors : dict of int to str
        For each prompt that ended without an image because it failed (see :attr:`failed`),
        its last error as ``"ExceptionType: message"``.
    load_seconds : dict of str to float
        Time spent in each generator's ``load()`` (near 0 when the pipeline was cached).
    failed_loads : dict of str to str
        Generators whose ``load()`` raised in this run, with the error as
        ``"ExceptionType: message"``. Each is loaded at most once per run: after its
        failure it counts as already tried for every prompt, so no fallback goes to it.
    cost_unit : str
        Unit of :attr:`costs`.
    seed : int
        The run seed.
    """

    def __init__(self, prompts: Sequence, planned: Sequence[str], seed: int, cost_unit: str):
        n = len(prompts)
        self.prompts = list(prompts)
        self.planned = list(planned)
        self.seed = seed
        self.cost_unit = cost_unit
        self.images: list = [None] * n
        self.generators: list[str | None] = [None] * n
        self.seeds = [image_seed(seed, i) for i in range(n)]
        self.costs = np.full(n, np.nan)
        self.seconds = np.full(n, np.nan)
        self.batch_sizes = [0] * n
        self.fallbacks: list[Fallback] = []
        self.errors: dict[int, str] = {}
        self.load_seconds: dict[str, float] = {}
        self.failed_loads: dict[str, str] = {}

    def _record(self, index: int, image: Any, generator: str, cost: float, seconds: float, batch_size: int) -> None:
        """Store prompt ``index``'s image, made by ``generator``."""
        self.images[index] = image
        self.generators[index] = generator
        self.costs[index] = cost
        self.seconds[index] = seconds
        self.batch_sizes[index] = batch_size
        self.errors.pop(index, None)

    @property
    def missing(self) -> list[int]:
        """Positions of prompts without an image (empty for a complete result)."""
        return [i for i, g in enumerate(self.generators) if g is None]

    @property
    def failed(self) -> list[int]:
        """Prompts without an image because every generator tried on them failed
        (or, with ``on_error="raise"``, the one that stopped the run); see :attr:`errors`."""
        return sorted(i for i in self.errors if self.generators[i] is None)

    @property
    def not_attempted(self) -> list[int]:
        """Prompts without an image and without a failure: never sent to a generator (the run
        stopped first), or in the batch that was running when the run was interrupted."""
        failed = set(self.errors)
        return [i for i in self.missing if i not in failed]

    @property
    def complete(self) -> bool:
        """Whether every prompt has its image."""
        return not self.missing

    @property
    def total_cost(self) -> float:
        """Sum of the costs of the images made, in :attr:`cost_unit`."""
        return float(np.nansum(self.costs))

    @property
    def total_seconds(self) -> float:
        """Wall time spent making the images (loading and failed attempts excluded)."""
        return float(np.nansum(self.seconds))

    def status(self) -> list[str]:
        """Per prompt: ``"made"``, ``"failed"`` or ``"not attempted"``."""
        failed = set(self.failed)
        return [
            "made" if g is not None else "failed" if i in failed else "not attempted"
            for i, g in enumerate(self.generators)
        ]

    def to_frame(self) -> pd.DataFrame:
        """One row per prompt, in prompt order.

        Columns: prompt, planned_generator, generator, fell_back, status (see
        :meth:`status`), seed, cost, seconds, batch_size.
        """
        return pd.DataFrame(
            {
                "prompt": self.prompts,
                "planned_generator": self.planned,
                "generator": self.generators,
                "fell_back": [g is not None and g != p for g, p in zip(self.generators, self.planned)],
                "status": self.status(),
                "seed": self.seeds,
                "cost": self.costs,
                "seconds": self.seconds,
                "batch_size": self.batch_sizes,
            }
        )

    def file_name(self, index: int, prefix: str = "image", fmt: str = "png") -> str | None:
        """The file :meth:`save` writes for prompt ``index`` (``None`` when it has no image)."""
        gen = self.generators[index]
        return None if gen is None else f"{prefix}_{index:04d}_{_file_name_part(gen)}.{fmt}"

    def save(
        self, folder: str | os.PathLike, prefix: str = "image", fmt: str = "png", missing: str = "raise"
    ) -> list[str]:
        """Save every image as ``{prefix}_{index:04d}_{generator}.{fmt}``; returns the paths.

        In the file name, every character of the generator name other than letters, digits,
        ``.``, ``_``, ``+`` and ``-`` becomes ``_`` and runs of dots become one dot, so names
        such as ``"org/model"`` or ``"../x"`` stay inside ``folder`` (``image_0003_org_model.png``).

        Parameters
        ----------
        folder : str or path-like
            Created if needed.
        prefix : str, default="image"
        fmt : str, default="png"
            File extension; the image's ``save`` picks the format from it.
        missing : {"raise", "skip"}, default="raise"
            What to do when some prompts have no image (a partial result): ``"raise"``
            raises before anything is written; ``"skip"`` saves the images there are (the
            returned paths then leave the missing indices out).

        Returns
        -------
        list of str
            One path per saved image, in prompt order.

        Raises
        ------
        ValueError
            If ``missing="raise"`` and the result is partial, or ``missing`` is not a valid choice.
        TypeError
            If an entry of :attr:`images` is not an image (replaced after generation).
        """
        if missing not in _MISSING:
            raise ValueError(f"missing must be one of {list(_MISSING)}, got {missing!r}")
        if missing == "raise" and self.missing:
            raise ValueError(
                f"{len(self.missing)} of {len(self)} prompts have no image (prompts {_ranges(self.missing)}; "
                f"failed: {len(self.failed)}, not attempted: {len(self.not_attempted)}); nothing was saved. "
                "Pass missing='skip' to save the images there are"
            )
        bad = [
            i
            for i, (image, gen) in enumerate(zip(self.images, self.generators))
            if gen is not None and not is_image(image)
        ]
        if bad:
            raise TypeError(
                f"images {_ranges(bad)} are not images (an image has a save(path) method, such as a "
                f"PIL.Image.Image); got {type(self.images[bad[0]]).__name__} at {bad[0]}; nothing was saved"
            )
        os.makedirs(folder, exist_ok=True)
        paths = []
        for i, (image, gen) in enumerate(zip(self.images, self.generators)):
            if gen is None:
                continue
            path = os.path.join(os.fspath(folder), self.file_name(i, prefix, fmt))
            image.save(path)
            paths.append(path)
        return paths

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index):  # type: ignore[override]
        return self.images[index]

    def __iter__(self) -> Iterator:
        return iter(self.images)

    def __repr__(self) -> str:
        made: dict[str, int] = {}
        for g in self.generators:
            if g is not None:
                made[g] = made.get(g, 0) + 1
        if self.complete:
            state = "complete"
        else:
            state = f"missing={len(self.missing)} (failed={len(self.failed)}, not_attempted={len(self.not_attempted)})"
        return (
            f"GenerationResult(n_images={len(self)}, {state}, fallbacks={len(self.fallbacks)}, "
            f"total_cost={self.total_cost:.4g} {self.cost_unit}, made_by={made})"
        )


class GenerationError(RuntimeError):
    """Generation could not make every image; :attr:`result` holds what was made.

    The message counts the prompts that failed and those not attempted (with
    ``on_error="raise"`` the run stops at the first failure, so the rest are never tried).

    Attributes
    ----------
    result : GenerationResult
        The partial result: ``result.failed`` and ``result.not_attempted`` list the
        prompts without an image.
    failures : dict of int to BaseException
        For each failed prompt, the last exception raised for it.
    """

    def __init__(self, message: str, result: GenerationResult, failures: dict[int, BaseException]):
        super().__init__(message)
        self.result = result
        self.failures = failures
