"""Generators that can make images: the backend interface and :class:`CallableGenerator`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
            ``len(prompts)`` images, in the order of ``prompts``. An image is an object
            with a ``save(path)`` method, such as a ``PIL.Image.Image``
            (:func:`costroute.execution.is_image`); an item that is not one (``None`` for a
            filtered image, say) fails that prompt when a plan is generated.
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
        Called as ``fn(list_of_prompts, list_of_int_seeds)``; must return a list (or
        another non-string sequence) with one item per prompt, in order. Each item should
        be an image: an object with a ``save(path)`` method, such as a ``PIL.Image.Image``
        (wrap arrays with ``PIL.Image.fromarray``, PNG bytes with
        ``PIL.Image.open(io.BytesIO(data))``). When a plan is generated, an item that is
        not an image -- ``None`` for an image an API's content filter withheld, a number,
        a string, an array -- fails that prompt alone (it falls back or raises, following
        ``on_error``; it is not charged and ``fn`` is not called again for the other
        prompts). Returning a ``str``, ``bytes`` or a mapping instead of a list is a
        ``TypeError``, as is a list of the wrong length (a ``ValueError``). ``fn`` is
        deep-copied with the spec, so keep heavy state (weights, clients) out of it or
        give it a ``__deepcopy__`` that shares that state.
    cost : float
        Cost of one image, in ``cost_unit``.
    cost_unit : {"usd", "flops"}, default="usd"
        Unit of ``cost``.
    **settings
        Free descriptive settings (stored in :attr:`settings`).

    Examples
    --------
    >>> from PIL import Image
    >>> from costroute.generators import CallableGenerator
    >>> def draw(prompts, seeds):  # one grey square per prompt, its shade from the seed
    ...     return [Image.new("L", (64, 64), color=seed % 256) for seed in seeds]
    >>> api = CallableGenerator("grey", draw, cost=0.04)
    >>> [image.getpixel((0, 0)) for image in api.generate_images(["a cat", "a dog"], [1, 2])]
    [1, 2]
    """

    def __init__(
        self, name: str, fn: Callable[[list, list], Sequence[Any]], cost: float, cost_unit: str = "usd", **settings: Any
    ):
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
        """Call ``fn(list(prompts), list(seeds))`` and check that a list with one item per prompt came back.

        The items themselves are returned as they are; :meth:`RoutingPlan.generate
        <costroute.RoutingPlan.generate>` checks that each is an image.

        Raises
        ------
        TypeError
            If ``fn`` returned a ``str``, ``bytes``, a mapping or something not iterable.
        ValueError
            If it returned a different number of items than prompts.
        """
        prompts, seeds = self._check_batch(prompts, seeds)
        images = self.fn(prompts, seeds)
        if isinstance(images, (str, bytes, bytearray, Mapping)):
            raise TypeError(
                f"fn of generator {self.name!r} returned a {type(images).__name__} for {len(prompts)} prompts; it must "
                "return a list with one image per prompt (e.g. [image_1, image_2]), not a single string, bytes or dict"
            )
        try:
            images = list(images)
        except TypeError as exc:
            raise TypeError(
                f"fn of generator {self.name!r} must return a sequence of images, got {type(images).__name__}"
            ) from exc
        if len(images) != len(prompts):
            raise ValueError(f"fn of generator {self.name!r} returned {len(images)} images for {len(prompts)} prompts")
        return images

    def _key(self) -> tuple:
        fn = self.fn
        ident = (
            getattr(fn, "__module__", None) or type(fn).__module__,
            getattr(fn, "__qualname__", None) or type(fn).__qualname__,
        )
        return super()._key() + (ident,)

    def __repr__(self) -> str:
        base = super().__repr__()
        fn_name = getattr(self.fn, "__qualname__", None) or type(self.fn).__qualname__
        return f"{base[:-1]}, fn={fn_name})"
