"""Fixtures for the dataset loader tests.

No test may write to the user's real cache: every test gets a fresh ``COSTROUTE_DATA_HOME``.
Tests that read the real files use ``shared_data`` and are skipped (with the reason) when
``COSTROUTE_DATA`` does not hold them.
"""

import os
from pathlib import Path

import pytest

from costroute.datasets import _base


@pytest.fixture(autouse=True)
def _isolated_data_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("data_home")
    monkeypatch.setenv("COSTROUTE_DATA_HOME", str(home))
    return home


@pytest.fixture
def data_home(_isolated_data_home) -> Path:
    """The (empty) data home of this test."""
    return _isolated_data_home


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real data files (``$COSTROUTE_DATA``), or skip."""
    value = os.environ.get("COSTROUTE_DATA")
    if not value or not Path(value).is_dir():
        pytest.skip("real data not available: set COSTROUTE_DATA to the shared data folder")
    return Path(value)


@pytest.fixture
def no_shared_data(monkeypatch):
    """Unset COSTROUTE_DATA for one test, so only the data home (and download) remain."""
    monkeypatch.delenv("COSTROUTE_DATA", raising=False)


@pytest.fixture
def no_network(monkeypatch):
    """Make any download attempt fail loudly."""

    def _fail(*args, **kwargs):
        raise AssertionError(f"unexpected download: {args[0] if args else kwargs}")

    monkeypatch.setattr(_base.urllib.request, "urlopen", _fail)
