"""Markers by room: tests/unit (no I/O beyond files), tests/loopback (real HTTP over loopback to the
simulator and the exporter), tests/e2e (real Prometheus, Alertmanager, Helm, Chromium, subprocesses,
the soak); and `fuzz` on the property-based tests. `scripts/test -m "not e2e and not fuzz"` is the fast
loop."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOMS = ("unit", "loopback", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        room = Path(str(item.fspath)).parent.name
        if room in ROOMS:
            item.add_marker(getattr(pytest.mark, room))
