"""The package's import graph: no cycles, LLDB and ipykernel each in one module, dependencies pointing one way."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "swift_kernel"
# kernel → cells → host (transport) → lldb_session → lldb: a lower floor never imports an upper one.
FLOORS = ["kernel", "cells", "host", "lldb_session"]


def imports_of(path: Path) -> set[str]:
    """Return the modules ``path`` imports: package modules by their short name, others in full."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            inside = module.removeprefix("swift_kernel").lstrip(".") if module.startswith("swift_kernel") else module
            if not node.level and not module.startswith("swift_kernel"):
                found.add(module)
            elif inside:  # from .cells import X, from swift_kernel.cells import X
                found.add(f"swift_kernel.{inside.split('.')[0]}")
            else:  # from . import diagnostics, from swift_kernel import kernel
                found.update(f"swift_kernel.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    modules = {path.stem: path for path in PACKAGE.glob("*.py")}
    return {
        name: {dep.removeprefix("swift_kernel.") for dep in imports_of(path) if dep.startswith("swift_kernel.")}
        & set(modules)
        for name, path in modules.items()
    }


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """Return one import cycle as a path of module names, or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle() -> None:
    edges = graph()
    assert set(FLOORS) <= set(edges), sorted(edges)
    assert find_cycle(edges) is None, " -> ".join(find_cycle(edges) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_floors_point_down_only() -> None:
    edges = graph()
    for upper_index, module in enumerate(FLOORS):
        above = set(FLOORS[:upper_index])
        assert not edges[module] & above, f"{module} imports {edges[module] & above}, a floor above it"
    # Each floor uses the one below it.
    for upper, lower in itertools.pairwise(FLOORS):
        assert lower in edges[upper], f"{upper} does not import {lower}"


@pytest.mark.parametrize(
    ("library", "owners"),
    # __main__ launches the kernel application through kernel (SwiftKernelApp).
    [("lldb", ["lldb_session"]), ("ipykernel", ["kernel"])],
)
def test_one_module_imports_each_heavy_library(library: str, owners: list[str]) -> None:
    importers = sorted(
        path.stem
        for path in PACKAGE.glob("*.py")
        if any(name == library or name.startswith(f"{library}.") for name in imports_of(path))
    )
    assert importers == owners
