"""``python -m costroute.collect._watchdog DRIVER_PID``: kill a local Ray instance's processes once its driver is gone.

Started by :class:`~costroute.collect.RayBackend` (Linux only) next to the local instance it
starts for a run; see :func:`watch`.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time

__all__ = ["watch"]


def watch(driver: int) -> None:
    """Kill the processes of the local Ray instance when the driver ends (run in its own process).

    Reads from standard input, a pipe whose other end only the driver holds: a line of the
    Ray processes' ids (the roots), then ``done`` when the driver shut Ray down itself. The
    end of the input without ``done`` means the driver died (``SIGKILL``, a crash): Ray
    kills its GCS and raylet with it, but the agents the raylet started
    (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``) and the workers outlive them. Every
    half second the watchdog records the roots and all their descendants (id and start
    time, so that a reused id is never killed); at the end it kills those still running,
    and after ``done`` those still running 10 s later.
    """

    def table() -> dict:
        """pid -> (parent pid, start time) of every process (Linux /proc)."""
        out = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    with open(f"/proc/{name}/stat", "rb") as f:
                        fields = f.read().rsplit(b")", 1)[1].split()
                    out[int(name)] = (int(fields[1]), int(fields[19]))
                except (OSError, IndexError, ValueError):
                    pass
        return out

    roots: set = set()
    seen: dict = {}

    def record() -> None:
        now = table()
        children: dict = {}
        for pid, (ppid, _) in now.items():
            children.setdefault(ppid, []).append(pid)
        todo = [p for p in roots if p in now] + [p for p in seen if p in now and now[p][1] == seen[p]]
        while todo:
            pid = todo.pop()
            if pid != driver and pid != os.getpid() and pid not in seen:
                seen[pid] = now[pid][1]
            todo.extend(c for c in children.get(pid, ()) if c not in seen)

    def kill() -> None:
        record()
        now = table()
        for pid, started in seen.items():
            if pid in now and now[pid][1] == started:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    graceful = False
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], 0.5)
        if ready:
            line = sys.stdin.readline()
            if not line:
                break
            if line.strip() == "done":
                graceful = True
                break
            roots.update(int(p) for p in line.split())
        record()
    if graceful:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(p in table() for p in seen):
            time.sleep(0.2)
    kill()


if __name__ == "__main__":
    watch(int(sys.argv[1]))
