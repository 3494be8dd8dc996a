"""Every file made from the monitoring source, and how: generate writes them, check compares."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from monitoring import chart, mixin
from monitoring.dashboards import DASHBOARDS, dashboard_json
from monitoring.rules import rules_yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "veeam-failover-exporter"

# a path -> its text, made from the file's current text (for the files only partly generated)
Make = Callable[[str], str]


def outputs() -> dict[Path, Make]:
    out: dict[Path, Make] = {
        ROOT / "alerts" / "veeam-failover.rules.yml": lambda _: rules_yaml(),
        ROOT / "alerts" / "veeam-failover.rules.tmpl": lambda _: chart.rules_template(),
        CHART / "values.yaml": chart.values,
        CHART / "values.schema.json": chart.schema,
    }
    for name in DASHBOARDS:
        out[ROOT / "dashboards" / name] = lambda _, name=name: dashboard_json(name)  # type: ignore[misc]
    for name, text in mixin.files().items():
        out[ROOT / "mixin" / name] = lambda _, text=text: text  # type: ignore[misc]
    return out


def stale() -> list[Path]:
    """The generated files that are not what the source makes."""
    found = []
    for path, make in outputs().items():
        current = path.read_text() if path.is_file() else ""
        if not path.is_file() or make(current) != current:
            found.append(path)
    return found


def generate() -> list[Path]:
    """Writes every generated file; returns those that changed."""
    changed = []
    for path, make in outputs().items():
        current = path.read_text() if path.is_file() else ""
        wanted = make(current)
        if wanted != current:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(wanted)
            changed.append(path)
    return changed


def strays() -> list[Path]:
    """Files in mixin/ that nothing generates (a renamed dashboard's old file)."""
    made = set(outputs())
    return [p for p in (ROOT / "mixin").rglob("*") if p.is_file() and p not in made]
