"""Helpers shared by the benchmark scripts: thread limits from --threads, JSON output, report frames."""

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


# numpy and pandas are imported inside the helpers below: this module is imported before the
# thread limits are set, and numpy must not start its pools first.
def to_json(x):
    """``x`` with numpy scalars and arrays as plain Python, NaN as null, ±inf as "inf"/"-inf", 7 digits."""
    import math

    import numpy as np

    if isinstance(x, dict):
        return {str(k): to_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_json(v) for v in x]
    if isinstance(x, (np.floating, float)):
        x = float(x)
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return float(f"{x:.7g}")  # 7 significant digits keep the file small
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.ndarray):
        return to_json(x.tolist())
    return x


def frame_from_records(records):
    """A report DataFrame back from JSON records ("inf" -> inf, null -> NaN)."""
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(records).set_index("method")
    for col in frame.columns:
        if col != "kind":
            frame[col] = pd.to_numeric(frame[col].replace({"inf": np.inf, "-inf": -np.inf}), errors="coerce")
    return frame


def load_text(values) -> str:
    """Load averages as "1.0/2.0/3.0" ("n/a" when unknown)."""
    return "n/a" if not values else "/".join(f"{v:.1f}" for v in values)
