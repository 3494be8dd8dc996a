"""The only writer of the audit log: every decision, and every note about what followed it, becomes one
line on disk, folded into the guards' state, counted for the metrics, and logged."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

from exporter.actions.audit import AuditLog, AuditState
from exporter.actions.model import Attempt, Decision, Outcome
from exporter.polling.snapshot import Store

log = logging.getLogger(__name__)


class Recorder:
    def __init__(self, audit_log: str | None, dry_run: bool, store: Store) -> None:
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
        req, plan = attempt.request, attempt.plan
        self.note(
            {
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
        )

    def note(self, record: dict[str, Any]) -> None:
        """A line that is no answer to a request: an alert that starts nothing, how EM's task went."""
        written = self._audit.write(record)
        with self._lock:
            self.state.apply(written)

    def recent(self, n: int) -> list[dict[str, Any]]:
        return self._audit.latest(n)

    def stats(self) -> dict[tuple[str, str, str], int]:
        with self._lock:
            return dict(self.requests)

    def last_starts(self) -> dict[str, float]:
        with self._lock:
            return dict(self.state.last_start)

    def close(self) -> None:
        self._audit.close()
