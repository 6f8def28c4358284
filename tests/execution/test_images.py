"""is_image: the image contract (an object with a callable save method)."""

import numpy as np
import pytest
from PIL import Image
from plan_helpers import Label

from costroute.execution import is_image


class Drawing:
    def save(self, path):
        pass


class NotCallable:
    save = "not a method"


@pytest.mark.parametrize(
    "obj",
    [Image.new("RGB", (4, 4)), Image.new("L", (1, 1)), Label("x"), Drawing()],
    ids=["rgb", "grey", "label", "custom"],
)
def test_images(obj):
    assert is_image(obj)


@pytest.mark.parametrize(
    "obj",
    [
        None,
        0,
        1.5,
        "a cat",
        b"\x89PNG",
        bytearray(b"x"),
        np.zeros((4, 4, 3)),
        [Image.new("L", (1, 1))],
        NotCallable(),
        Drawing,
        np,
    ],
    ids=["none", "int", "float", "str", "bytes", "bytearray", "array", "list", "attribute", "class", "module"],
)
def test_not_images(obj):
    assert not is_image(obj)
