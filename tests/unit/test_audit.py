"""The audit log on its own: a decision per line, replayed as the guards' state; a torn line is ended."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.actions.audit import state as audit_state
from exporter.actions.audit.journal import Journal
from exporter.actions.audit.log import AuditLog
from exporter.actions.audit.state import AuditState
from tests.helpers import utc


def replay(path: Path) -> AuditState:
    journal = Journal(str(path), 1 << 30)
    journal.close()
    return journal.state


def test_replay_rebuilds_keys_and_starts(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(str(path))
    log.write({"request_id": "r1", "outcome": "starting", "plan_id": "p1", "idempotency_key": "k1"})
    log.write({"request_id": "r1", "outcome": "accepted", "plan_id": "p1", "idempotency_key": "k1"})
    log.write({"request_id": "r2", "outcome": "em_error", "plan_id": "p2", "idempotency_key": "k2"})
    log.close()
    state = replay(path)
    assert set(state.used_keys) == {"k1"}  # an EM error frees its key: nothing started
    assert set(state.last_start) == {"p1"}


def test_a_starting_line_without_outcome_counts_as_started(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(str(path))
    log.write({"request_id": "r1", "outcome": "starting", "plan_id": "p1", "idempotency_key": "k1"})
    log.close()
    state = replay(path)
    assert "p1" in state.last_start and "k1" in state.used_keys


def test_a_torn_last_line_is_ended_and_skipped_and_the_next_record_survives(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(str(path))
    log.write({"request_id": "r1", "outcome": "accepted", "plan_id": "p1"})
    log.close()
    with path.open("ab") as f:
        f.write(b'{"request_id": "r2", "outcome": "acc')  # a crash mid-write
    log = AuditLog(str(path))
    log.write({"request_id": "r3", "outcome": "accepted", "plan_id": "p3"})
    log.close()
    again = Journal(str(path), 1 << 30)
    state = again.state
    assert again.skipped_on_load == 1
    assert set(state.last_start) == {"p1", "p3"}


def test_keys_of_decisions_that_started_nothing_are_forgotten_after_their_window() -> None:
    state = AuditState()
    old, new = "2026-12-01T00:00:00.000Z", "2026-12-03T00:00:00.000Z"
    state.apply(
        {"request_id": "r1", "outcome": "pending", "plan_id": "p", "idempotency_key": "k1", "time": old}
    )
    state.apply({"request_id": "r1", "outcome": "rejected", "plan_id": "p"})
    state.apply(
        {"request_id": "r2", "outcome": "pending", "plan_id": "q", "idempotency_key": "k2", "time": old}
    )
    state.apply(
        {"request_id": "r3", "outcome": "starting", "plan_id": "s", "idempotency_key": "k3", "time": old}
    )
    state.apply(
        {"request_id": "r3", "outcome": "accepted", "plan_id": "s", "idempotency_key": "k3", "time": old}
    )
    state.apply(
        {"request_id": "r4", "outcome": "pending", "plan_id": "t", "idempotency_key": "k4", "time": new}
    )
    state.apply({"request_id": "r4", "outcome": "expired", "plan_id": "t"})
    state.prune_keys(utc("2026-12-03T01:00:00Z"), 86400)
    # k1: closed, old: gone; k2: still waiting; k3: a start, never forgotten; k4: closed but young
    assert set(state.used_keys) == {"k2", "k3", "k4"}
    assert set(state.used_keys["k3"]) <= {
        "request_id",
        "plan_id",
        "em_task_id",
        "time",
        "outcome",
        "backup_server",
    }


def test_closed_keys_are_capped_whatever_their_age(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_state, "MAX_CLOSED_KEYS", 50)
    state = AuditState()
    for i in range(300):  # a request/withdraw flood
        state.apply({"request_id": f"r{i}", "outcome": "pending", "plan_id": "p", "idempotency_key": f"k{i}"})
        state.apply({"request_id": f"r{i}", "outcome": "rejected", "plan_id": "p"})
    assert len(state.used_keys) <= 55 and "k299" in state.used_keys and "k0" not in state.used_keys
