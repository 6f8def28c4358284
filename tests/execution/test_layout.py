"""Layering: generators <- execution <- plan, with no import cycle and nothing heavy at import time."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import costroute

PACKAGE = Path(costroute.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported(module: str, node: ast.AST) -> set[str]:
    """The costroute modules an import statement in ``module`` loads."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name.split(".")[0] == "costroute"}
    if not isinstance(node, ast.ImportFrom):
        return set()
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
        base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
        base = f"{base}.{node.module}" if node.module else base
    else:
        base = node.module or ""
    if base.split(".")[0] != "costroute":
        return set()
    submodules = {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES}
    out = submodules if submodules and len(submodules) == len(node.names) else submodules | {base}
    # a module's own package (and its ancestors) is always being imported already: not an arrow
    return {m for m in out if m != module and not module.startswith(m + ".")}


def imports(module: str, at_import_time: bool) -> set[str]:
    """Modules imported by ``module``: at import time only (module level, outside TYPE_CHECKING),
    or anywhere (function bodies too), TYPE_CHECKING blocks excluded either way."""
    found: set[str] = set()

    def visit(body):
        for node in body:
            if is_type_checking(node):
                continue
            found.update(imported(module, node))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and at_import_time:
                continue
            for field in ("body", "orelse", "finalbody", "handlers"):
                visit(getattr(node, field, []) or [])

    visit(ast.parse(MODULES[module].read_text()).body)
    return found


def unit(module: str) -> str:
    """The package-level unit a module belongs to: costroute.generators, costroute.plan, ..."""
    return ".".join(module.split(".")[:2])


def test_no_import_cycle_even_inside_functions():
    """Modules import each other in one direction only, function-level imports included."""
    graph = {m: imports(m, at_import_time=False) & set(MODULES) for m in MODULES}
    done, active = set(), []

    def visit(m):
        if m in active:
            pytest.fail(f"import cycle: {' -> '.join(active[active.index(m) :] + [m])}")
        if m in done:
            return
        active.append(m)
        for n in sorted(graph[m]):
            visit(n)
        active.pop()
        done.add(m)

    for m in sorted(MODULES):
        visit(m)


@pytest.mark.parametrize(
    "lower, upper",
    [
        ("costroute.generators", "costroute.execution"),
        ("costroute.generators", "costroute.plan"),
        ("costroute.execution", "costroute.plan"),
        ("costroute.costs", "costroute.generators"),
        ("costroute.costs", "costroute.execution"),
    ],
)
def test_arrows_point_down(lower, upper):
    """No module of a lower layer imports an upper one, even inside a function."""
    offenders = [
        (module, m)
        for module in MODULES
        if unit(module) == lower
        for m in imports(module, at_import_time=False)
        if unit(m) == upper
    ]
    assert offenders == []


def test_the_root_package_holds_the_router_core_only():
    root = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert root == ["__init__", "_checks", "io", "metrics", "plan", "router", "router_cv", "routing"]
    packages = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    assert {"cascade", "cli"} <= set(packages)


def test_plan_calls_into_execution_which_uses_generators():
    assert "costroute.execution" in imports("costroute.plan", at_import_time=True)
    assert {unit(m) for m in imports("costroute.execution._plan", at_import_time=True)} >= {"costroute.generators"}


@pytest.mark.parametrize(
    "first",
    [
        "costroute.execution",
        "costroute.generators",
        "costroute.plan",
        "costroute.execution._batches",
        "costroute.generators.presets",
        "costroute.cascade",
        "costroute.cli",
        "costroute.collect",
        "costroute.costs",
    ],
)
def test_fresh_interpreter_imports_in_any_order_without_heavy_modules(first):
    code = (
        f"import sys, importlib; importlib.import_module({first!r})\n"
        "import costroute.execution, costroute.generators, costroute.cascade, costroute.cli, costroute.collect\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers', 'sentence_transformers', 'tqdm') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_result_types_live_in_execution_only():
    from costroute import execution, generators

    for name in ("Fallback", "GenerationError", "GenerationResult", "image_seed", "profile", "CostProfile"):
        assert hasattr(execution, name)
        assert not hasattr(generators, name)
