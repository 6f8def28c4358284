"""``benchmarks/serve_load.py`` runs end to end at tiny counts: the /v1/route budget stream and the serve-refit loop.

The load part (tiny pipelines, a ``costroute serve`` process, in-process baselines) takes longer
than a unit test should and runs only in the benchmark itself.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "serve_load.py"


@pytest.fixture(scope="module")
def serve_load():
    if not os.environ.get("COSTROUTE_DATA") or not Path(os.environ["COSTROUTE_DATA"]).is_dir():
        pytest.skip("real data not available: set COSTROUTE_DATA to the shared data folder")
    spec = importlib.util.spec_from_file_location("serve_load", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_rating_survives_the_image_exactly(serve_load):
    for rating in [*np.arange(3, 16) / 3, (3 + 3 + 33) / 3]:  # 1 to 5, and one of GenAI-Bench's typos
        assert serve_load.decode_rating(serve_load.encode_rating(rating)) == pytest.approx(rating, abs=1e-12)
    with pytest.raises(ValueError):
        serve_load.encode_rating(3.1)


def test_the_budget_stream_and_the_loop_run_and_report(serve_load, tmp_path):
    out = tmp_path / "serve_load.json"
    serve_load.main(
        ["--parts", "budget", "loop", "--stream", "120", "--window", "32", "--quality-models", "knn"]
        + ["--loop-requests", "24"]
        + ["--refit-every", "12", "--loop-repeats", "1", "--pool", "100", "--no-progress", "--out", str(out)]
    )
    doc = json.loads(out.read_text())
    budget = doc["budget"]["routers"]["knn"]
    assert budget["windows_after_first"]["count"] == 120 - 2 * 32 + 1
    assert budget["max_window_mean_all"] <= 0.25 + 1e-9  # the hard guard holds through /v1/route
    assert budget["metrics_window_mean_cost"] is not None
    assert set(doc["budget"]["verdicts"]["knn"]) == {"windows_met", "quality_met"}
    loop = doc["loop"]
    assert loop["summary"]["rating_mismatches"] == 0  # every served score is the rating of what was made
    assert loop["summary"]["requests_served"] == [12, 24]
    phases = loop["runs"][0]["phases"]
    assert phases[-1]["observed_cells"] > phases[0]["observed_cells"] > 50 * 6  # the store grows past the collection
    assert all(np.isfinite(p["apgr"]) for p in phases)
