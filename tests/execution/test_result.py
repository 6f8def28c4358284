"""GenerationResult: bookkeeping, status of each prompt, saving."""

import os

import numpy as np
import pytest
from plan_helpers import Label

from costroute.execution import GenerationResult, image_seed
from costroute.generators import CallableGenerator


def partial_result():
    """Four prompts: 0 and 2 made, 1 failed, 3 never tried."""
    result = GenerationResult(["p0", "p1", "p2", "p3"], ["a"] * 4, seed=3, cost_unit="usd")
    result._record(0, Label("zero"), "a", 0.5, 0.1, 2)
    result._record(2, Label("two"), "org/b", 2.0, 0.3, 1)
    result.errors[1] = "RuntimeError: boom"
    return result


def test_status_of_every_prompt():
    result = partial_result()
    assert result.seeds == [image_seed(3, i) for i in range(4)]
    assert result.missing == [1, 3] and result.failed == [1] and result.not_attempted == [3]
    assert result.status() == ["made", "failed", "made", "not attempted"]
    assert not result.complete and result.total_cost == 2.5 and result.total_seconds == pytest.approx(0.4)
    frame = result.to_frame()
    assert frame["status"].tolist() == result.status()
    assert frame["fell_back"].tolist() == [False, False, True, False]
    assert repr(result).startswith("GenerationResult(n_images=4, missing=2 (failed=1, not_attempted=1), fallbacks=0")


def test_save_never_skips_silently(tmp_path):
    result = partial_result()
    with pytest.raises(
        ValueError,
        match=r"2 of 4 prompts have no image \(prompts 1, 3; failed: 1, not attempted: 1\)"
        r".*missing='skip'",
    ):
        result.save(tmp_path / "out")
    assert not (tmp_path / "out").exists()
    paths = result.save(tmp_path / "out", fmt="txt", missing="skip")
    assert [os.path.basename(p) for p in paths] == ["image_0000_a.txt", "image_0002_org_b.txt"]
    assert (tmp_path / "out" / "image_0002_org_b.txt").read_text() == "two"
    with pytest.raises(ValueError, match=r"missing must be one of \['raise', 'skip'\], got 'ignore'"):
        result.save(tmp_path, missing="ignore")


def test_save_refuses_an_entry_replaced_by_a_non_image(tmp_path):
    result = partial_result()
    result.images[2] = np.zeros((2, 2))
    with pytest.raises(TypeError, match="images 2 are not images.*got ndarray at 2; nothing was saved"):
        result.save(tmp_path / "out", missing="skip")
    assert not (tmp_path / "out").exists()


def test_save_writes_one_file_per_image(tiny_pool_images, tmp_path):
    result = GenerationResult(["a", "b"], ["sd-2", "xl-2"], seed=0, cost_unit="flops")
    for i, (gen, image) in enumerate(zip(["sd-2", "xl-2"], tiny_pool_images)):
        result._record(i, image, gen, 1.0, 0.1, 1)
    paths = result.save(tmp_path / "out")
    assert [p.rsplit("/", 1)[1] for p in paths] == ["image_0000_sd-2.png", "image_0001_xl-2.png"]
    from PIL import Image

    assert Image.open(paths[1]).size == tiny_pool_images[1].size


@pytest.fixture
def tiny_pool_images():
    from PIL import Image

    return [Image.new("RGB", (64, 64), "red"), Image.new("RGB", (32, 16), "blue")]


@pytest.mark.parametrize(
    "name, part",
    [
        ("org/model", "org_model"),
        ("../../escape", "._._escape"),
        ("..", "."),
        ("a\\b:c d", "a_b_c_d"),
        ("sd15-dpm++_v1.5", "sd15-dpm++_v1.5"),
    ],
)
def test_save_keeps_unsafe_generator_names_inside_the_folder(name, part, make_plan, tmp_path):
    gen = CallableGenerator(name, lambda prompts, seeds: [Label(p) for p in prompts], cost=1.0)
    folder = tmp_path / "out"
    paths = make_plan(["a", "b"], [0, 0], [gen]).generate(progress=False).save(folder, fmt="txt")
    assert [os.path.basename(p) for p in paths] == [f"image_0000_{part}.txt", f"image_0001_{part}.txt"]
    assert sorted(os.listdir(folder)) == sorted(os.path.basename(p) for p in paths)
    assert all(os.path.dirname(os.path.abspath(p)) == str(folder) for p in paths)
