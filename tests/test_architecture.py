"""The package's imports point one way: no module imports another that (through others) imports it back, no
module takes another's private name, and ``config``, the base, imports none of the package."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "textclf_utils"


def package_imports(source: str) -> list[tuple[str, str]]:
    """``(module, name)`` for every import of the package in ``source`` (module level and inside functions):
    ``from .data import x`` gives ("data", "x"), ``from . import pooling`` gives ("pooling", "")."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            inside = node.level == 1 or (node.module or "").split(".")[0] == "textclf_utils"
            if not inside:
                continue
            module = (node.module or "").removeprefix("textclf_utils").lstrip(".")
            for alias in node.names:
                found.append((module.split(".")[0], alias.name) if module else (alias.name, ""))
        elif isinstance(node, ast.Import):
            found += [(alias.name.split(".")[1], "") for alias in node.names
                      if alias.name.startswith("textclf_utils.")]
    return found


def import_graph() -> dict[str, set[str]]:
    return {path.stem: {module for module, _ in package_imports(path.read_text())}
            for path in sorted(PACKAGE.glob("*.py"))}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, each once, as the list of modules along it."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert set(graph) >= {"config", "checks", "data", "training", "notebook"}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_another_modules_private_name():
    private = [(path.stem, module, name) for path in sorted(PACKAGE.glob("*.py"))
               for module, name in package_imports(path.read_text()) if name.startswith("_")]
    assert private == []


def test_config_is_the_base_and_imports_nothing_of_the_package():
    assert import_graph()["config"] == set()
    for base in ("pooling", "model_card", "attention", "results"):
        assert import_graph()[base] <= {"config"}, base


def test_imports_inside_functions_count_too():
    source = "def f():\n    from .gpu_plan import t4_estimate_line\n    from textclf_utils.data import _x\n"
    assert package_imports(source) == [("gpu_plan", "t4_estimate_line"), ("data", "_x")]
