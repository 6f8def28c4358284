"""Finding, downloading and checking the raw data files behind the dataset loaders.

Every loader reads one unmodified upstream file, pinned to a commit and a sha256. A file is
looked up, in this order:

1. ``$COSTROUTE_DATA/<subdir>/<filename>`` -- a read-only shared copy (CI, clusters, offline
   machines); skipped when the variable is unset or empty;
2. ``<data_home>/<subdir>/<filename>`` -- the per-user cache filled by earlier downloads
   (see :func:`get_data_home`);
3. the pinned URL, downloaded into ``data_home`` (only when ``download=True``).

Whatever the source, the file's sha256 is checked before it is used. The check is cached in
the process per ``(path, mtime, size)``, so loading a dataset twice hashes it once.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ChecksumError",
    "DataNotFoundError",
    "DownloadError",
    "RemoteFile",
    "fetch_file",
    "get_data_home",
]

#: Environment variable naming a read-only folder laid out like ``<subdir>/<filename>``.
DATA_ENV = "COSTROUTE_DATA"
#: Environment variable overriding the default download cache folder.
DATA_HOME_ENV = "COSTROUTE_DATA_HOME"

_CHUNK = 1 << 16
_TIMEOUT_S = 60.0


class ChecksumError(OSError):
    """A data file's sha256 differs from the pinned one (a corrupted or modified copy)."""


class DataNotFoundError(FileNotFoundError):
    """A data file is in none of the searched places and downloading was not allowed."""


class DownloadError(OSError):
    """Downloading a data file failed (no network, a bad URL, a server error...)."""


@dataclass(frozen=True)
class RemoteFile:
    """One pinned upstream data file.

    Parameters
    ----------
    subdir : str
        Folder of the file below ``$COSTROUTE_DATA`` and below the data home, with ``/``
        separators (for example ``"prompts/partiprompts"``).
    filename : str
        Name of the file.
    url : str
        Where to download it from: a raw URL pinned to a commit (any URL that
        :func:`urllib.request.urlopen` opens works, ``file://`` included).
    sha256 : str
        Expected sha256 hex digest of the file's bytes.
    size : int or None, default=None
        Expected size in bytes, if known (informative; the digest is what is checked).
    license : str, default=""
        SPDX identifier(s) of the file's license.
    """

    subdir: str
    filename: str
    url: str
    sha256: str
    size: int | None = None
    license: str = ""

    @property
    def relpath(self) -> Path:
        """The path of the file below a data folder: ``<subdir>/<filename>``."""
        return Path(*self.subdir.split("/"), self.filename)


def _data_home_path(data_home: str | os.PathLike | None = None) -> Path:
    """Resolve the data home without creating it."""
    if data_home is None:
        data_home = os.environ.get(DATA_HOME_ENV) or None
    if data_home is None:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        data_home = os.path.join(cache, "costroute")
    return Path(os.path.expanduser(os.fspath(data_home)))


def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """Return the folder where downloaded data files are cached, creating it if needed.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder to use. When None: the environment variable ``COSTROUTE_DATA_HOME`` if
        set, else ``$XDG_CACHE_HOME/costroute``, else ``~/.cache/costroute``. ``~`` is
        expanded.

    Returns
    -------
    pathlib.Path
        The data home folder (it exists on return).

    Examples
    --------
    >>> from costroute.datasets import get_data_home
    >>> get_data_home("/tmp/costroute-data")  # doctest: +SKIP
    PosixPath('/tmp/costroute-data')
    """
    path = _data_home_path(data_home)
    path.mkdir(parents=True, exist_ok=True)
    return path


# (resolved path, mtime_ns, size) -> sha256 of the bytes at that path.
_digest_cache: dict[tuple[str, int, int], str] = {}
_digest_lock = threading.Lock()


