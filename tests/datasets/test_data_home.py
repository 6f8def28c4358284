"""A data home that cannot be created or written gives a clear DownloadError, not a bare OSError."""

import hashlib
import os
import sys
from pathlib import Path

import pytest

from costroute.datasets import DownloadError, RemoteFile, fetch_file, load_genai_bench

CONTENT = b"prompt\tscore\n"


@pytest.fixture
def remote(tmp_path) -> RemoteFile:
    server = tmp_path / "server"
    server.mkdir()
    (server / "table.tsv").write_bytes(CONTENT)
    return RemoteFile("toy/set", "table.tsv", (server / "table.tsv").as_uri(), hashlib.sha256(CONTENT).hexdigest())


def test_data_home_below_a_file(remote, tmp_path, monkeypatch, no_shared_data):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    home = blocker / "home"
    monkeypatch.setenv("COSTROUTE_DATA_HOME", str(home))
    with pytest.raises(DownloadError) as info:
        fetch_file(remote)
    message = str(info.value)
    assert f"the folder {home / 'toy' / 'set'} in the data home cannot be created or written" in message
    assert (
        "Set COSTROUTE_DATA_HOME to a writable folder, or set COSTROUTE_DATA to a folder holding toy/set/table.tsv"
        in message
    )
    assert isinstance(info.value.__cause__, OSError)
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(not sys.platform.startswith("linux") or not Path("/proc").is_dir(), reason="needs Linux /proc")
def test_loader_with_data_home_in_proc(monkeypatch, no_shared_data):
    """The trial's case: ``COSTROUTE_DATA_HOME=/proc/nope`` and no shared copy."""
    monkeypatch.setenv("COSTROUTE_DATA_HOME", "/proc/nope")
    with pytest.raises(
        DownloadError,
        match=r"(?s)/proc/nope/genai-bench in the data home cannot be created or written.*"
        r"Set COSTROUTE_DATA_HOME to a writable folder, or set COSTROUTE_DATA",
    ):
        load_genai_bench()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes to read-only folders")
def test_read_only_data_home(remote, tmp_path, monkeypatch, no_shared_data):
    home = tmp_path / "read-only"
    home.mkdir()
    home.chmod(0o500)
    monkeypatch.setenv("COSTROUTE_DATA_HOME", str(home))
    try:
        with pytest.raises(DownloadError, match="cannot be created or written"):
            fetch_file(remote)
    finally:
        home.chmod(0o700)
