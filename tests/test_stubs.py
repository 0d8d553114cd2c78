"""`_native.pyi` says what the native module holds: the same names, methods and
parameters (a stub check in the test command, without mypy's stubtest)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import namelang
from namelang import _native

STUB = Path(namelang.__file__).parent / "_native.pyi"


def stub_tree() -> dict[str, ast.AST]:
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    out: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
    return out


def parameters(node: ast.FunctionDef) -> list[str]:
    args = node.args
    return [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs] if a.arg != "self"]


def native_parameters(obj) -> list[str] | None:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    return [p for p in sig.parameters if p not in ("self", "$self", "cls")]


def test_the_stub_names_what_the_module_holds():
    stub = stub_tree()
    native = {n for n in dir(_native) if not n.startswith("__") or n == "__version__"}
    assert native == set(stub), (
        f"in the module only: {sorted(native - set(stub))}; "
        f"in the stub only: {sorted(set(stub) - native)}"
    )


def test_the_stub_gives_each_function_and_method_its_parameters():
    checked = 0
    for name, node in stub_tree().items():
        obj = getattr(_native, name)
        if isinstance(node, ast.FunctionDef):
            assert native_parameters(obj) == parameters(node), name
            checked += 1
        elif isinstance(node, ast.ClassDef):
            members = {m.name: m for m in node.body if isinstance(m, ast.FunctionDef)}
            public = {m for m in dir(obj) if not m.startswith("_")}
            assert public == {m for m in members if not m.startswith("_")}, name
            for method, m in members.items():
                target = obj if method == "__init__" else getattr(obj, method)
                if isinstance(target, property) or inspect.isgetsetdescriptor(target):
                    continue
                found = native_parameters(target)
                if found is not None:
                    assert found == parameters(m), f"{name}.{method}"
                    checked += 1
    assert checked >= 15
