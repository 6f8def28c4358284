"""Any ``fn(prompts, images) -> scores`` as a scorer: :class:`CallableScorer`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ._base import Scorer

__all__ = ["CallableScorer"]


class CallableScorer(Scorer):
    """Wrap any ``fn(prompts, images) -> scores``: a hosted judge, ImageReward, a human rating queue.

    ``fn`` is called with a list of prompts and the list of their images (as given: no
    conversion, so images may be PIL images, URLs, file names...) for each batch, and must
    return one finite number per image, in order. What comes back is checked: a wrong
    length, NaN or infinity is a ``ValueError`` and non-numbers a ``TypeError``, each naming
    the scorer.

    Parameters
    ----------
    name : str
        Name of the scorer.
    fn : callable
        ``fn(list_of_prompts, list_of_images) -> sequence of float``. It is deep-copied with
        the scorer, so keep heavy state (weights, clients) out of it or give it a
        ``__deepcopy__`` that shares that state. If it has a ``load()`` method,
        :meth:`load` calls it, before every :meth:`score` call (make it idempotent).
    cost : float
        Cost of scoring one image, in ``cost_unit`` (finite, >= 0).
    cost_unit : {"usd", "flops"}, default="usd"
        Unit of ``cost``. A cost in FLOPs can also be read in dollars (:meth:`cost_in`).
    batch_size : int or None, default=None
        Images per call of ``fn`` when :meth:`score` gets none; ``None``: all in one call.
    price_model : GPUPriceModel, optional
        FLOPs to dollars for :meth:`cost_in`; default :data:`costroute.costs.DEFAULT_PRICE_MODEL`.

    Examples
    --------
    >>> from costroute.scoring import CallableScorer
    >>> length = CallableScorer("caption-length", lambda prompts, images: [len(p) for p in prompts], cost=0.0)
    >>> length.score(["a cat", "a red dog"], ["img1", "img2"], progress=False)
    array([5., 9.])
    """

    def __init__(
        self,
        name: str,
        fn: Callable[[list, list], Sequence[float]],
        cost: float,
        cost_unit: str = "usd",
        *,
        batch_size: int | None = None,
        price_model: Any = None,
    ):
        if not callable(fn):
            raise TypeError(f"fn of scorer {name!r} must be callable as fn(prompts, images), got {type(fn).__name__}")
        if cost is None:
            raise TypeError(f"cost of scorer {name!r} must be a real number >= 0 (cost of scoring one image), got None")
        super().__init__(name, cost=cost, cost_unit=cost_unit, price_model=price_model, batch_size=batch_size)
        self.fn = fn

    def load(self) -> None:
        """Call ``fn.load()`` when the wrapped callable has one."""
        hook = getattr(self.fn, "load", None)
        if callable(hook):
            hook()

    def _score_batch(self, prompts: list[str], images: list) -> Any:
        return self.fn(list(prompts), list(images))

    def _params(self) -> dict[str, Any]:
        params = super()._params()
        params["fn"] = self.fn
        return params
