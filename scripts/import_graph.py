"""The exporter package's import graph: cycles, and its depth (the longest chain of runtime imports).

Run `python scripts/import_graph.py`; `--check N` exits 1 if there is a cycle or the depth exceeds N.
A cycle counts every kind of import: at the top, inside a function, under `if TYPE_CHECKING:` (that one
never runs, but two modules that name each other's types are still one knot to a reader). The depth
counts only imports that run.
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "exporter"


def modules() -> dict[str, Path]:
    out = {}
    for path in (ROOT / PACKAGE).rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in ast.walk(node):
                if hasattr(child, "lineno"):
                    lines.add(child.lineno)
    return lines


def imports(name: str, path: Path, known: dict[str, Path], *, typing_too: bool = False) -> set[str]:
    tree = ast.parse(path.read_text())
    skip = set() if typing_too else _type_checking_lines(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import submodule` needs the submodule, not what the package itself imports
            subs = [f"{node.module}.{a.name}" for a in node.names]
            targets = [t for t in subs if t in known] or [node.module]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name and t.startswith(PACKAGE + "."):
                found.add(t)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each knot of the graph (a depth-first search's back edges)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                found.append([*path[path.index(n) :], n])
            elif n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return found


def main() -> int:
    known = modules()
    graph = {m: imports(m, p, known) for m, p in known.items()}
    knots = cycles({m: imports(m, p, known, typing_too=True) for m, p in known.items()})
    print(f"modules: {len(known)}; cycles: {len(knots)}")
    for knot in knots:
        print("cycle: " + " -> ".join(knot))
    if knots:  # no depth to speak of
        return 1 if "--check" in sys.argv else 0

    @cache
    def depth(m: str) -> int:
        return 1 + max((depth(n) for n in graph[m]), default=0)

    deepest = max(known, key=depth)
    chain = [deepest]
    while graph[chain[-1]]:
        chain.append(max(graph[chain[-1]], key=depth))
    print(f"depth: {depth(deepest)}; deepest chain: " + " -> ".join(chain))
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        return 1 if depth(deepest) > int(sys.argv[2]) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
