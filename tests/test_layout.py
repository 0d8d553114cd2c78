"""The package's shape: no module imports one that imports it back (counting imports
inside functions), and the model's torch modules and its file format meet only in the
torch-free spec."""

from __future__ import annotations

import ast
from pathlib import Path

import namelang

PACKAGE = Path(namelang.__file__).parent


def imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        name = path.stem
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "namelang":
                    found.update(a.name for a in node.names)
                elif node.module.startswith("namelang."):
                    found.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                found.update(
                    a.name.split(".")[1] for a in node.names if a.name.startswith("namelang.")
                )
        graph[name] = {m for m in found if (PACKAGE / f"{m}.py").exists()} - {name}
    return graph


def test_no_import_circle():
    graph = imports()

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    circles = sorted(m for m in graph if reaches(m, m, {m}))
    assert not circles, {m: sorted(graph[m]) for m in circles}


def test_model_and_model_file_share_only_the_spec():
    graph = imports()
    assert "model_file" not in graph["model"] and "model" not in graph["model_file"]
    assert "spec" in graph["model"] and "spec" in graph["model_file"]
    assert "train" not in graph["classifier"]