def _sha256_of(path: Path) -> str:
    """The sha256 of ``path``, cached per (path, mtime, size)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    with _digest_lock:
        digest = _digest_cache.get(key)
    if digest is None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                h.update(chunk)
        digest = h.hexdigest()
        with _digest_lock:
            _digest_cache[key] = digest
    return digest


def _check_local(path: Path, remote: RemoteFile, where: str) -> Path:
    """Return ``path`` if its digest matches ``remote``; raise ChecksumError otherwise."""
    actual = _sha256_of(path)
    if actual != remote.sha256.lower():
        if where == "data home":
            advice = (
                f"Delete it so that the next load downloads a fresh copy from {remote.url}, "
                "or replace it with an unmodified copy."
            )
        else:
            advice = (
                f"{DATA_ENV} must hold unmodified upstream files: replace it with a fresh copy "
                f"of {remote.url}, or unset {DATA_ENV} to use the data home instead."
            )
        raise ChecksumError(
            f"{path} (found in the {where}) has sha256 {actual}, expected {remote.sha256}; "
            f"the file is corrupted, truncated or modified. {advice}"
        )
    return path


def _searched(remote: RemoteFile, home: Path) -> list[Path]:
    paths = []
    shared = os.environ.get(DATA_ENV)
    if shared:
        paths.append(Path(os.path.expanduser(shared)) / remote.relpath)
    paths.append(home / remote.relpath)
    return paths


def _listing(paths: list[Path]) -> str:
    return "\n".join(f"  - {p}" for p in paths)


def _download(remote: RemoteFile, target: Path, searched: list[Path]) -> Path:
    """Download ``remote`` to a temporary file beside ``target``, verify it, move it in place."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{remote.filename}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise DownloadError(
            f"{remote.filename} was not found locally and cannot be downloaded: the folder "
            f"{target.parent} in the data home cannot be created or written ({exc}). Searched:\n{_listing(searched)}\n"
            f"Set {DATA_HOME_ENV} to a writable folder, or set {DATA_ENV} to a folder holding "
            f"{remote.relpath.as_posix()} (sha256 {remote.sha256}, from {remote.url})."
        ) from exc
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(remote.url, timeout=_TIMEOUT_S) as response:
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        h.update(chunk)
                        out.write(chunk)
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
                raise DownloadError(
                    f"{remote.filename} was not found locally and could not be downloaded from "
                    f"{remote.url} ({exc}). Searched:\n{_listing(searched)}\nWithout network "
                    f"access, download the file elsewhere (sha256 {remote.sha256}) and place it at "
                    f"{target}, or at <folder>/{remote.relpath.as_posix()} with {DATA_ENV}=<folder>."
                ) from exc
        actual = h.hexdigest()
        if actual != remote.sha256.lower():
            raise ChecksumError(
                f"the file downloaded from {remote.url} has sha256 {actual}, expected "
                f"{remote.sha256}; it was discarded and nothing was written to {target}. The "
                "download may have been truncated or the server returned another file: try "
                "again, or place a verified copy there by hand."
            )
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    # Remember the verified digest so that the next lookup does not hash again.
    st = target.stat()
    with _digest_lock:
        _digest_cache[(str(target.resolve()), st.st_mtime_ns, st.st_size)] = actual
    return target


def fetch_file(
    remote: RemoteFile,
    data_home: str | os.PathLike | None = None,
    download: bool = True,
) -> Path:
    """Return the local path of a pinned data file, downloading it if needed.

    The file is looked up in ``$COSTROUTE_DATA/<subdir>/<filename>`` (when the environment
    variable is set), then in ``<data_home>/<subdir>/<filename>``; if it is in neither and
    ``download`` is True, it is downloaded from ``remote.url`` to a temporary file in the
    data home, checked, and moved into place. A file found in either folder is checked too
    (once per process, per path, modification time and size).

    Parameters
    ----------
    remote : RemoteFile
        The file to fetch.
    data_home : str or path-like, default=None
        Download cache folder; see :func:`get_data_home`.
    download : bool, default=True
        Whether to download the file when it is not found locally.

    Returns
    -------
    pathlib.Path
        Path of a verified copy of the file.

    Raises
    ------
    ChecksumError
        The file found or downloaded does not have the pinned sha256. A bad download is
        deleted; a bad file found locally is left alone (the message says what to do).
    DataNotFoundError
        The file is not found locally and ``download`` is False.
    DownloadError
        The file is not found locally and the download failed, or the data home cannot be
        created or written (the message says which folder and what to set instead).
    """
    if not isinstance(remote, RemoteFile):
        raise TypeError(f"remote must be a RemoteFile, got {type(remote).__name__}: {remote!r}")
    home = _data_home_path(data_home)
    searched = _searched(remote, home)
    shared = os.environ.get(DATA_ENV)
    for path in searched:
        if path.is_file():
            where = "data home" if path == home / remote.relpath else f"{DATA_ENV} folder"
            return _check_local(path, remote, where)
    target = home / remote.relpath
    if not download:
        hint = "" if shared else f" ({DATA_ENV} is not set, so no shared folder was searched)"
        raise DataNotFoundError(
            f"{remote.filename} was not found and download=False. Searched{hint}:\n{_listing(searched)}\n"
            f"Download it from {remote.url} (sha256 {remote.sha256}) and place it at {target}, "
            f"or at <folder>/{remote.relpath.as_posix()} with {DATA_ENV}=<folder>; or pass "
            "download=True."
        )
    return _download(remote, target, searched)
