"""The only writer of the audit log: every decision, and every note about what followed it, becomes one
line on disk, folded into the guards' state, counted for the metrics, and logged.

When the disk refuses a record (full, failing), what it says still counts in memory, the plan it names
is held (no start) until it is on disk, and it is written before anything else once the disk takes it
again. Only the `starting` line, written before EM is called, is allowed to fail the request: a start
whose durable record cannot be made is refused before EM hears of it (`write_before_em`)."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

from exporter.actions.audit import AuditLog, AuditWriteError
from exporter.actions.audit_state import AuditState
from exporter.actions.model import Attempt, Decision, Outcome
from exporter.polling.snapshot import Store

log = logging.getLogger(__name__)


# Records of what happened once EM was asked to start a plan: held in memory when the disk refuses them.
AFTER_EM = frozenset(
    {
        "starting",
        "accepted",
        "em_unknown",
        "task_finished",
        "task_failed",
        "task_done_uncollected",
        "task_uncollected",
        "task_timeout",
        "task_lost",
    }
)


class Recorder:
    def __init__(
        self, audit_log: str | None, dry_run: bool, store: Store, rotate_bytes: int = 64 * 1024 * 1024
    ) -> None:
        self.rotate_bytes = rotate_bytes  # past this size the log starts anew, with the state it needs
        self._audit = AuditLog(audit_log)
        self._dry_run = dry_run  # the global switch, recorded with every decision
        self._store = store
        self._lock = threading.Lock()
        self.state: AuditState = self._audit.load()
        if self._audit.skipped_on_load:
            log.warning(
                "audit log: skipped %d unreadable line(s) (cut short by a crash?)",
                self._audit.skipped_on_load,
            )
        self.requests: Counter[tuple[str, str, str]] = Counter()  # (plan, source, outcome)
        self.write_errors = 0  # records the disk refused (each counted once, however often retried)
        self._unauthenticated_logged = -1e9
        self._unauthenticated_since_log = 0
        self._unwritten: list[dict[str, Any]] = []

    def unauthenticated(self, attempt: Attempt, reason: str) -> Decision:
        """A request without a valid token: counted and logged (once a minute at most), never written
        to the audit log one fsync each: anyone can send them, as fast as they like."""
        decision = Decision(request_id=attempt.request_id, outcome="unauthorized", status=401, reason=reason)
        now = time.monotonic()
        with self._lock:
            self.requests[("", attempt.request.source, "unauthorized")] += 1
            self._unauthenticated_since_log += 1
            due = now - self._unauthenticated_logged >= 60
            if due:
                self._unauthenticated_logged = now
                count, self._unauthenticated_since_log = self._unauthenticated_since_log, 0
        self._store.publish()
        if due:
            log.warning(
                "%d start request(s) without a valid token in the last minute (latest from %s)",
                count,
                attempt.request.remote,
            )
        return decision

    def decide(
        self,
        attempt: Attempt,
        outcome: Outcome,
        status: int,
        reason: str,
        *,
        em_task_id: str | None = None,
        extra: dict[str, Any] | None = None,
        audit_outcome: str | None = None,
    ) -> Decision:
        """The answer to a request: on disk first, then counted, logged, and returned."""
        plan = attempt.plan
        decision = Decision(
            request_id=attempt.request_id,
            outcome=outcome,
            status=status,
            reason=reason,
            plan=None if plan is None else plan.name,
            plan_id=None if plan is None else plan.id,
            em_task_id=em_task_id,
        )
        self.write(attempt, audit_outcome or outcome, status, reason, em_task_id=em_task_id, extra=extra)
        with self._lock:
            self.requests[(decision.plan or "", attempt.request.source, outcome)] += 1
        self._store.publish()  # new counts: the next scrape renders afresh
        log.info(
            "start request %s: %s %s (%s) plan=%s caller=%s source=%s",
            attempt.request_id,
            outcome,
            status,
            reason,
            decision.plan or attempt.request.plan_ref[:100],
            None if attempt.caller is None else attempt.caller.name,
            attempt.request.source,
        )
        return decision

    def write(
        self,
        attempt: Attempt,
        outcome: str,
        status: int,
        reason: str,
        *,
        em_task_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.note(self._record(attempt, outcome, status, reason, em_task_id, extra))

    def _record(
        self,
        attempt: Attempt,
        outcome: str,
        status: int,
        reason: str,
        em_task_id: str | None,
        extra: dict[str, Any] | None,
    ) -> dict[str, Any]:
        req, plan = attempt.request, attempt.plan
        return {
            "request_id": attempt.request_id,
            "source": req.source,
            "caller": None if attempt.caller is None else attempt.caller.name,
            "remote": req.remote,
            "plan_ref": req.plan_ref[:200],
            "plan": None if plan is None else plan.name,
            "plan_id": None if plan is None else plan.id,
            "alert_fingerprint": req.alert_fingerprint,
            "idempotency_key": req.idempotency_key,
            "dry_run": req.dry_run or self._dry_run,
            "reason_given": req.reason[:500] or None,
            "outcome": outcome,
            "status": status,
            "reason": reason,
            "em_task_id": em_task_id,
            **(extra or {}),
        }

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

    def write_before_em(self, attempt: Attempt, reason: str, extra: dict[str, Any]) -> None:
        """The `starting` line, on disk before EM is asked; AuditWriteError if it cannot be."""
        record = self._record(attempt, "starting", 0, reason, None, extra)
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

    def recent(self, n: int, caller: str | None = None) -> list[dict[str, Any]]:
        return self._audit.latest(n, caller)

    def stats(self) -> dict[tuple[str, str, str], int]:
        with self._lock:
            return dict(self.requests)

    def last_starts(self) -> dict[str, float]:
        with self._lock:
            return dict(self.state.last_start)

    def close(self) -> None:
        self._audit.close()
