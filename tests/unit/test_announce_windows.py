"""The announcer's rate-limit windows (exporter/actions/announce.py) on their own: no webhook is reached."""

from __future__ import annotations

import threading

import pytest

from exporter.actions import announce
from exporter.config import NotificationTarget
from exporter.secret import Secret


def test_a_summary_dropped_by_a_full_queue_does_not_hang_the_announcer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A window's summary is queued under the announcer's lock; a full queue counts the drop under the
    same lock. Before the fix (a plain Lock) that was a deadlock: every later decision hung with it."""
    monkeypatch.setattr(announce, "QUEUE_SIZE", 0)  # every event that may be dropped is dropped
    announcer = announce.Announcer((NotificationTarget("chat", Secret("http://127.0.0.1:9/hook")),), None)
    record = {"outcome": "pending", "caller": "flood", "plan": "ACME", "request_id": "r"}

    seen: list[dict[tuple[str, str], int]] = []

    def flood() -> None:
        for _ in range(announce.EVENTS_PER_WINDOW + 3):  # five told (and dropped), three held
            announcer.announce(record)
        monkeypatch.setattr(announce, "WINDOW_SECONDS", 0.0)  # the window is over: its summary goes
        announcer.announce(record)
        seen.append(announcer.stats())
        announcer.close()

    worker = threading.Thread(target=flood, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "the announcer hung queueing a summary"
    stats = seen[0]  # before the shutdown (which counts what its own queue still held)
    assert stats[("chat", "coalesced")] == 3
    # the five told, the summary of the three held, the event after the window: all dropped, counted
    assert stats[("chat", "dropped")] == announce.EVENTS_PER_WINDOW + 2
