"""Tiny random scorer models, built offline once per test session, and test images."""

from __future__ import annotations

import numpy as np
import pytest

from costroute.generators import pipeline_cache
from costroute.scoring import build_tiny_clip, build_tiny_vlm

PROMPTS = ["a cat", "a red dog on a mat", "x", "a very long prompt about {many} things, 'quoted'", "b", "zebra 42"]


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> str:
    """Folder of a tiny CLIPModel + processor (seed 3: its cosines take both signs on the test images)."""
    return build_tiny_clip(tmp_path_factory.mktemp("scorers") / "tiny-clip", seed=3)


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory) -> str:
    """Folder of a tiny LLaVA-style model + processor with the LLaVA-1.5 chat template."""
    return build_tiny_vlm(tmp_path_factory.mktemp("scorers") / "tiny-vlm", seed=0)


@pytest.fixture(scope="session")
def images():
    """Six PIL RGB images of different sizes and contents, one per prompt of PROMPTS."""
    from PIL import Image

    rng = np.random.default_rng(0)
    shapes = [(40, 50), (64, 64), (33, 47), (80, 20), (48, 48), (50, 40)]
    return [Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)) for h, w in shapes]


@pytest.fixture
def prompts():
    return list(PROMPTS)


@pytest.fixture(autouse=True)
def fresh_pipeline_cache():
    """Every test starts and ends with an empty model cache and the default bound."""
    bound = pipeline_cache.max_loaded
    pipeline_cache.clear()
    yield pipeline_cache
    pipeline_cache.clear()
    pipeline_cache.max_loaded = bound


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads; on a shared 2-core machine threads slow them down."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
