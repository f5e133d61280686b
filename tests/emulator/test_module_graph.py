"""The emulator's modules form no import circle (issue 14 §8): each imports only modules below it, so any one of
them can be imported on its own and read without the others. Every import counts, also those under
TYPE_CHECKING and inside functions: a circle hidden there is still a circle in the design."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "local" / "sagemaker"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))


def _sagemaker_imports(path: Path) -> set[str]:
    """The local.sagemaker modules `path` imports (`from local.sagemaker import x` and `... .x import y`)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[2] for a in node.names if a.name.startswith("local.sagemaker."))
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "local.sagemaker":
                out.update(a.name for a in node.names if a.name in MODULES)
            elif node.module.startswith("local.sagemaker."):
                out.add(node.module.split(".")[2])
            elif node.level == 1 and node.module in MODULES:
                out.add(node.module)
    return out - {path.stem}


def graph() -> dict[str, set[str]]:
    return {m: _sagemaker_imports(PACKAGE / f"{m}.py") for m in MODULES}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary circle found by a depth-first walk (one per back edge)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the walk's path, 2 = done

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                walk(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            walk(start, [start])
    return found


def test_cycle_finder_sees_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_in_the_emulator():
    edges = graph()
    assert edges.get("backend"), "the graph must see the backend's imports"
    assert cycles(edges) == []


def test_each_module_imports_alone():
    """One fresh interpreter imports each module first, with none of the package loaded before it (third-party
    libraries stay cached, so this costs one interpreter start, not one per module)."""
    code = (
        "import importlib, sys\n"
        f"for m in {MODULES!r}:\n"
        "    for k in [k for k in sys.modules if k == 'local.sagemaker' or k.startswith('local.sagemaker.')]:\n"
        "        del sys.modules[k]\n"
        "    importlib.import_module('local.sagemaker.' + m)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
