"""The audit log kept durable: each record on disk and folded into the guards' state, and what the disk
refuses held in memory (counted, its plan blocked) until it takes it again; rotation past a size.

When the disk refuses a record (full, failing), what it says still counts in memory, the plan it names
is held (no start) until it is on disk, and it is written before anything else once the disk takes it
again. Only the `starting` line, written before EM is called, and a runtime switch may fail their request: a
start whose durable record cannot be made is refused before EM hears of it (`write_now`)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from exporter.actions.audit.log import AuditLog, AuditWriteError
from exporter.actions.audit.state import AuditState
from exporter.actions.model import AFTER_EM
from exporter.em.errors import ParseError

log = logging.getLogger(__name__)


class Journal:
    def __init__(self, audit_log: str | None, rotate_bytes: int) -> None:
        self.rotate_bytes = rotate_bytes  # past this size the log starts anew, with the state it needs
        self._audit = AuditLog(audit_log)
        self._lock = threading.Lock()
        self.state: AuditState = self._replay()
        if self._audit.skipped_on_load:
            log.warning(
                "audit log: skipped %d unreadable line(s) (cut short by a crash?)",
                self._audit.skipped_on_load,
            )
        self.write_errors = 0  # records the disk refused (each counted once, however often retried)
        self._unwritten: list[dict[str, Any]] = []

    def note(self, record: dict[str, Any]) -> None:
        """A line that is no answer to a request: an alert that starts nothing, how EM's task went.
        If the disk refuses it, it counts in memory, its plan is held, and it is written later."""
        with self._lock:
            self._flush_locked()
            try:
                written = self._audit.write(record)
            except AuditWriteError as exc:
                self._hold_locked(record, exc)
                return
            self.state.apply(written)
            if self._audit.size() > self.rotate_bytes and not self._unwritten:
                self._audit.rotate(self.state.snapshot())

    def write_now(self, record: dict[str, Any]) -> None:
        """On disk now, or AuditWriteError: the `starting` line before EM is asked, a runtime switch
        before it is said to be set."""
        with self._lock:
            self._flush_locked()
            if self._unwritten:
                raise AuditWriteError("earlier records are not on disk yet")
            try:
                written = self._audit.write(record)
            except AuditWriteError:
                self.write_errors += 1
                raise
            self.state.apply(written)

    def _flush_locked(self) -> None:
        while self._unwritten:
            try:
                self._audit.write(self._unwritten[0])
            except AuditWriteError:
                return
            done = self._unwritten.pop(0)
            if not any(r.get("plan_id") == done.get("plan_id") for r in self._unwritten):
                self.state.unwritten_plans.discard(str(done.get("plan_id")))
            log.info("audit log: a held record is now on disk (%s)", done.get("outcome"))

    def _hold_locked(self, record: dict[str, Any], exc: AuditWriteError) -> None:
        self.write_errors += 1
        self.state.apply(record)  # it happened: the guards must know it now
        if record.get("outcome") not in AFTER_EM:
            # a refusal or a dry run: nothing started, nothing to hold (the answer still goes out)
            log.error("%s; a %s decision is not on record", exc, record.get("outcome"))
            return
        self._unwritten.append(record)
        if isinstance(record.get("plan_id"), str):
            self.state.unwritten_plans.add(record["plan_id"])
        log.error("%s; the decision is held in memory and its plan blocked until it is on disk", exc)

    def _replay(self) -> AuditState:
        """The guards' state, rebuilt from the log, record by record, as live operation builds it."""
        state = AuditState()
        audit = self._audit
        for record in audit.read():
            audit.recent.append(record)
            if record.get("torn") and not record.get("plan_id") and audit.path is not None:
                state.torn_start_at = audit.path.stat().st_mtime
            try:
                state.apply(record)
            except ParseError:
                audit.skipped_on_load += 1
        state.finish_replay()
        return state

    def prune_keys(self, now: float, window: float) -> None:
        with self._lock:
            self.state.prune_keys(now, window)

    @property
    def skipped_on_load(self) -> int:
        return self._audit.skipped_on_load

    def recent(self, n: int, caller: str | None = None) -> list[dict[str, Any]]:
        return self._audit.latest(n, caller)

    def last_starts(self) -> dict[str, float]:
        with self._lock:
            return dict(self.state.last_start)

    def close(self) -> None:
        self._audit.close()
