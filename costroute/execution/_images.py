"""What counts as an image: the contract every backend's output is checked against.

An image is an object with a callable ``save`` method, such as a ``PIL.Image.Image``
(what the diffusers backends return). :meth:`GenerationResult.save
<costroute.execution.GenerationResult.save>` relies on exactly that method, so anything
else -- ``None`` from a content filter, a number, a string, raw bytes, a numpy array -- is
not an image: it fails its prompt at generation time instead of crashing or being skipped
when saved.
"""

from __future__ import annotations

import types
from typing import Any

__all__ = ["is_image"]


def is_image(obj: Any) -> bool:
    """Whether ``obj`` counts as an image: it has a callable ``save`` attribute.

    PIL images qualify; ``None``, numbers, strings, bytes and numpy arrays do not (wrap an
    array with ``PIL.Image.fromarray``, PNG bytes with ``PIL.Image.open(io.BytesIO(data))``).
    Classes and modules never count, even with a ``save`` function.

    Parameters
    ----------
    obj : object

    Returns
    -------
    bool

    Examples
    --------
    >>> from PIL import Image
    >>> from costroute.execution import is_image
    >>> is_image(Image.new("RGB", (8, 8))), is_image(None), is_image("a cat")
    (True, False, False)
    """
    if obj is None or isinstance(obj, (str, bytes, bytearray, type, types.ModuleType)):
        return False
    return callable(getattr(obj, "save", None))


def not_an_image(generator: str, index: int, obj: Any) -> TypeError:
    """The error that fails prompt ``index`` when ``generator`` returned ``obj`` instead of an image."""
    shown = repr(obj)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return TypeError(
        f"generator {generator!r} returned {type(obj).__name__} {shown} instead of an image for prompt {index}; "
        "an image is an object with a save(path) method such as a PIL.Image.Image (wrap arrays with "
        "PIL.Image.fromarray, PNG bytes with PIL.Image.open(io.BytesIO(data)))"
    )
