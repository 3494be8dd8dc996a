"""The audit log on its own: a decision per line, replayed as the guards' state; a torn line is ended."""

from __future__ import annotations

from pathlib import Path

from exporter.actions.audit import AuditLog
from exporter.actions.audit_state import AuditState
from exporter.actions.journal import Journal


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
