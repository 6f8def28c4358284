"""Lookup order, download, checksum and caching of costroute.datasets._base (synthetic files)."""

import hashlib
import os
from pathlib import Path

import pytest

from costroute.datasets import (
    ChecksumError,
    DataNotFoundError,
    DownloadError,
    RemoteFile,
    _base,
    fetch_file,
    get_data_home,
)

CONTENT = b"prompt\tscore\na red cube\t3\n"
SHA = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture
def server(tmp_path) -> Path:
    """A folder standing for the remote host, holding the true file."""
    root = tmp_path / "server"
    root.mkdir()
    (root / "table.tsv").write_bytes(CONTENT)
    return root


@pytest.fixture
def remote(server) -> RemoteFile:
    return RemoteFile(
        subdir="toy/set",
        filename="table.tsv",
        url=(server / "table.tsv").as_uri(),
        sha256=SHA,
        size=len(CONTENT),
        license="CC0-1.0",
    )


def _place(root: Path, remote: RemoteFile, content: bytes = CONTENT) -> Path:
    path = root / remote.relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


# --- get_data_home ----------------------------------------------------------------------


def test_get_data_home_explicit_is_created(tmp_path):
    target = tmp_path / "a" / "b"
    assert get_data_home(target) == target
    assert target.is_dir()
    assert get_data_home(str(target)) == target


def test_get_data_home_env_and_default(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTROUTE_DATA_HOME", str(tmp_path / "env"))
    assert get_data_home() == tmp_path / "env"
    monkeypatch.delenv("COSTROUTE_DATA_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert get_data_home() == tmp_path / "xdg" / "costroute"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert get_data_home() == tmp_path / "home" / ".cache" / "costroute"
    assert get_data_home("~/elsewhere") == tmp_path / "home" / "elsewhere"


def test_remote_relpath(remote):
    assert remote.relpath == Path("toy", "set", "table.tsv")


# --- lookup order ---------------------------------------------------------------------


def test_shared_folder_takes_precedence_over_data_home(remote, tmp_path, data_home, monkeypatch, no_network):
    shared = tmp_path / "shared"
    in_shared = _place(shared, remote)
    _place(data_home, remote)
    monkeypatch.setenv("COSTROUTE_DATA", str(shared))
    assert fetch_file(remote, data_home=data_home) == in_shared


def test_data_home_used_when_shared_folder_lacks_file(remote, tmp_path, data_home, monkeypatch, no_network):
    (tmp_path / "shared").mkdir()
    monkeypatch.setenv("COSTROUTE_DATA", str(tmp_path / "shared"))
    in_home = _place(data_home, remote)
    assert fetch_file(remote, data_home=data_home) == in_home
    # None -> $COSTROUTE_DATA_HOME, which the fixture points at the same folder.
    assert fetch_file(remote) == in_home


# --- download ---------------------------------------------------------------------------


def test_download_through_file_url(remote, data_home, no_shared_data):
    path = fetch_file(remote, data_home=data_home)
    assert path == data_home / "toy" / "set" / "table.tsv"
    assert path.read_bytes() == CONTENT
    assert _leftovers(data_home) == [path]  # no temporary file left behind


def test_second_call_is_a_cache_hit(remote, data_home, no_shared_data, monkeypatch):
    first = fetch_file(remote, data_home=data_home)
    calls = []
    monkeypatch.setattr(_base.urllib.request, "urlopen", lambda *a, **k: calls.append(a))
    real_sha256 = hashlib.sha256
    monkeypatch.setattr(_base.hashlib, "sha256", lambda *a: calls.append("hash") or real_sha256(*a))
    assert fetch_file(remote, data_home=data_home) == first
    assert fetch_file(remote, data_home=data_home, download=False) == first
    assert calls == []  # neither downloaded nor re-hashed


def test_local_file_hashed_once_per_version(remote, data_home, no_shared_data, monkeypatch):
    path = _place(data_home, remote)
    hashes = []
    real_sha256 = hashlib.sha256
    monkeypatch.setattr(_base.hashlib, "sha256", lambda *a: hashes.append(1) or real_sha256(*a))
    fetch_file(remote, data_home=data_home, download=False)
    fetch_file(remote, data_home=data_home, download=False)
    assert len(hashes) == 1
    # A changed file (new size and mtime) is hashed again, and caught.
    path.write_bytes(CONTENT + b"extra\t1\n")
    os.utime(path, ns=(1, 1))
    with pytest.raises(ChecksumError):
        fetch_file(remote, data_home=data_home, download=False)
    assert len(hashes) == 2


def test_download_checksum_mismatch_leaves_nothing(remote, data_home, no_shared_data):
    bad = RemoteFile(remote.subdir, remote.filename, remote.url, sha256="0" * 64)
    with pytest.raises(ChecksumError) as info:
        fetch_file(bad, data_home=data_home)
    msg = str(info.value)
    assert SHA in msg and "0" * 64 in msg and remote.url in msg
    assert isinstance(info.value, OSError)
    assert not (data_home / remote.relpath).exists()
    assert _leftovers(data_home) == []


def test_truncated_download_is_rejected(remote, server, data_home, no_shared_data):
    (server / "table.tsv").write_bytes(CONTENT[:10])
    with pytest.raises(ChecksumError, match="discarded"):
        fetch_file(remote, data_home=data_home)
    assert _leftovers(data_home) == []


def test_corrupted_file_in_data_home(remote, data_home, no_shared_data, no_network):
    path = _place(data_home, remote, b"not the file")
    with pytest.raises(ChecksumError) as info:
        fetch_file(remote, data_home=data_home)
    msg = str(info.value)
    assert str(path) in msg and SHA in msg and hashlib.sha256(b"not the file").hexdigest() in msg
    assert "Delete it" in msg


def test_corrupted_file_in_shared_folder(remote, tmp_path, data_home, monkeypatch, no_network):
    shared = tmp_path / "shared"
    _place(shared, remote, b"modified")
    _place(data_home, remote)  # a good copy elsewhere does not hide the problem
    monkeypatch.setenv("COSTROUTE_DATA", str(shared))
    with pytest.raises(ChecksumError, match="COSTROUTE_DATA"):
        fetch_file(remote, data_home=data_home)


def test_missing_without_download(remote, tmp_path, data_home, monkeypatch, no_network):
    monkeypatch.setenv("COSTROUTE_DATA", str(tmp_path / "shared"))
    with pytest.raises(DataNotFoundError) as info:
        fetch_file(remote, data_home=data_home, download=False)
    assert isinstance(info.value, FileNotFoundError)
    msg = str(info.value)
    assert str(tmp_path / "shared" / remote.relpath) in msg
    assert str(data_home / remote.relpath) in msg
    assert remote.url in msg and SHA in msg
    assert _leftovers(data_home) == []


def test_missing_without_download_mentions_unset_env(remote, data_home, no_shared_data):
    with pytest.raises(DataNotFoundError, match="COSTROUTE_DATA is not set"):
        fetch_file(remote, data_home=data_home, download=False)


def test_failed_download(remote, server, data_home, no_shared_data):
    (server / "table.tsv").unlink()
    with pytest.raises(DownloadError) as info:
        fetch_file(remote, data_home=data_home)
    msg = str(info.value)
    assert remote.url in msg and str(data_home / remote.relpath) in msg
    assert _leftovers(data_home) == []


def test_fetch_file_rejects_non_remote(data_home):
    with pytest.raises(TypeError, match="RemoteFile"):
        fetch_file("genai-bench/genai_image.json", data_home=data_home)
