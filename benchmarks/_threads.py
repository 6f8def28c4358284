"""Thread limits for the benchmark scripts, set from ``--threads`` before numpy or torch start their pools."""

from __future__ import annotations

import os
import sys


def limit_threads_from_argv(default: str = "1") -> str:
    """Read ``--threads N`` (or ``--threads=N``) from ``sys.argv`` and set the BLAS/OpenMP variables.

    Must run before numpy is imported. Variables already set in the environment win.
    """
    threads = default
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            threads = sys.argv[i + 1]
        elif arg.startswith("--threads="):
            threads = arg.split("=", 1)[1]
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, threads)
    return threads
