"""The house's size rules, held by a test: no module of the package over 300 lines (but the simulator's
renderers: one EM document shape after another), no class over 150."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "exporter"
MAX_MODULE_LINES = 300
MAX_CLASS_LINES = 150
RENDERERS = {PACKAGE / "simulator" / "render.py"}


def test_no_module_over_300_lines() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if p not in RENDERERS and (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_class_over_150_lines() -> None:
    long = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_CLASS_LINES:
                    long[f"{path.relative_to(PACKAGE)}:{node.name}"] = lines
    assert long == {}


def test_the_readme_stays_short() -> None:
    """The README is the first screen: under 10,000 characters; the rest is in docs/."""
    assert len((PACKAGE.parent / "README.md").read_text()) < 10_000
