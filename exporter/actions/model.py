"""The values of the guarded start: what was asked, by whom, for which plan, and what was decided.

The outcome and source vocabularies are declared once here; the metrics pre-register them, the README's
tables and the tests read them from here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:  # field types only
    from exporter.config import Caller
    from exporter.em.model import Plan

Source = Literal["api", "alertmanager"]
SOURCES: tuple[Source, ...] = get_args(Source)

# What a request's answer says (and the label of veeam_failover_start_requests_total).
Outcome = Literal[
    "accepted",
    "dry_run",
    "pending",  # approval mode: every check passed; waits for an approver (GET /api/v1/decisions)
    "duplicate",
    "conflict",
    "forbidden",
    "unauthorized",
    "invalid",
    "em_error",
    "audit_error",  # the start could not be put on record, so EM was not asked
]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)

# What else the audit log records: a start on its way, a start whose answer was lost, alerts that
# start nothing, and how EM's task for an accepted start went.
AuditNote = Literal[
    "starting",
    "em_unknown",
    "ignored",
    "task_finished",
    "task_failed",
    "task_done_uncollected",
    "task_uncollected",
    "task_timeout",
    "task_lost",
    "approved",
    "rejected",
    "expired",
    "switches",  # an admin set the kill switch or dry run at run time
]
AUDIT_NOTES: tuple[AuditNote, ...] = get_args(AuditNote)

# What becomes of a pending decision (veeam_failover_decisions_total{verdict}).
Verdict = Literal["pending", "approved", "rejected", "expired"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)


# The records of what happened once EM was asked to start a plan (held in memory while the disk refuses
# them): every note of a start, and an accepted start.
AFTER_EM: frozenset[str] = frozenset(
    {*AUDIT_NOTES, "accepted"} - {"ignored", "approved", "rejected", "expired", "switches"}
)


@dataclass(frozen=True)
class StartRequest:
    plan_ref: str  # plan name or ID
    source: Source
    start_date: datetime | None = None  # None: StartNow (latest restore points)
    dry_run: bool = False
    reason: str = ""
    idempotency_key: str | None = None
    alert_fingerprint: str | None = None
    remote: str = ""
    alert: dict[str, str] | None = None  # the alert's labels, for the approver and the announcements
    # start even though some of the plan's VMs run in DR already (guards.vms_in_dr refuses otherwise)
    allow_vms_in_dr: bool = False


@dataclass(frozen=True)
class Attempt:
    """One request on its way through the checks: its ID, who asked, what, and the plan it names."""

    request_id: str
    caller: Caller | None
    request: StartRequest
    plan: Plan | None


@dataclass(frozen=True)
class Approval:
    """An approver's yes to a pending decision, and the mode it saw (a dry run, or a real start)."""

    by: str
    reason: str
    dry_run: bool


@dataclass(frozen=True)
class Decision:
    request_id: str
    outcome: Outcome
    status: int
    reason: str
    plan: str | None = None
    plan_id: str | None = None
    em_task_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"request_id": self.request_id, "outcome": self.outcome, "reason": self.reason}
        if self.plan is not None and self.outcome != "forbidden":
            # a caller not allowed the plan learns nothing of it, not even that it exists
            out["plan"] = self.plan
            out["plan_id"] = self.plan_id
        if self.em_task_id is not None:
            out["em_task"] = {"id": self.em_task_id}
        if self.outcome == "pending":  # the request ID is the decision's
            out["decision"] = f"/api/v1/decisions/{self.request_id}"
        return out


def request_id() -> str:
    """A new request's ID (also its pending decision's, in approval mode)."""
    return uuid.uuid4().hex
