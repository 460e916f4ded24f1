"""genred's import graph, from the source (every import, at module level or in a function).

    python tools/import_graph.py          # modules, edges, and any import cycle

Prints the cycles (strongly connected groups of modules that import each other) and
exits 1 when there is one. `tests/test_architecture.py` runs the same checks.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"genred": ROOT / "daemon", "genred_plugins": ROOT / "plugins"}


def modules() -> dict[str, Path]:
    """Every module of genred and genred_plugins by dotted name."""
    found = {}
    for package, folder in PACKAGES.items():
        for file in sorted(folder.rglob("*.py")):
            parts = [package, *file.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = file
    return found


def _imports(name: str, file: Path) -> Iterator[str]:
    is_package = file.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                yield f"{target}.{alias.name}"  # a submodule, or a name in `target`
            yield target


def graph() -> dict[str, set[str]]:
    """module → the genred modules it imports."""
    known = modules()
    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, file in known.items():
        for target in _imports(name, file):
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                edges[name].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Groups of two or more modules that import each other (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(10000)
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def main() -> int:
    edges = graph()
    groups = cycles(edges)
    print(f"{len(edges)} modules, {sum(len(v) for v in edges.values())} imports between them")
    for group in groups:
        print("cycle: " + " ↔ ".join(group))
    if not groups:
        print("no import cycles")
    return 1 if groups else 0


if __name__ == "__main__":
    sys.exit(main())
