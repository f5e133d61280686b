"""The layout says what is what: `local/` is the local cloud alone and never depends on the operator's tools."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_local_cloud_never_imports_the_operator_tools():
    offenders = {
        str(path.relative_to(ROOT)): sorted(m for m in _imported_modules(path) if m.split(".")[0] == "guardrail")
        for path in (ROOT / "local").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_lambda_code_imports_neither_the_local_cloud_nor_the_operator_tools():
    offenders = {
        str(path.relative_to(ROOT)): sorted(m for m in _imported_modules(path) if m.split(".")[0] in {"local", "guardrail"})
        for path in (ROOT / "functions").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_cli_entry_point_lives_with_the_operator_tools():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'guardrail = "guardrail.cli:main"' in pyproject
