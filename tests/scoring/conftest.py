"""Tiny random scorer models, built offline once per test session, and test images."""

from __future__ import annotations

import numpy as np
import pytest
from model_fixtures import fresh_pipeline_cache, one_torch_thread  # noqa: F401  (autouse fixtures)

from costroute.scoring import build_tiny_vlm

PROMPTS = ["a cat", "a red dog on a mat", "x", "a very long prompt about {many} things, 'quoted'", "b", "zebra 42"]


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
