"""The only writer of the audit log: every decision, and every note about what followed it, becomes one
record (through the journal, which keeps it durable), counted for the metrics, and logged."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from exporter.actions.announce import Announcer
from exporter.actions.audit.journal import Journal
from exporter.actions.audit.log import AuditWriteError
from exporter.actions.audit.records import PendingDecision, decision_record, ignored_record, verdict_record
from exporter.actions.model import Attempt, Decision, Outcome, StartRequest
from exporter.config import Caller
from exporter.polling.snapshot import Store

log = logging.getLogger(__name__)


class Recorder:
    def __init__(
        self,
        audit_log: str | None,
        dry_run: Callable[[], bool],
        store: Store,
        rotate_bytes: int = 64 * 1024 * 1024,
        announcer: Announcer | None = None,
    ) -> None:
        self.journal = Journal(audit_log, rotate_bytes)
        self._dry_run = dry_run  # the global switch as it holds now, recorded with every decision
        self._store = store
        self._announcer = announcer or Announcer((), None)
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str, str]] = Counter()  # (plan, source, outcome)
        self.verdicts: Counter[tuple[str, str]] = Counter()  # (plan, verdict) of pending decisions
        self._unauthenticated_logged = -1e9
        self._unauthenticated_since_log = 0

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
        durable: bool = False,
    ) -> Decision:
        """The answer to a request: on disk first, then counted, logged, and returned. `durable`: an
        answer that must not be given unless it is on disk (a pending decision): else 503 audit_error."""
        if durable:
            record = decision_record(attempt, outcome, status, reason, em_task_id, extra, self._dry_run())
            try:
                self.journal.write_now(record)
            except AuditWriteError as exc:
                why = f"{exc}: a decision must be on record before it is answered; nothing was done"
                return self.decide(attempt, "audit_error", 503, why)
            self._announcer.announce(record)
            return self._answered(attempt, outcome, status, reason, em_task_id)
        self.write(attempt, audit_outcome or outcome, status, reason, em_task_id=em_task_id, extra=extra)
        return self._answered(attempt, outcome, status, reason, em_task_id)

    def _answered(
        self, attempt: Attempt, outcome: Outcome, status: int, reason: str, em_task_id: str | None
    ) -> Decision:
        """Counted, logged, returned: the record is written."""
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
        with self._lock:
            self.requests[(decision.plan or "", attempt.request.source, outcome)] += 1
            if outcome == "pending":
                self.verdicts[(decision.plan or "", "pending")] += 1
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
        self.note(decision_record(attempt, outcome, status, reason, em_task_id, extra, self._dry_run()))

    def note(self, record: dict[str, Any]) -> None:
        """Any record: through the journal to disk, then announced if it is an event that matters."""
        self.journal.note(record)
        self._announcer.announce(record)

    def verdict(self, decision: PendingDecision, verdict: str, by: str | None, reason: str) -> None:
        """What became of a pending decision: approved, rejected or expired; on disk before it holds
        (else AuditWriteError, and the decision still waits), then counted."""
        closing = verdict_record(decision, verdict, by, reason)
        self.journal.write_now(closing)
        self._announcer.announce(closing)
        with self._lock:
            self.verdicts[(decision.plan, verdict)] += 1
        self._store.publish()
        log.info("decision %s: %s by %s (%s)", decision.request_id, verdict, by or "nobody", reason)

    def ignored(self, request: StartRequest, caller: Caller, reason: str) -> None:
        """An alert that starts nothing (resolved, or naming no plan): on the log, nothing decided."""
        self.note(ignored_record(request, caller, reason))

    def set_switches(self, record: dict[str, Any]) -> None:
        """A runtime switch: on disk before it is said to be set (AuditWriteError if it cannot be)."""
        self.journal.write_now(record)
        self._announcer.announce(record)
        self._store.publish()

    def write_before_em(self, attempt: Attempt, reason: str, extra: dict[str, Any]) -> None:
        """The `starting` line, on disk before EM is asked; AuditWriteError if it cannot be."""
        self.journal.write_now(decision_record(attempt, "starting", 0, reason, None, extra, self._dry_run()))

    def stats(self) -> dict[tuple[str, str, str], int]:
        with self._lock:
            return dict(self.requests)

    def verdict_stats(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self.verdicts)
