"""Measured costs: wall-clock seconds per image of real generators, :func:`profile`.

FLOPs say what a generator computes; seconds say what it costs on *your* hardware, with
your batch size, dtype and attention kernels. :func:`profile` times each generator's
``generate_images`` after a warm-up and returns a :class:`CostProfile`, whose
:meth:`~CostProfile.registry` is a :class:`~costroute.generators.GeneratorRegistry` with
``cost_unit="seconds"``, ready to route over.

Importing this module does not import torch; generators are loaded when profiled.
"""

from __future__ import annotations

import numbers
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..generators import BackendGenerator, GeneratorRegistry
from ..generators._loading import _resolve_device

__all__ = ["DEFAULT_PROFILE_PROMPTS", "CostProfile", "profile"]

#: Prompts :func:`profile` cycles through when none are given: short and long, simple and busy.
DEFAULT_PROFILE_PROMPTS = (
    "a white wall",
    "a red kite in a blue sky",
    "three red kites left of two tall trees at dusk",
    "a photo of a cat sitting on a wooden table next to a cup of coffee",
    "an oil painting of a lighthouse on a cliff during a storm, dramatic lighting",
    "a sign that says 'open', on a glass door",
    "two dogs playing with a ball in a park, one black and one white",
    "a futuristic city at night with flying cars, neon lights, highly detailed, 4k",
)


def _check_int(value: Any, name: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    return int(value)


def _check_batch_sizes(batch_sizes: Any) -> tuple[int, ...]:
    if isinstance(batch_sizes, numbers.Integral) and not isinstance(batch_sizes, bool):
        batch_sizes = (batch_sizes,)
    if isinstance(batch_sizes, (str, bytes)) or not isinstance(batch_sizes, Sequence) or not batch_sizes:
        raise ValueError(f"batch_sizes must be a positive integer or a non-empty sequence of them, got {batch_sizes!r}")
    sizes = tuple(_check_int(b, "every batch size", 1) for b in batch_sizes)
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"batch_sizes must not repeat a size, got {list(sizes)}")
    return sizes


def _check_profile_prompts(prompts: Any) -> tuple[str, ...]:
    if prompts is None:
        return DEFAULT_PROFILE_PROMPTS
    if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence) or not prompts:
        raise ValueError(f"prompts must be None or a non-empty list of strings, got {prompts!r}")
    bad = [i for i, p in enumerate(prompts) if not isinstance(p, str)]
    if bad:
        raise TypeError(f"prompts must hold strings; prompt {bad[0]} is a {type(prompts[bad[0]]).__name__}")
    return tuple(prompts)


def _check_device(device: Any) -> str:
    if type(device).__module__ == "torch":  # a torch.device, without importing torch
        device = str(device)
    if not isinstance(device, str) or not device:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N', 'mps' or a torch.device, got {device!r}")
    return device


