"""Tell a :func:`~costroute.collect.collect` run that another one is writing the same store: :class:`WriterLock`.

Two runs on one store never store a duplicate row (the store's UNIQUE constraints), but
each generates every missing image itself, so all of the work is paid for twice. While it
runs, :func:`~costroute.collect.collect` holds an advisory lock (``flock``) on a side file,
``STORE-collect.lock``, and writes its process id, host and start time there. A second run
that finds the lock taken warns, naming the other run, and goes on.

The operating system drops the lock when its process ends, however it ends (``SIGKILL``
and a crash included), so a dead run never blocks or warns the next one: there is no stale
lock to clean up. The side file stays next to the store (like SQLite's ``-wal`` and ``-shm``
files) and may be deleted when no run is active. Where ``fcntl`` is missing (Windows) no
lock is taken and nothing is checked.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["ConcurrentWriterWarning", "WriterLock", "lock_path"]


class ConcurrentWriterWarning(RuntimeWarning):
    """Another :func:`~costroute.collect.collect` run is writing the same store."""


def lock_path(store: str) -> str:
    """The side file a run on ``store`` locks."""
    return f"{store}-collect.lock"


class WriterLock:
    """The advisory lock of one collect run on a store (a context manager).

    Parameters
    ----------
    store : str
        The store's absolute path.

    Attributes
    ----------
    held : bool
        Whether this run holds the lock (``False`` when another run holds it).
    other : dict or None
        What the run holding the lock wrote (``pid``, ``host``, ``started``), when it is not
        this one.
    """

    def __init__(self, store: str):
        self.path = lock_path(store)
        self.held = False
        self.other: dict[str, Any] | None = None
        self._fd: int | None = None

    def __enter__(self) -> WriterLock:
        if fcntl is None:
            return self
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.other = self._read()
            os.close(self._fd)
            self._fd = None
            return self
        self.held = True
        record = json.dumps(
            {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        ).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, record, 0)
        return self

    def _read(self) -> dict[str, Any]:
        try:
            record = json.loads(os.pread(self._fd, 4096, 0) or b"{}")
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def describe(self) -> str:
        """The other run, in words."""
        other = self.other or {}
        if not other.get("pid"):
            return "another collect run"
        return (
            f"another collect run (process {other['pid']} on host {other.get('host', '?')!r}, started "
            f"{other.get('started', '?')})"
        )

    def __exit__(self, *exc: Any) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None
        self.held = False
