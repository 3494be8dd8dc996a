"""Approval mode: a start that passed every guard becomes a pending decision (on the audit log, with an
ID and an expiry) until an approver who is not the requester approves it; then it goes through the same
guards again, under the plan's lock (the plan may have started meanwhile), and only then to EM. Or an
approver rejects it (the requester may withdraw its own), or nobody answers in time and it expires:
nothing starts.

A guard that refuses at approval time (kill switch, plan not allowed, a session running) leaves the
decision pending; once approved, the decision is closed and the start's own answer says what happened
(accepted, dry run, the hourly limit reached, EM down)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from exporter.actions import decision_preview, guards
from exporter.actions.audit import AuditWriteError
from exporter.actions.decision_preview import Preview
from exporter.actions.model import (
    SOURCES,
    Approval,
    Attempt,
    Decision,
    Outcome,
    Source,
    StartRequest,
    request_id,
)
from exporter.config import Caller
from exporter.em.errors import ParseError
from exporter.em.model import Plan
from exporter.em.timefmt import parse_time
from exporter.polling.loop import BackgroundLoop

if TYPE_CHECKING:  # types only
    from exporter.actions.engine import Actions

log = logging.getLogger(__name__)

EXPIRY_CHECK_SECONDS = 1.0
PRUNE_EVERY_SECONDS = 60.0
# what GET /api/v1/decisions shows of a pending decision
SHOWN = ("request_id", "time", "expires_at", "plan", "plan_id", "backup_server", "caller", "source")
SHOWN_MORE = ("reason_given", "alert", "alert_fingerprint", "start", "approver")


class Approvals:
    def __init__(self, actions: Actions) -> None:
        self.actions = actions
        self._pruned_at = 0.0
        self._unrecorded_expiry: set[str] = set()
        self._loop = BackgroundLoop("decision-expiry", self.expire_due, lambda: EXPIRY_CHECK_SECONDS)
        self._loop.start()

    def open(self, attempt: Attempt, spec: dict[str, Any]) -> Decision:
        """The pending decision: every check passed; it waits for an approver."""
        req = attempt.request
        expires = time.time() + self.actions.settings.approval_timeout_seconds
        expires_at = _iso(expires)
        extra = {
            **spec,
            "expires_at": expires_at,
            "expires_at_epoch": expires,
            "requested": {
                "start": None if req.start_date is None else _iso(req.start_date.timestamp()),
                "dry_run": req.dry_run,
            },
            "alert": req.alert,
        }
        caller = "" if attempt.caller is None else attempt.caller.name
        why = f"waits for approval by an approver other than {caller!r} until {expires_at}"
        return self.actions.recorder.decide(attempt, "pending", 202, why, extra=extra, durable=True)

    def pending(self, caller: Caller | None) -> list[dict[str, Any]]:
        """The pending decisions a caller may see: a starter its own, every other role (and the status
        page: None) all of them."""
        mine = caller is not None and set(caller.roles) <= {"starter"}
        shown = []
        for rid, r in sorted(self._decisions().items(), key=lambda kv: str(kv[1].get("time"))):
            if mine and caller is not None and r.get("caller") != caller.name:
                continue
            view = {k: r.get(k) for k in (*SHOWN, *SHOWN_MORE) if r.get(k) is not None}
            view["now"] = self._preview(r, self._plan(r)).to_json()  # what approving does now
            view["approve"] = f"/api/v1/decisions/{rid}/approve"
            view["reject"] = f"/api/v1/decisions/{rid}/reject"
            shown.append(view)
        return shown

    def preview(self, decision_id: str) -> Preview | None:
        """What approving the decision would do now (None: no such pending decision)."""
        record = self._decisions().get(decision_id)
        if record is None:
            return None
        return self._preview(record, self._plan(record))

    def view(self, decision_id: str) -> tuple[dict[str, Any] | None, Preview | None]:
        """The pending decision's record and what approving it would do now, for the decision page."""
        record = self._decisions().get(decision_id)
        return record, None if record is None else self._preview(record, self._plan(record))

    def _preview(self, record: dict[str, Any], plan: Plan | None) -> Preview:
        a = self.actions
        switches = a.switches()
        facts = decision_preview.Facts(
            record=record,
            request=_request(record),
            requester=self._requester(record),
            plan=plan,
            latest=None if plan is None else a.latest_session(plan),
            state=a.recorder.journal.state,
            settings=a.settings,
            dry_run_switch=switches.dry_run,
            kill_switch=switches.kill_switch,
            now=time.time(),
        )
        return decision_preview.preview(facts)

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
        record = self._decisions().get(decision_id)
        refusal = self._approver_refusal(approver, decision_id, record)
        if refusal is not None or record is None:
            outcome, status, why = refusal or ("invalid", 404, "no pending decision")
            return self._refuse(approver, decision_id, record, outcome, status, why, remote)
        if mode not in decision_preview.MODES or not fingerprint:
            why = (
                "an approval names what it approves: give mode ('start' or 'dry_run') and fingerprint "
                f"as GET /api/v1/decisions or /status/decisions/{decision_id} shows them now"
            )
            return self._refuse(approver, decision_id, record, "invalid", 400, why, remote)
        plan = self._plan(record)
        if plan is not None and not guards.allowed(approver, plan, self.actions.settings):
            why = f"plan not allowed for caller {approver.name!r}"
            return self._refuse(approver, decision_id, record, "forbidden", 403, why, remote)
        with self.actions.lock_for(str(record.get("plan_id"))):
            if decision_id not in self._decisions():  # another approver, or the expiry, came first
                why = "the decision was decided or expired meanwhile"
                return self._refuse(approver, decision_id, record, "conflict", 409, why, remote)
            now = self._preview(record, plan)
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
            requester = self._requester(record)
            req = _request(record)
            start_date, _ = guards.admit(
                plan, requester or approver, req, self.actions.settings, time.time(), kill_switch=False
            )
            attempt = Attempt(decision_id, requester, req, plan)
            return self.actions.start_locked(
                attempt, start_date, None, Approval(approver.name, reason or "approved", mode == "dry_run")
            )

    def _plan(self, record: dict[str, Any]) -> Plan | None:
        return next((p for p in self.actions.store.current().plans if p.id == record.get("plan_id")), None)

    def _requester(self, record: dict[str, Any]) -> Caller | None:
        return next((c for c in self.actions.settings.callers if c.name == record.get("caller")), None)

    def reject(self, caller: Caller, decision_id: str, reason: str) -> tuple[int, dict[str, Any]]:
        """An approver says no, or the requester withdraws its own request."""
        record = self._decisions().get(decision_id)
        if record is None:
            return 404, {"request_id": decision_id, "outcome": "invalid", "reason": "no pending decision"}
        if "approver" not in caller.roles and record.get("caller") != caller.name:
            why = "only an approver, or the requester itself, may reject a decision"
            return 403, {"request_id": decision_id, "outcome": "forbidden", "reason": why}
        with self.actions.lock_for(str(record.get("plan_id"))):
            if decision_id not in self._decisions():
                why = "the decision was decided or expired meanwhile"
                return 409, {"request_id": decision_id, "outcome": "conflict", "reason": why}
            try:
                self.close(decision_id, "rejected", caller.name, reason or "rejected")
            except AuditWriteError as exc:
                why = f"{exc}: a rejection must be on record to hold; the decision still waits, try again"
                return 503, {"request_id": decision_id, "outcome": "audit_error", "reason": why}
        return 200, {"request_id": decision_id, "outcome": "rejected", "reason": reason or "rejected"}

    def expire_due(self) -> bool:
        """Every pending decision past its expiry: closed as expired, nothing started; and the keys of
        closed decisions past the idempotency window forgotten."""
        now = time.time()
        if now - self._pruned_at >= PRUNE_EVERY_SECONDS:
            self._pruned_at = now
            self.actions.recorder.journal.prune_keys(now, self.actions.settings.idempotency_window_seconds)
        for rid, record in list(self._decisions().items()):
            if _expiry(record) > now:
                continue
            with self.actions.lock_for(str(record.get("plan_id"))):
                if rid in self._decisions():
                    minutes = self.actions.settings.approval_timeout_seconds / 60
                    why = f"nobody approved it within {minutes:g} minutes; nothing started"
                    try:
                        self.close(rid, "expired", None, why)
                    except AuditWriteError as exc:  # past its expiry it cannot be approved; tried again
                        if rid not in self._unrecorded_expiry:  # said once, not every second
                            self._unrecorded_expiry.add(rid)
                            log.error("%s: decision %s expired but is not on record yet", exc, rid)
        return False  # the loop goes on

    def close(self, decision_id: str, verdict: str, by: str | None, reason: str) -> None:
        """On disk, or AuditWriteError and the decision still waits."""
        record = self._decisions().get(decision_id)
        if record is not None:
            self.actions.recorder.verdict(record, verdict, by, reason)

    def close_loop(self) -> None:
        self._loop.stop(timeout=5)

    def _decisions(self) -> dict[str, dict[str, Any]]:
        return self.actions.recorder.journal.state.decisions

    def _approver_refusal(
        self, approver: Caller, decision_id: str, record: dict[str, Any] | None
    ) -> tuple[Outcome, int, str] | None:
        if record is not None and record.get("caller") == approver.name:
            return "forbidden", 403, "two-person rule: the requester cannot approve its own request"
        if "approver" not in approver.roles:
            return "forbidden", 403, f"caller {approver.name!r} has no approver role"
        if record is None:
            return "invalid", 404, "no pending decision with this ID (decided, expired, or never made)"
        if _expiry(record) <= time.time():
            self.expire_due()
            return "conflict", 409, f"the decision expired at {record.get('expires_at')}; nothing was started"
        return None

    def _refuse(
        self,
        approver: Caller,
        decision_id: str,
        record: dict[str, Any] | None,
        outcome: Outcome,
        status: int,
        reason: str,
        remote: str,
    ) -> Decision:
        """An approval turned away: on record as the approver's own request, naming the decision."""
        plan_ref = decision_id if record is None else str(record.get("plan_id") or "")
        plan = None
        if record is not None:
            plan = next(
                (p for p in self.actions.store.current().plans if p.id == record.get("plan_id")), None
            )
        req = StartRequest(plan_ref=plan_ref, source="api", remote=remote)
        attempt = Attempt(request_id(), approver, req, plan)
        return self.actions.recorder.decide(
            attempt, outcome, status, reason, extra={"decision": decision_id, "approver": approver.name}
        )


def _request(record: dict[str, Any]) -> StartRequest:
    """The request a pending decision holds, as it was asked."""
    requested = record.get("requested") if isinstance(record.get("requested"), dict) else {}
    assert isinstance(requested, dict)
    try:
        start = parse_time(requested.get("start")) if isinstance(requested.get("start"), str) else None
    except ParseError:
        start = None
    source = record.get("source")
    alert = record.get("alert")
    return StartRequest(
        plan_ref=str(record.get("plan_ref") or record.get("plan_id") or ""),
        source=_SOURCES.get(str(source), "api"),
        start_date=None if start is None else datetime.fromtimestamp(start, UTC),
        dry_run=requested.get("dry_run") is True,
        reason=str(record.get("reason_given") or ""),
        idempotency_key=record.get("idempotency_key"),
        alert_fingerprint=record.get("alert_fingerprint"),
        remote=str(record.get("remote") or ""),
        alert=alert if isinstance(alert, dict) else None,
    )


_SOURCES: dict[str, Source] = {s: s for s in SOURCES}


def _expiry(record: dict[str, Any]) -> float:
    value = record.get("expires_at_epoch")
    return float(value) if isinstance(value, int | float) else 0.0  # unreadable: expired


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
