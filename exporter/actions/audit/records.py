"""The audit log's records: what a decision's line holds, and a pending decision's, each written here
(and a pending decision read here) only.

A pending decision is one line (outcome `pending`), kept in the guards' state until a verdict
(approved, rejected, expired) closes it; everything else reads it as a typed PendingDecision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from exporter.actions.model import SOURCES, Attempt, Source, StartRequest
from exporter.config import Caller
from exporter.em.errors import ParseError
from exporter.em.timefmt import parse_time

# what GET /api/v1/decisions and the decision page show of a pending decision, in this order
SHOWN = ("request_id", "time", "expires_at", "plan", "plan_id", "backup_server", "caller", "source")
SHOWN_MORE = ("reason_given", "alert", "alert_fingerprint", "start", "approver")
# what a verdict repeats of the decision it closes
CLOSING = ("request_id", "plan", "plan_id", "backup_server", "source", "caller", "alert_fingerprint")
_SOURCES: dict[str, Source] = {s: s for s in SOURCES}


def pending_fields(request: StartRequest, spec: dict[str, Any], expires: float) -> dict[str, Any]:
    """What a pending decision's line holds besides the request itself: the start it would make
    (`spec`), when it expires, and what was asked (so the approval can ask it again)."""
    return {
        **spec,
        "expires_at": iso(expires),
        "expires_at_epoch": expires,
        "requested": {
            "start": None if request.start_date is None else iso(request.start_date.timestamp()),
            "dry_run": request.dry_run,
            "allow_vms_in_dr": request.allow_vms_in_dr,
        },
        "alert": request.alert,
    }


def decision_record(
    attempt: Attempt,
    outcome: str,
    status: int,
    reason: str,
    em_task_id: str | None,
    extra: dict[str, Any] | None,
    dry_run_switch: bool,
) -> dict[str, Any]:
    """The line of a decision (or of a note about it): who asked, for what, what was decided."""
    req, plan = attempt.request, attempt.plan
    return {
        "request_id": attempt.request_id,
        "source": req.source,
        "caller": None if attempt.caller is None else attempt.caller.name,
        "remote": req.remote,
        "plan_ref": req.plan_ref[:200],
        "plan": None if plan is None else plan.name,
        "plan_id": None if plan is None else plan.id,
        "backup_server": None if plan is None else plan.backup_server,
        "alert_fingerprint": req.alert_fingerprint,
        "idempotency_key": req.idempotency_key,
        "dry_run": req.dry_run or dry_run_switch,
        "reason_given": req.reason[:500] or None,
        "outcome": outcome,
        "status": status,
        "reason": reason,
        "em_task_id": em_task_id,
        **(extra or {}),
    }


def ignored_record(request: StartRequest, caller: Caller, reason: str) -> dict[str, Any]:
    """The line of an alert that starts nothing (resolved, or naming no plan)."""
    return {
        "source": request.source,
        "caller": caller.name,
        "remote": request.remote,
        "alert_fingerprint": request.alert_fingerprint,
        "plan_ref": request.plan_ref,
        "outcome": "ignored",
        "reason": reason,
    }


def verdict_record(decision: PendingDecision, verdict: str, by: str | None, reason: str) -> dict[str, Any]:
    """The line that closes a pending decision."""
    return {
        **{k: decision.record.get(k) for k in CLOSING},
        "outcome": verdict,
        "approver": by,
        "reason": reason,
    }


@dataclass(frozen=True)
class PendingDecision:
    """A start waiting for an approver, read from its line (`record`, kept as written for rotation)."""

    request_id: str
    plan: str
    plan_id: str
    caller: str
    expires_at: str
    expires_at_epoch: float  # 0: unreadable, so expired
    asked_at: float | None  # when the request was made (None: unreadable)
    previous_session_id: str | None  # the plan's latest session when it was asked
    request: StartRequest  # the request as it was asked
    record: dict[str, Any]

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> PendingDecision:
        requested = record.get("requested") if isinstance(record.get("requested"), dict) else {}
        assert isinstance(requested, dict)
        start = _time(requested.get("start"))
        alert = record.get("alert")
        expires = record.get("expires_at_epoch")
        previous = record.get("previous_session_id")
        request = StartRequest(
            plan_ref=str(record.get("plan_ref") or record.get("plan_id") or ""),
            source=_SOURCES.get(str(record.get("source")), "api"),
            start_date=None if start is None else datetime.fromtimestamp(start, UTC),
            dry_run=requested.get("dry_run") is True,
            reason=str(record.get("reason_given") or ""),
            idempotency_key=record.get("idempotency_key"),
            alert_fingerprint=record.get("alert_fingerprint"),
            remote=str(record.get("remote") or ""),
            alert=alert if isinstance(alert, dict) else None,
            allow_vms_in_dr=requested.get("allow_vms_in_dr") is True,
        )
        return cls(
            request_id=str(record.get("request_id") or ""),
            plan=str(record.get("plan") or ""),
            plan_id=str(record.get("plan_id") or ""),
            caller=str(record.get("caller") or ""),
            expires_at=str(record.get("expires_at") or ""),
            expires_at_epoch=float(expires) if isinstance(expires, int | float) else 0.0,
            asked_at=_time(record.get("time")),
            previous_session_id=None if previous is None else str(previous),
            request=request,
            record=record,
        )

    def shown(self) -> dict[str, Any]:
        """What the API and the decision page show of it (the fields it has)."""
        return {k: self.record[k] for k in (*SHOWN, *SHOWN_MORE) if self.record.get(k) is not None}


def _time(value: Any) -> float | None:
    try:
        return parse_time(value) if isinstance(value, str) and value else None
    except ParseError:
        return None


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