def _synchronize() -> None:
    """Wait for queued CUDA work, so that a timing covers it (no-op without torch or CUDA)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.synchronize()


def _device_of(spec: Any) -> str | None:
    device = spec.settings.get("device")
    if device is None:
        return None

    return str(_resolve_device(device))


class CostProfile:
    """Seconds per image of each generator at each batch size, from :func:`profile`.

    Attributes
    ----------
    generators : GeneratorRegistry
        The generators as profiled (with ``device`` set when :func:`profile` was given one),
        with their original costs.
    batch_sizes : tuple of int
        The batch sizes, in the order profiled.
    seconds : ndarray of shape (n_generators, n_batch_sizes, repeats)
        Seconds per image of every timed call: its wall time divided by the batch size.
    load_seconds : ndarray of shape (n_generators,)
        Time of each generator's ``load()`` (not part of :attr:`seconds`).
    devices : list of str or None
        The device each generator ran on (``None`` for backends without a device setting).
    repeats, warmup : int
        Timed and untimed calls per generator and batch size.
    """

    def __init__(
        self,
        generators: GeneratorRegistry,
        batch_sizes: tuple[int, ...],
        seconds: np.ndarray,
        load_seconds: np.ndarray,
        devices: list[str | None],
        repeats: int,
        warmup: int,
    ):
        self.generators = generators
        self.batch_sizes = batch_sizes
        self.seconds = seconds
        self.load_seconds = load_seconds
        self.devices = devices
        self.repeats = repeats
        self.warmup = warmup

    def _batch_index(self, batch_size: int | None) -> int:
        if batch_size is None:
            return int(np.argmax(self.batch_sizes))
        if batch_size not in self.batch_sizes:
            raise ValueError(
                f"batch_size {batch_size!r} was not profiled; profiled batch sizes are {list(self.batch_sizes)}"
            )
        return self.batch_sizes.index(batch_size)

    def seconds_per_image(self, batch_size: int | None = None) -> np.ndarray:
        """Median seconds per image of each generator (registry order) at ``batch_size``.

        ``None`` takes the largest batch size profiled.
        """
        return np.median(self.seconds[:, self._batch_index(batch_size), :], axis=1)

    def to_frame(self) -> pd.DataFrame:
        """One row per (generator, batch size): median, min and max seconds per image, images per second,
        device, load seconds and the number of timed calls."""
        rows = []
        for k, spec in enumerate(self.generators):
            for j, batch in enumerate(self.batch_sizes):
                times = self.seconds[k, j]
                median = float(np.median(times))
                rows.append(
                    {
                        "generator": spec.name,
                        "batch_size": batch,
                        "seconds_per_image": median,
                        "min_seconds": float(times.min()),
                        "max_seconds": float(times.max()),
                        "images_per_second": 1.0 / median if median > 0 else np.inf,
                        "device": self.devices[k],
                        "load_seconds": float(self.load_seconds[k]),
                        "repeats": self.repeats,
                    }
                )
        return pd.DataFrame(rows).set_index(["generator", "batch_size"])

    def registry(self, batch_size: int | None = None) -> GeneratorRegistry:
        """The profiled generators with their median seconds per image at ``batch_size`` as their cost.

        Parameters
        ----------
        batch_size : int or None, default=None
            One of :attr:`batch_sizes`; ``None`` takes the largest (the batch size images are
            usually made at: match it to ``RoutingPlan.generate(batch_size=...)``).

        Returns
        -------
        GeneratorRegistry
            Copies of the profiled generators, same settings and backends, with
            ``cost_unit="seconds"``.
        """

        costs = self.seconds_per_image(batch_size)
        return GeneratorRegistry(
            spec.clone(cost=float(cost), cost_unit="seconds") for spec, cost in zip(self.generators, costs)
        )

    def __repr__(self) -> str:
        medians = ", ".join(f"{name}={s:.3g}" for name, s in zip(self.generators.names, self.seconds_per_image()))
        return (
            f"CostProfile(seconds per image at batch size {max(self.batch_sizes)}: {medians}; "
            f"batch_sizes={list(self.batch_sizes)}, repeats={self.repeats})"
        )


def profile(
    generators: Any,
    batch_sizes: int | Sequence[int] = (1, 4),
    device: Any = "auto",
    repeats: int = 3,
    warmup: int = 1,
    prompts: Sequence[str] | None = None,
    progress: bool = True,
) -> CostProfile:
    """Measure the seconds per image of each generator, at each batch size.

    For each generator: ``load()`` once (timed apart), then at each batch size ``warmup``
    untimed calls of ``generate_images`` and ``repeats`` timed ones on the same batch of
    prompts (cycled from ``prompts``) and seeds ``0..b-1``. A call's seconds per image is
    its wall time divided by the batch size (CUDA work is waited for); the profile keeps
    every call, and its summaries take the median.

    Parameters
    ----------
    generators : GeneratorRegistry or list of BackendGenerator
        Generators that make images (presets, :class:`~costroute.generators.DiffusersGenerator`,
        :class:`~costroute.generators.CallableGenerator`, ...).
    batch_sizes : int or sequence of int, default=(1, 4)
        Batch sizes to time, each >= 1.
    device : str or torch.device, default="auto"
        ``"auto"`` runs every generator where its own ``device`` setting says; anything
        else (``"cuda"``, ``"cuda:1"``, ``"cpu"``) profiles copies of the generators that
        have a ``device`` setting moved there (backends without one run as they are).
    repeats : int, default=3
        Timed calls per generator and batch size (>= 1).
    warmup : int, default=1
        Untimed calls before them (>= 0): the first call pays for kernel selection,
        caches and lazy initialisation.
    prompts : list of str or None, default=None
        Prompts of the batches; ``None`` uses :data:`DEFAULT_PROFILE_PROMPTS`.
    progress : bool, default=True
        Show a tqdm progress bar on stderr.

    Returns
    -------
    CostProfile
        ``to_frame()`` for the table, ``registry(batch_size=...)`` for a registry whose
        costs are the measured seconds per image.

    Raises
    ------
    TypeError
        If a generator cannot make images (a plain :class:`~costroute.generators.GeneratorSpec`).
    ValueError
        On a bad batch size, repeats, warm-up, device or prompts, or when a generator returns
        a different number of images than prompts.
    RuntimeError
        When a generator fails while profiled; the message names it and the batch size, and the
        original exception is chained.

    Examples
    --------
    >>> from costroute import CostAwareRouter
    >>> from costroute.execution import profile
    >>> from costroute.generators import presets
    >>> measured = profile(presets.paper_pool(["sdxl-turbo-1", "sdxl-base-20"]), batch_sizes=(1, 4))  # doctest: +SKIP
    >>> measured.to_frame()                                                     # doctest: +SKIP
    >>> router = CostAwareRouter(measured.registry(batch_size=4))               # doctest: +SKIP
    """

    registry = GeneratorRegistry.coerce(generators)
    plain = [spec.name for spec in registry if not isinstance(spec, BackendGenerator)]
    if plain:
        raise TypeError(
            f"generator(s) {plain} cannot make images (plain GeneratorSpecs: a name and a cost), so they cannot be "
            "profiled; pass generators with a backend: presets, DiffusersGenerator, CallableGenerator"
        )
    sizes = _check_batch_sizes(batch_sizes)
    repeats = _check_int(repeats, "repeats", 1)
    warmup = _check_int(warmup, "warmup", 0)
    texts = _check_profile_prompts(prompts)
    device = _check_device(device)
    if not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress must be True or False, got {type(progress).__name__}: {progress!r}")
    specs = [spec.clone(device=device) if device != "auto" and "device" in spec.settings else spec for spec in registry]

    seconds = np.full((len(specs), len(sizes), repeats), np.nan)
    load_seconds = np.zeros(len(specs))
    from tqdm.auto import tqdm

    with tqdm(
        total=len(specs) * len(sizes) * (warmup + repeats),
        desc="profiling",
        unit="call",
        file=sys.stderr,
        disable=not progress,
    ) as bar:
        for k, spec in enumerate(specs):
            bar.set_postfix_str(spec.name)
            start = time.perf_counter()
            try:
                spec.load()
            except Exception as exc:
                raise RuntimeError(
                    f"loading generator {spec.name!r} for profiling failed: {type(exc).__name__}: {exc}"
                ) from exc
            load_seconds[k] = time.perf_counter() - start
            for j, size in enumerate(sizes):
                batch = [texts[i % len(texts)] for i in range(size)]
                seeds = list(range(size))
                for call in range(warmup + repeats):
                    start = time.perf_counter()
                    try:
                        images = spec.generate_images(batch, seeds)
                        _synchronize()
                    except Exception as exc:
                        raise RuntimeError(
                            f"generator {spec.name!r} failed at batch size {size} while profiled: "
                            f"{type(exc).__name__}: {exc}"
                        ) from exc
                    elapsed = time.perf_counter() - start
                    if len(images) != size:
                        raise ValueError(f"generator {spec.name!r} returned {len(images)} images for {size} prompts")
                    if call >= warmup:
                        seconds[k, j, call - warmup] = elapsed / size
                    bar.update(1)
    return CostProfile(
        GeneratorRegistry(specs), sizes, seconds, load_seconds, [_device_of(s) for s in specs], repeats, warmup
    )
