"""The Sphinx documentation builds without a single warning (``make docs``).

The build runs on a copy of ``docs/`` in a temporary folder, beside links to the rest of the
checkout (the pages link to ``../benchmarks/results/`` and to source files), so that it writes
nothing into the checkout. About 20 s on 2 CPU cores.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

for _module in ("sphinx", "myst_parser", "numpydoc"):
    pytest.importorskip(_module, reason="the docs extra is not installed: pip install -e '.[docs]'")


def test_docs_build_without_warnings(tmp_path):
    src = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", src, ignore=shutil.ignore_patterns("_build", "generated", "__pycache__"))
    for entry in ROOT.iterdir():
        if entry.name not in {"docs", ".git", ".venv"}:
            (tmp_path / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(src), str(tmp_path / "html")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, f"Sphinx reported problems:\n{done.stderr[-5000:]}"
    assert (tmp_path / "html" / "generated" / "costroute.CostAwareRouter.html").is_file()
    assert (tmp_path / "html" / "generated" / "costroute.cascade.CascadeRouter.html").is_file()


def test_importing_costroute_for_the_docs_imports_no_heavy_dependency():
    code = (
        "import sys, costroute, costroute.datasets, costroute.evaluation, costroute.collect, "
        "costroute.execution, costroute.scoring, costroute.costs, costroute.features, "
        "costroute.quality_models, costroute.generators, costroute.io, costroute.metrics, "
        "costroute.cascade, costroute.routing\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'diffusers', 'transformers', "
        "'sentence_transformers', 'ray', 'matplotlib'})\n"
        "print(','.join(heavy))"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"importing the documented modules imported {done.stdout.strip()}"
