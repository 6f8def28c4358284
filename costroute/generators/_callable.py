"""Generators that can make images: the backend interface and :class:`CallableGenerator`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ._spec import GeneratorSpec

__all__ = ["BackendGenerator", "CallableGenerator"]


class BackendGenerator(GeneratorSpec):
    """A :class:`GeneratorSpec` that can also make images (abstract).

    Subclasses implement :meth:`generate_images`; :meth:`load` and :meth:`unload` are
    optional hooks. :meth:`RoutingPlan.generate <costroute.RoutingPlan.generate>` accepts
    only generators of this kind. Subclasses keep loaded weights *outside* the instance
    (see :data:`~costroute.generators.pipeline_cache`), so that copying a spec stays cheap.
    """

    def load(self) -> None:
        """Make the backend ready (load weights); called once per group before its batches."""

    def unload(self) -> None:
        """Release whatever :meth:`load` acquired (no-op by default)."""

    def generate_images(self, prompts: Sequence[Any], seeds: Sequence[int]) -> list:
        """Make one image per prompt, ``seeds[i]`` seeding ``prompts[i]``'s image.

        Parameters
        ----------
        prompts : sequence
            The batch of prompts.
        seeds : sequence of int
            One seed per prompt; the image of a prompt must depend on its own seed only
            (not on the rest of the batch).

        Returns
        -------
        list
            ``len(prompts)`` images, in the order of ``prompts``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement generate_images")

    def _check_batch(self, prompts: Sequence[Any], seeds: Sequence[int]) -> tuple[list, list[int]]:
        """``prompts`` and ``seeds`` as lists (seeds as ints), after checking there is one seed per prompt.

        The shared argument check of :meth:`generate_images` implementations.
        """
        prompts, seeds = list(prompts), [int(s) for s in seeds]
        if len(prompts) != len(seeds):
            raise ValueError(f"generator {self.name!r} got {len(prompts)} prompts but {len(seeds)} seeds")
        return prompts, seeds


class CallableGenerator(BackendGenerator):
    """Wrap any ``fn(prompts, seeds) -> images``: a hosted API, a custom pipeline, a cascade.

    Parameters
    ----------
    name : str
        Unique generator name.
    fn : callable
        Called as ``fn(list_of_prompts, list_of_int_seeds)``; must return one image per
        prompt, in order (PIL images, arrays, bytes: whatever the caller wants back). It is
        deep-copied with the spec, so keep heavy state (weights, clients) out of it or give
        it a ``__deepcopy__`` that shares that state.
    cost : float
        Cost of one image, in ``cost_unit``.
    cost_unit : {"usd", "flops"}, default="usd"
        Unit of ``cost``.
    **settings
        Free descriptive settings (stored in :attr:`settings`).

    Examples
    --------
    >>> from costroute.generators import CallableGenerator
    >>> echo = CallableGenerator("echo", lambda prompts, seeds: [f"{p}#{s}" for p, s in zip(prompts, seeds)],
    ...                          cost=0.04)
    >>> echo.generate_images(["a cat", "a dog"], [1, 2])
    ['a cat#1', 'a dog#2']
    """

    def __init__(self, name: str, fn: Callable[[list, list], Sequence[Any]], cost: float, cost_unit: str = "usd",
                 **settings: Any):
        if not callable(fn):
            raise TypeError(f"fn of generator {name!r} must be callable as fn(prompts, seeds), got {type(fn).__name__}")
        super().__init__(name, cost, cost_unit=cost_unit, **settings)
        self.fn = fn

    def load(self) -> None:
        """Call ``fn.load()`` when the wrapped callable has one."""
        hook = getattr(self.fn, "load", None)
        if callable(hook):
            hook()

    def generate_images(self, prompts: Sequence[Any], seeds: Sequence[int]) -> list:
        """Call ``fn(list(prompts), list(seeds))`` and check that one image per prompt came back."""
        prompts, seeds = self._check_batch(prompts, seeds)
        images = self.fn(prompts, seeds)
        try:
            images = list(images)
        except TypeError as exc:
            raise TypeError(
                f"fn of generator {self.name!r} must return a sequence of images, got {type(images).__name__}"
            ) from exc
        if len(images) != len(prompts):
            raise ValueError(
                f"fn of generator {self.name!r} returned {len(images)} images for {len(prompts)} prompts"
            )
        return images

    def _key(self) -> tuple:
        fn = self.fn
        ident = (getattr(fn, "__module__", None) or type(fn).__module__,
                 getattr(fn, "__qualname__", None) or type(fn).__qualname__)
        return super()._key() + (ident,)

    def __repr__(self) -> str:
        base = super().__repr__()
        fn_name = getattr(self.fn, "__qualname__", None) or type(self.fn).__qualname__
        return f"{base[:-1]}, fn={fn_name})"
