"""The package's public face and the rules of its layout."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import costroute.evaluation as evaluation
from costroute import routing

PACKAGE = Path(evaluation.__file__).parent
#: Submodules from the bottom up: each may import only the ones before it.
LAYERS = [
    "_metrics",
    "_noise_ceiling",
    "_curves",
    "_labels",
    "_plot",
    "_scores",
    "_progress",
    "_cascades",
    "_crossval",
    "_split_rater",
    "_report",
]


def test_public_names_are_importable_and_the_routing_rule_is_not_copied():
    for name in evaluation.__all__:
        assert getattr(evaluation, name) is not None
    assert evaluation.route_with_penalty is routing.route_with_penalty
    assert evaluation.lambda_grid is routing.lambda_grid
    assert sorted(p.stem for p in PACKAGE.glob("_*.py") if p.stem != "__init__") == sorted(LAYERS)


def test_submodules_import_each_other_downward_only():
    for pos, name in enumerate(LAYERS):
        tree = ast.parse((PACKAGE / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                assert node.module in LAYERS[:pos], f"{name} imports {node.module}, which is not below it"
        assert len((PACKAGE / f"{name}.py").read_text().splitlines()) < 600


def test_import_loads_no_plotting_or_deep_learning_library():
    code = (
        "import sys, costroute.evaluation; "
        "print(sorted(m for m in ('matplotlib', 'torch', 'diffusers', 'transformers', "
        "'sentence_transformers', 'tqdm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
