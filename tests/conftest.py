"""Shared test set-up.

The real data files live outside the repository (``../shared/data`` next to it on the
development machine; CI sets ``COSTROUTE_DATA`` itself). When the variable is unset and that
folder exists, point the dataset loaders at it so that a plain ``pytest`` works.
"""

import os
from pathlib import Path

import pytest

_SHARED_DATA = Path(__file__).resolve().parent.parent / ".." / "shared" / "data"

if not os.environ.get("COSTROUTE_DATA") and _SHARED_DATA.is_dir():
    os.environ["COSTROUTE_DATA"] = str(_SHARED_DATA.resolve())

# One OpenMP thread per process: the tests fit tiny models (6 to a few hundred rows), where
# threads gain nothing, and on a shared 2-core machine the OpenMP threads of scikit-learn's
# HistGradientBoostingRegressor (quality_model="gbm") and of torch spin against other
# processes and slow a fit down 10x or more (test_router.py's gbm tests: 210 s -> 21 s).
# Set before scikit-learn or torch is imported; subprocesses inherit it. An explicit
# OMP_NUM_THREADS in the environment wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Count FLOPs afresh in tests instead of reading counts an earlier process saved on disk;
# tests/costs/test_cache.py checks the disk cache itself.
os.environ.setdefault("COSTROUTE_FLOPS_CACHE", "0")


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory) -> str:
    """Folder of a tiny StableDiffusionPipeline (64x64 images, random weights), built once per session."""
    from costroute.generators import build_tiny_pipeline

    return build_tiny_pipeline(tmp_path_factory.mktemp("pipelines") / "tiny-sd", kind="sd", seed=0)


@pytest.fixture(scope="session")
def tiny_sdxl(tmp_path_factory) -> str:
    """Folder of a tiny StableDiffusionXLPipeline (two CLIP encoders, text_time conditioning)."""
    from costroute.generators import build_tiny_pipeline

    return build_tiny_pipeline(tmp_path_factory.mktemp("pipelines") / "tiny-sdxl", kind="sdxl", seed=1)


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> str:
    """Folder of a tiny CLIPModel + processor (seed 3: its cosines take both signs on test images)."""
    from costroute.scoring import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("scorers") / "tiny-clip", seed=3)
