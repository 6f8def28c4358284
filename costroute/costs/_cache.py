"""On-disk cache of FLOP counts, shared by processes: ``<data home>/flop-counts.json``.

Counting the large components on the meta device takes seconds, so
:mod:`costroute.costs` keeps every count it makes in one JSON file in the data home (see
:func:`costroute.datasets.get_data_home`), which later processes read instead of counting.

The file is a JSON object mapping a key to ``[flops, parameters]``. A key is the sha256 of
the model class, the canonical config, the input shape, the torch version and
:data:`FLOP_COUNTER_VERSION`, so a count made by another torch or by an older counting code
is never reused. The cache is an optimisation only: whatever goes wrong with it (invalid
content, an unreadable file, a folder that cannot be written) is reported with a
:class:`FlopCacheWarning` and counting goes on, in memory.

* Reads are validated: only string keys mapped to two non-negative integers are used. An
  invalid file, or invalid entries in it, are dropped and the file is rewritten.
* Writes are atomic: the merged content is written to a temporary file in the same folder,
  flushed to disk and moved over the cache file with :func:`os.replace`, so a reader never
  sees a half-written file. Writers take an exclusive lock on ``flop-counts.json.lock``
  (where the platform has :mod:`fcntl`) and merge with what is on disk, so processes that
  count at the same time lose none of each other's counts.
* ``COSTROUTE_FLOPS_CACHE=0`` turns the disk cache off; deleting the file clears it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import numbers
import os
import tempfile
import threading
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: Version of the counting code. Bump it whenever a change to the counting (the inputs fed
#: to a component, what is counted, how a model is built) can change a count: counts saved
#: on disk by another version are then ignored.
FLOP_COUNTER_VERSION = 1

#: Environment variable: ``0``, ``false``, ``no`` or ``off`` turns the disk cache off.
CACHE_ENV = "COSTROUTE_FLOPS_CACHE"
#: Name of the cache file in the data home.
CACHE_FILENAME = "flop-counts.json"

#: (model class, canonical config JSON, input shape): what one count depends on.
Request = tuple[str, str, tuple]


class FlopCacheWarning(UserWarning):
    """The FLOP count cache could not be used as is; FLOPs were counted without it.

    Raised as a warning, never as an error: an invalid cache file is rebuilt, and a cache
    that cannot be written leaves the counts in memory for the running process.
    """


def flop_cache_path() -> Path | None:
    """Path of the file where FLOP counts are cached, or None when the disk cache is off.

    The file is ``flop-counts.json`` in the data home (``COSTROUTE_DATA_HOME``, else
    ``$XDG_CACHE_HOME/costroute``, else ``~/.cache/costroute``). Setting the environment
    variable ``COSTROUTE_FLOPS_CACHE=0`` turns the disk cache off. Delete the file to clear
    the cache. Nothing is created by this function.

    Returns
    -------
    pathlib.Path or None

    Examples
    --------
    >>> from costroute.costs import flop_cache_path
    >>> flop_cache_path()                       # doctest: +SKIP
    PosixPath('/home/me/.cache/costroute/flop-counts.json')
    """
    if os.environ.get(CACHE_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    from ..datasets._base import _data_home_path

    return _data_home_path() / CACHE_FILENAME


@functools.lru_cache(maxsize=1)
def _torch_version() -> str:
    """The installed torch version, read without importing torch where possible."""
    from importlib import metadata

    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:  # pragma: no cover - torch without package metadata
        import torch

        return str(torch.__version__)


def _entry_key(
    request: Request,
    *,
    counter_version: int | None = None,
    torch_version: str | None = None,
) -> str:
    """The key of one count in the cache file (defaults: the running versions)."""
    kind, config_key, shape = request
    counter_version = FLOP_COUNTER_VERSION if counter_version is None else counter_version
    torch_version = _torch_version() if torch_version is None else torch_version
    text = json.dumps(
        {
            "class": kind,
            "config": config_key,
            "shape": list(shape),
            "torch": torch_version,
            "counter": counter_version,
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _valid_count(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0


def _valid_entry(key: Any, value: Any) -> bool:
    return (
        isinstance(key, str)
        and isinstance(value, list)
        and len(value) == 2
        and _valid_count(value[0])
        and _valid_count(value[1])
    )


def _read(path: Path) -> tuple[dict[str, list[int]], str | None]:
    """The valid entries of the cache file, and what was wrong with it (None: nothing).

    A missing file is an empty, valid cache. Other read errors (:class:`OSError`) propagate.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):  # no file, or no data home folder yet
        return {}, None
    except UnicodeDecodeError as exc:
        return {}, f"it is not UTF-8 text ({exc})"
    try:
        data = json.loads(text)
    except ValueError as exc:
        return {}, f"it is not valid JSON, for example a truncated file ({exc})"
    if not isinstance(data, dict):
        return {}, f"it holds a JSON {type(data).__name__} instead of an object of [flops, parameters] pairs"
    valid = {key: [int(value[0]), int(value[1])] for key, value in data.items() if _valid_entry(key, value)}
    dropped = len(data) - len(valid)
    if dropped:
        return valid, (
            f"{dropped} of its {len(data)} entries are not a [flops, parameters] pair of non-negative integers"
        )
    return valid, None


