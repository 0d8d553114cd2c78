"""The package's shape: no module imports one that imports it back (counting imports
inside functions), and the model's torch modules and its file format meet only in the
torch-free spec."""

from __future__ import annotations

import ast
import re
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


# Small functions, small files: a function longer than a screen does more than one thing.
MAX_FUNCTION_LINES = 60
MAX_RUST_FILE_LINES = 700  # before the file's tests
RUST = PACKAGE.parent.parent / "rust"


def test_python_functions_fit_a_screen():
    long = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long


def rust_code(text: str) -> str:
    """The text with string and char literals and comments emptied, lines kept, so that
    braces count blocks."""
    literal = re.compile(
        r'r(#*)"[\s\S]*?"\1|b?"(?:\\[\s\S]|[^"\\])*"|b?\'(?:\\.|[^\'\\])\'|//[^\n]*'
    )
    return literal.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def rust_functions(text: str) -> list[tuple[str, int, int]]:
    """(name, first line, lines) of every fn with a body."""
    lines = rust_code(text).split("\n")
    found = []
    for i, line in enumerate(lines):
        head = re.match(r"\s*(?:pub(?:\([a-z]+\))? )?(?:const )?(?:unsafe )?fn (\w+)", line)
        if not head:
            continue
        depth, opened = 0, False
        for j in range(i, len(lines)):
            if not opened and ";" in lines[j] and "{" not in lines[j]:
                break  # a declaration without a body
            depth += lines[j].count("{") - lines[j].count("}")
            opened |= "{" in lines[j]
            if opened and depth <= 0:
                found.append((head.group(1), i + 1, j - i + 1))
                break
    return found


def test_rust_functions_fit_a_screen_and_files_stay_small():
    problems = []
    for path in sorted(RUST.rglob("*.rs")):
        text = path.read_text(encoding="utf-8")
        before_tests = text.split("#[cfg(test)]")[0].count("\n")
        if before_tests > MAX_RUST_FILE_LINES:
            problems.append(f"{path.name}: {before_tests} lines before its tests")
        for name, line, lines in rust_functions(text):
            if lines > MAX_FUNCTION_LINES:
                problems.append(f"{path.name}:{line} {name} ({lines} lines)")
    assert not problems, problems


def test_the_rust_measure_counts_blocks_not_braces_in_strings():
    text = "fn a() {\n    let s = \"}}\";\n    let c = '{';\n    // }\n}\nfn b() {}\n"
    assert rust_functions(text) == [("a", 1, 5), ("b", 6, 1)]
