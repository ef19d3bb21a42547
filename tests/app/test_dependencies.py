"""Imports point one way: worker -> app -> rlcore. `app` never imports `worker`; `rlcore` neither."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in `path`, function-level and TYPE_CHECKING ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            target = node.args[0]
            if isinstance(target, ast.Constant) and isinstance(target.value, str):
                found.append((node.lineno, target.value.split(".")[0]))
    return found


def _is_dynamic_import(node: ast.Call) -> bool:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name in ("import_module", "__import__") and bool(node.args)


def violations(package: str, forbidden: set[str]) -> list[str]:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no modules under {package}/"
    return [
        f"{path.relative_to(ROOT)}:{line} imports {top}"
        for path in files
        for line, top in imported_packages(path)
        if top in forbidden
    ]


@pytest.mark.parametrize(
    ("package", "forbidden"), [("app", {"worker"}), ("rlcore", {"app", "worker"})], ids=["app", "rlcore"]
)
def test_imports_point_one_way(package: str, forbidden: set[str]) -> None:
    assert violations(package, forbidden) == []


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "late.py"
    module.write_text(
        "def f():\n    from worker.celery_app import app\n"
        "def g():\n    import worker.tasks\n"
        "def h():\n    importlib.import_module('worker.reaper')\n"
    )
    assert [top for _, top in imported_packages(module)] == ["worker", "worker", "worker"]
