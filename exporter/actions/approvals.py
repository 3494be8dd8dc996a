"""Approval mode: a start that passed every guard became a pending decision (decisions.py) that waits
until an approver who is not the requester approves it; then it goes through the same guards again,
under the plan's lock (the plan may have started meanwhile), and only then to EM. Or an approver rejects
it (the requester may withdraw its own), or nobody answers in time and it expires: nothing starts.

A guard that refuses at approval time (kill switch, plan not allowed, a session running) leaves the
decision pending; once approved, the decision is closed and the start's own answer says what happened
(accepted, dry run, the hourly limit reached, EM down)."""

from __future__ import annotations

import time
from typing import Any

from exporter.actions import decision_preview, guards
from exporter.actions.audit.log import AuditWriteError
from exporter.actions.audit.records import PendingDecision
from exporter.actions.decision_views import DecisionViews
from exporter.actions.decisions import PendingDecisions
from exporter.actions.model import Approval, Attempt, Decision, Outcome, StartRequest, request_id
from exporter.actions.start_path import StartPath
from exporter.config import Caller


class Approvals:
    def __init__(self, path: StartPath, decisions: PendingDecisions, views: DecisionViews) -> None:
        self._path = path
        self._decisions = decisions
        self._views = views

    def approve(
        self,
        approver: Caller,
        decision_id: str,
        remote: str = "",
        reason: str = "",
        *,
        mode: str | None = None,
        fingerprint: str | None = None,
    ) -> Decision:
        """An approver says yes to what it saw: `mode` and `fingerprint` from the decision's view. If what
        approving does now differs (mode, checks, the plan's state), nothing happens: 409."""
        record = self._decisions.get(decision_id)
        refusal = self._approver_refusal(approver, record)
        if refusal is not None or record is None:
            outcome, status, why = refusal or ("invalid", 404, "no pending decision")
            return self._refuse(approver, decision_id, record, outcome, status, why, remote)
        if mode not in decision_preview.MODES or not fingerprint:
            why = (
                "an approval names what it approves: give mode ('start' or 'dry_run') and fingerprint "
                f"as GET /api/v1/decisions or /status/decisions/{decision_id} shows them now"
            )
            return self._refuse(approver, decision_id, record, "invalid", 400, why, remote)
        plan, settings = self._views.plan(record), self._path.settings
        if plan is not None and not guards.allowed(approver, plan, settings):
            why = f"plan not allowed for caller {approver.name!r}"
            return self._refuse(approver, decision_id, record, "forbidden", 403, why, remote)
        with self._path.locks.plan(record.plan_id):
            if self._decisions.get(decision_id) is None:  # another approver, or the expiry, came first
                why = "the decision was decided or expired meanwhile"
                return self._refuse(approver, decision_id, record, "conflict", 409, why, remote)
            now = self._views.preview(record)
            if (now.mode, now.fingerprint) != (mode, fingerprint):
                why = (
                    f"what approving does changed since you looked: now {now.mode_reason}; checks: "
                    f"{'pass' if now.refusal is None else now.refusal.reason}; {now.plan_state}. "
                    "Nothing was done; look again"
                )
                return self._refuse(approver, decision_id, record, "conflict", 409, why, remote)
            if now.refusal is not None or plan is None:
                r = now.refusal or guards.Refusal("conflict", 409, "the plan is not among EM's plans now")
                why = f"{r.reason}; the decision still waits"
                return self._refuse(approver, decision_id, record, r.outcome, r.status, why, remote)
            requester, req = self._views.requester(record), record.request
            start_date, _ = guards.admit(
                plan, requester or approver, req, settings, time.time(), kill_switch=False
            )
            attempt = Attempt(decision_id, requester, req, plan)
            return self._path.start_locked(
                attempt, start_date, None, Approval(approver.name, reason or "approved", mode == "dry_run")
            )

    def reject(self, caller: Caller, decision_id: str, reason: str) -> tuple[int, dict[str, Any]]:
        """An approver says no, or the requester withdraws its own request."""
        record = self._decisions.get(decision_id)
        if record is None:
            return 404, {"request_id": decision_id, "outcome": "invalid", "reason": "no pending decision"}
        if "approver" not in caller.roles and record.caller != caller.name:
            why = "only an approver, or the requester itself, may reject a decision"
            return 403, {"request_id": decision_id, "outcome": "forbidden", "reason": why}
        with self._path.locks.plan(record.plan_id):
            if self._decisions.get(decision_id) is None:
                why = "the decision was decided or expired meanwhile"
                return 409, {"request_id": decision_id, "outcome": "conflict", "reason": why}
            try:
                self._decisions.close(record, "rejected", caller.name, reason or "rejected")
            except AuditWriteError as exc:
                why = f"{exc}: a rejection must be on record to hold; the decision still waits, try again"
                return 503, {"request_id": decision_id, "outcome": "audit_error", "reason": why}
        return 200, {"request_id": decision_id, "outcome": "rejected", "reason": reason or "rejected"}

    def _approver_refusal(
        self, approver: Caller, record: PendingDecision | None
    ) -> tuple[Outcome, int, str] | None:
        if record is not None and record.caller == approver.name:
            return "forbidden", 403, "two-person rule: the requester cannot approve its own request"
        if "approver" not in approver.roles:
            return "forbidden", 403, f"caller {approver.name!r} has no approver role"
        if record is None:
            return "invalid", 404, "no pending decision with this ID (decided, expired, or never made)"
        if record.expires_at_epoch <= time.time():
            self._decisions.expire_due()
            return "conflict", 409, f"the decision expired at {record.expires_at}; nothing was started"
        return None

    def _refuse(
        self,
        approver: Caller,
        decision_id: str,
        record: PendingDecision | None,
        outcome: Outcome,
        status: int,
        reason: str,
        remote: str,
    ) -> Decision:
        """An approval turned away: on record as the approver's own request, naming the decision."""
        plan_ref = decision_id if record is None else record.plan_id
        plan = None if record is None else self._views.plan(record)
        req = StartRequest(plan_ref=plan_ref, source="api", remote=remote)
        attempt = Attempt(request_id(), approver, req, plan)
        return self._path.recorder.decide(
            attempt, outcome, status, reason, extra={"decision": decision_id, "approver": approver.name}
        )
