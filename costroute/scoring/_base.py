"""The scorer interface: :class:`Scorer` turns (prompts, images) into one float per image.

A scorer is a cheap description (a name, a cost per image and settings), like a generator
spec: it holds no weights, so copying it is cheap and it can sit in an estimator parameter
that :func:`sklearn.base.clone` deep-copies. Model-backed scorers load their weights on
first use into the shared :data:`costroute.generators.pipeline_cache`.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._checks import check_nonnegative

if TYPE_CHECKING:  # pragma: no cover
    from ..costs import GPUPriceModel

__all__ = ["COST_UNITS", "Scorer"]

#: Units a scorer's cost can be expressed in (the same as the generators').
COST_UNITS = ("flops", "usd", "seconds")


def _check_name(name: Any) -> str:
    if not isinstance(name, str):
        raise TypeError(f"scorer name must be a str, got {type(name).__name__}: {name!r}")
    if not name.strip():
        raise ValueError(f"scorer name must be a non-empty string, got {name!r}")
    return name


def _check_unit(unit: Any, what: str = "cost_unit") -> str:
    if unit not in COST_UNITS:
        raise ValueError(f"{what} must be one of {list(COST_UNITS)}, got {unit!r}")
    return unit


def _check_price_model(price_model: Any) -> Any:
    if price_model is None:
        return None
    from ..costs import GPUPriceModel

    if not isinstance(price_model, GPUPriceModel):
        raise TypeError(
            f"price_model must be a costroute.costs.GPUPriceModel or None (the default price model), "
            f"got {type(price_model).__name__}: {price_model!r}"
        )
    return price_model


def _check_batch_size(batch_size: Any, what: str = "batch_size") -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"{what} must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def _check_prompts(prompts: Any) -> list[str]:
    if isinstance(prompts, (str, bytes)):
        raise TypeError(
            f"prompts must be a sequence of str, got a single {type(prompts).__name__} {prompts!r}; wrap it in a list"
        )
    try:
        prompts = list(prompts)
    except TypeError:
        raise TypeError(f"prompts must be a sequence of str, got {type(prompts).__name__}: {prompts!r}") from None
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise TypeError(f"prompts[{i}] must be a str, got {type(prompt).__name__}: {prompt!r}")
    return prompts


def _check_images(images: Any, n: int) -> list:
    if isinstance(images, (str, bytes)):
        raise TypeError(f"images must be a sequence of images (one per prompt), got a {type(images).__name__}")
    try:
        images = list(images)
    except TypeError:
        raise TypeError(f"images must be a sequence of images (one per prompt), got {type(images).__name__}") from None
    if len(images) != n:
        raise ValueError(f"got {n} prompts but {len(images)} images; pass one image per prompt, in the same order")
    return images


class Scorer:
    """Base class of image scorers: (prompts, images) -> one float per image, higher is better.

    Subclasses implement :meth:`_score_batch` (and, when they count their cost,
    :meth:`_counted_flops`). The base class validates the inputs, batches them, shows a
    progress bar and checks that every batch returns one finite float per image.

    Parameters
    ----------
    name : str
        Name of the scorer (identifies it in results and reprs).
    cost : float or None, default=None
        Cost of scoring one image in ``cost_unit``. ``None``: counted (model scorers).
    cost_unit : {"flops", "usd", "seconds"}, default="flops"
        Unit of :attr:`cost`. Counted FLOPs become dollars through ``price_model``; seconds
        (measured on your hardware) must be given as an explicit ``cost``.
    price_model : GPUPriceModel or None, default=None
        Turns FLOPs into dollars; ``None`` is :data:`costroute.costs.DEFAULT_PRICE_MODEL`,
        the one the datasets' cost tables use, so scorer and generator costs add up.
    batch_size : int or None, default=None
        Images per model call when :meth:`score` is not given one; ``None``: all at once.

    Attributes
    ----------
    name : str
    cost_unit : str
    """

    def __init__(
        self,
        name: str,
        *,
        cost: float | None = None,
        cost_unit: str = "flops",
        price_model: GPUPriceModel | None = None,
        batch_size: int | None = None,
    ):
        self.name = _check_name(name)
        self.cost_unit = _check_unit(cost_unit)
        self.price_model = _check_price_model(price_model)
        self.batch_size = None if batch_size is None else _check_batch_size(batch_size)
        self._explicit_cost = None if cost is None else check_nonnegative(cost, f"cost of scorer {name!r}")

    # ------------------------------------------------------------------ cost
    def _price(self, price_model: Any = None) -> GPUPriceModel:
        price_model = _check_price_model(price_model)
        if price_model is None:
            price_model = self.price_model
        if price_model is None:
            from ..costs import DEFAULT_PRICE_MODEL

            price_model = DEFAULT_PRICE_MODEL
        return price_model

    def _counted_flops(self) -> float:
        """FLOPs of scoring one image (subclasses that count their cost override this)."""
        raise ValueError(f"scorer {self.name!r} has no counted cost; give it an explicit cost=")

    @property
    def cost(self) -> float:
        """Cost of scoring one image, in :attr:`cost_unit` (explicit, or counted on first access)."""
        return self.cost_in(self.cost_unit)

    def cost_in(self, unit: str, price_model: GPUPriceModel | None = None) -> float:
        """Cost of scoring one image in ``unit``, so that a cascade can add it to generator costs.

        Parameters
        ----------
        unit : {"flops", "usd", "seconds"}
            The unit wanted.
        price_model : GPUPriceModel, optional
            Converts FLOPs to dollars; default the scorer's ``price_model``, else
            :data:`costroute.costs.DEFAULT_PRICE_MODEL`.

        Returns
        -------
        float

        Raises
        ------
        ValueError
            ``unit`` is not a valid unit, or the cost has no equivalent in it: FLOPs of an
            explicit price in dollars, seconds of anything but an explicit cost in seconds.
        """
        unit = _check_unit(unit, "unit")
        if self._explicit_cost is not None:
            if unit == self.cost_unit:
                return self._explicit_cost
            if unit == "usd" and self.cost_unit == "flops":
                return self._price(price_model).usd_per_image(self._explicit_cost)
            if self.cost_unit == "usd" and unit == "flops":
                raise ValueError(
                    f"scorer {self.name!r} has an explicit cost of USD {self._explicit_cost:g} per image, which has no "
                    "FLOPs equivalent; give the cost in FLOPs (cost_unit='flops') to add it to FLOP costs"
                )
            raise ValueError(
                f"scorer {self.name!r} has an explicit cost of {self._explicit_cost:g} {self.cost_unit} per image, which "
                f"has no {unit} equivalent; give the cost in {unit} (cost_unit={unit!r})"
            )
        if unit == "seconds":
            raise ValueError(
                f"scorer {self.name!r} has a counted cost in FLOPs, which has no seconds equivalent; give it "
                "cost=<seconds per image, measured> with cost_unit='seconds', or pass scoring_cost= in seconds to "
                "the CascadeRouter"
            )
        flops = float(self._counted_flops())
        return flops if unit == "flops" else self._price(price_model).usd_per_image(flops)

    # ------------------------------------------------------------------ life cycle
    def load(self) -> Any:
        """Make the scorer ready (load weights); :meth:`score` calls it before scoring. No-op by default."""
        return None

    def unload(self) -> None:
        """Release what :meth:`load` acquired (no-op by default)."""

    # ------------------------------------------------------------------ scoring
    def _prepare_images(self, images: list) -> list:
        """Check and convert the images before anything is loaded (hook; identity by default)."""
        return images

    def _score_batch(self, prompts: list[str], images: list) -> Any:
        """Scores of one batch, one per image (subclasses implement it)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _score_batch")

    def _check_output(self, values: Any, n: int) -> np.ndarray:
        try:
            scores = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(
                f"scorer {self.name!r} must return numbers, one per image; got {type(values).__name__}: {values!r}"
            ) from None
        if scores.ndim != 1 or scores.shape[0] != n:
            raise ValueError(
                f"scorer {self.name!r} returned scores of shape {scores.shape} for {n} images; "
                f"it must return {n} numbers, one per image in order"
            )
        bad = np.flatnonzero(~np.isfinite(scores))
        if bad.size:
            raise ValueError(
                f"scorer {self.name!r} returned non-finite scores {scores[bad[:5]].tolist()} at batch "
                f"positions {bad[:5].tolist()}; every score must be a finite number"
            )
        return scores

    def score(
        self,
        prompts: Sequence[str],
        images: Sequence[Any],
        batch_size: int | None = None,
        progress: bool = True,
    ) -> np.ndarray:
        """Score each image against its prompt.

        Parameters
        ----------
        prompts : sequence of str
            One prompt per image.
        images : sequence
            The images, in the order of ``prompts`` (PIL images or ``(H, W, 3)`` arrays for
            the model scorers).
        batch_size : int, optional
            Images per model call; default the scorer's ``batch_size``. Scores do not
            depend on it (up to floating-point rounding).
        progress : bool, default=True
            Show a tqdm progress bar (on stderr).

        Returns
        -------
        ndarray of shape (n,)
            One finite float per image, in order; higher is better.

        Raises
        ------
        TypeError
            A prompt that is not a str, an image of an unsupported type, a bad ``progress``.
        ValueError
            Different numbers of prompts and images, a bad ``batch_size``, or a batch whose
            scores are not one finite float per image.
        """
        prompts = _check_prompts(prompts)
        images = _check_images(images, len(prompts))
        if batch_size is not None:
            size = _check_batch_size(batch_size)
        else:
            size = self.batch_size or max(len(prompts), 1)
        if not isinstance(progress, (bool, np.bool_)):
            raise TypeError(f"progress must be True or False, got {progress!r}")
        images = self._prepare_images(images)
        n = len(prompts)
        scores = np.empty(n, dtype=float)
        if n == 0:
            return scores
        self.load()
        from tqdm.auto import tqdm

        with tqdm(total=n, disable=not progress, unit="img", desc=f"scoring ({self.name})") as bar:
            for start in range(0, n, size):
                stop = min(start + size, n)
                values = self._score_batch(prompts[start:stop], images[start:stop])
                scores[start:stop] = self._check_output(values, stop - start)
                bar.update(stop - start)
        return scores

    # ------------------------------------------------------------------ identity
    def _params(self) -> dict[str, Any]:
        """Settings shown by ``repr`` and compared by ``==`` (subclasses extend it)."""
        params: dict[str, Any] = {"name": self.name}
        if self._explicit_cost is not None:
            params["cost"] = self._explicit_cost
        params["cost_unit"] = self.cost_unit
        if self.price_model is not None:
            params["price_model"] = self.price_model
        if self.batch_size is not None:
            params["batch_size"] = self.batch_size
        return params

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._params() == other._params()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), repr(self)))
