"""Approval mode's pending decisions: opened when a start passed every guard, looked up, closed by a
verdict (approved, rejected, expired), all on the audit log first. A decision nobody answers expires
after actions.approval_timeout_seconds: nothing starts."""

from __future__ import annotations

import logging
import time
from typing import Any

from exporter.actions.audit.log import AuditWriteError
from exporter.actions.audit.recorder import Recorder
from exporter.actions.audit.records import PendingDecision, iso, pending_fields
from exporter.actions.locks import StartLocks
from exporter.actions.model import Attempt, Decision
from exporter.background_loop import BackgroundLoop
from exporter.config import ActionSettings

log = logging.getLogger(__name__)

EXPIRY_CHECK_SECONDS = 1.0
PRUNE_EVERY_SECONDS = 60.0


class PendingDecisions:
    def __init__(self, settings: ActionSettings, recorder: Recorder, locks: StartLocks) -> None:
        self._settings = settings
        self._recorder = recorder
        self._locks = locks
        self._pruned_at = 0.0
        self._unrecorded_expiry: set[str] = set()
        self._loop = BackgroundLoop("decision-expiry", self.expire_due, lambda: EXPIRY_CHECK_SECONDS)
        self._loop.start()

    def open(self, attempt: Attempt, spec: dict[str, Any]) -> Decision:
        """The pending decision: every check passed; it waits for an approver (on disk, or 503)."""
        expires = time.time() + self._settings.approval_timeout_seconds
        extra = pending_fields(attempt.request, spec, expires)
        caller = "" if attempt.caller is None else attempt.caller.name
        why = f"waits for approval by an approver other than {caller!r} until {iso(expires)}"
        return self._recorder.decide(attempt, "pending", 202, why, extra=extra, durable=True)

    def get(self, decision_id: str) -> PendingDecision | None:
        return self._recorder.journal.state.decisions.get(decision_id)

    def waiting(self) -> list[PendingDecision]:
        """Every pending decision, oldest first."""
        return sorted(self._recorder.journal.state.decisions.values(), key=lambda d: d.asked_at or 0.0)

    def close(self, decision: PendingDecision, verdict: str, by: str | None, reason: str) -> None:
        """On disk, or AuditWriteError and the decision still waits."""
        self._recorder.verdict(decision, verdict, by, reason)

    def expire_due(self) -> bool:
        """Every pending decision past its expiry: closed as expired, nothing started; and the keys of
        closed decisions past the idempotency window forgotten."""
        now = time.time()
        if now - self._pruned_at >= PRUNE_EVERY_SECONDS:
            self._pruned_at = now
            self._recorder.journal.prune_keys(now, self._settings.idempotency_window_seconds)
        for decision in self.waiting():
            if decision.expires_at_epoch > now:
                continue
            with self._locks.plan(decision.plan_id):
                if self.get(decision.request_id) is None:
                    continue
                minutes = self._settings.approval_timeout_seconds / 60
                why = f"nobody approved it within {minutes:g} minutes; nothing started"
                try:
                    self.close(decision, "expired", None, why)
                except AuditWriteError as exc:  # past its expiry it cannot be approved; tried again
                    if decision.request_id not in self._unrecorded_expiry:  # said once, not every second
                        self._unrecorded_expiry.add(decision.request_id)
                        log.error(
                            "%s: decision %s expired but is not on record yet", exc, decision.request_id
                        )
        return False  # the loop goes on

    def stop(self) -> None:
        self._loop.stop(timeout=5)