def _warn(message: str) -> None:
    warnings.warn(message, FlopCacheWarning, stacklevel=2)


# Problems with writing are reported once per process and path: a read-only data home would
# otherwise warn on every count.
_reported: set[tuple[str, str]] = set()
_reported_lock = threading.Lock()


def _warn_once(path: Path, what: str, message: str) -> None:
    with _reported_lock:
        if (str(path), what) in _reported:
            return
        _reported.add((str(path), what))
    _warn(message)


@contextlib.contextmanager
def _locked(path: Path):
    """Hold an exclusive lock on ``<path>.lock`` where possible (POSIX); else do nothing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the atomic replace still prevents torn files
        yield
        return
    try:
        fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        yield  # the write below fails too, and says why
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write_atomic(path: Path, entries: Mapping[str, list[int]]) -> None:
    """Write ``entries`` to a temporary file beside ``path``, fsync it, move it over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(dict(entries), f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _merge_into_file(path: Path, entries: Mapping[str, list[int]]) -> None:
    """Merge ``entries`` with the valid entries on disk and write the result atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        try:
            saved, _ = _read(path)
        except OSError:
            saved = {}  # unreadable: the replace below either repairs it or fails and says why
        saved.update(entries)
        _write_atomic(path, saved)


def _write(path: Path, entries: Mapping[str, list[int]]) -> None:
    try:
        _merge_into_file(path, entries)
    except Exception as exc:  # the cache is an optimisation: report, never raise
        _warn_once(
            path,
            "write",
            f"could not write the FLOP count cache {path} ({type(exc).__name__}: {exc}); FLOPs counted in "
            "this process are kept in memory only. Set COSTROUTE_DATA_HOME to a writable folder, or "
            f"{CACHE_ENV}=0 to turn the disk cache off.",
        )


def lookup(requests: Iterable[Request]) -> dict[Request, tuple[int, int]]:
    """Counts saved on disk for ``requests`` (those found); never raises.

    An invalid cache file, or invalid entries in it, give a :class:`FlopCacheWarning` naming
    the file and are dropped, and the file is rewritten with the valid entries.
    """
    requests = list(requests)
    path = flop_cache_path()
    if path is None or not requests:
        return {}
    try:
        saved, problem = _read(path)
    except Exception as exc:
        _warn_once(
            path,
            "read",
            f"could not read the FLOP count cache {path} ({type(exc).__name__}: {exc}); counting FLOPs "
            f"without it. Delete or fix the file, or set {CACHE_ENV}=0 to turn the disk cache off.",
        )
        return {}
    if problem is not None:
        _warn(
            f"the FLOP count cache {path} is invalid: {problem}. Its invalid content was dropped and the "
            "file is rebuilt; the affected FLOPs are counted again."
        )
        _write(path, {})
    found = {}
    for request in requests:
        value = saved.get(_entry_key(request))
        if value is not None:
            found[request] = (value[0], value[1])
    return found


def store(counts: Mapping[Request, tuple[int, int]]) -> None:
    """Save ``counts`` in the cache file, merged with what is there; never raises."""
    path = flop_cache_path()
    if path is None or not counts:
        return
    _write(path, {_entry_key(request): [int(flops), int(params)] for request, (flops, params) in counts.items()})
