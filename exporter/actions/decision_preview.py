"""What approving a pending decision would do now, as a pure function of what is known now.

A decision waits for minutes; meanwhile an admin may switch dry run off, the plan may run by another
path, a guard may start refusing. So the page and `GET /api/v1/decisions` show what approving does *now*
(a real start or a dry run, the guards' answer, the plan's latest session), and an approval names the
mode and the fingerprint of the facts it saw: if they changed, the approval is refused and the new facts
shown (approvals.py)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from exporter.actions import guards
from exporter.actions.audit.records import PendingDecision
from exporter.actions.audit.state import AuditState
from exporter.actions.guards import Refusal
from exporter.config import ActionSettings, Caller
from exporter.em.model import Plan, Session

Mode = Literal["start", "dry_run"]
MODES: tuple[Mode, ...] = ("start", "dry_run")


@dataclass(frozen=True)
class Preview:
    decision_id: str
    mode: Mode
    mode_reason: str
    refusal: Refusal | None  # None: every check passes now
    plan_state: str
    fingerprint: str

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "mode_reason": self.mode_reason,
            "checks": "pass" if self.refusal is None else self.refusal.reason,
            "plan_state": self.plan_state,
            "fingerprint": self.fingerprint,
        }


def ran_meanwhile(decision: PendingDecision, latest: Session | None) -> str | None:
    """Why the plan has run since the request was made (a session newer than the one it knew), or None."""
    if latest is None:
        return None
    known, asked = decision.previous_session_id, decision.asked_at
    newer = known is not None and latest.id != known
    began_after = latest.start is not None and asked is not None and latest.start > asked
    if not (newer or began_after):
        return None
    return (
        f"session {latest.id} of the plan began after this request was made (the plan ran by another "
        "path): approving would start it again; reject this decision"
    )


@dataclass(frozen=True)
class Facts:
    """What is known now of a pending decision and its plan."""

    decision: PendingDecision
    requester: Caller | None
    plan: Plan | None
    latest: Session | None
    state: AuditState
    settings: ActionSettings
    dry_run_switch: bool
    kill_switch: bool
    now: float
    in_dr: tuple[str, ...] = ()  # the plan's VMs running in DR now


def preview(facts: Facts) -> Preview:
    """The mode, the checks' answer and the plan's state as they hold now, and their fingerprint."""
    rid = facts.decision.request_id
    plan, latest = facts.plan, facts.latest
    mode: Mode
    if facts.decision.request.dry_run:
        mode, why_mode = "dry_run", "a dry run: the request asked for one; nothing is sent to EM"
    elif facts.dry_run_switch:
        mode, why_mode = "dry_run", "a dry run: dry run is on now; nothing is sent to EM"
    else:
        mode, why_mode = "start", "a real failover start: Enterprise Manager is asked to start the plan"
    refusal = _refusal(facts, mode)
    plan_state = (
        "no failover session"
        if latest is None
        else f"latest session {latest.id}: {latest.state} ({latest.result or 'no result yet'})"
    )
    shown = [rid, mode, None if plan is None else [plan.id, plan.name, plan.backup_server], plan_state]
    # numbers in a refusal tick (seconds ago, counts): its kind is what the approver judged
    shown.append(None if refusal is None else [refusal.outcome, re.sub(r"\d+", "#", refusal.reason)])
    digest = hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()[:16]
    return Preview(rid, mode, why_mode, refusal, plan_state, digest)


def _refusal(f: Facts, mode: Mode) -> Refusal | None:
    if f.plan is None:
        return Refusal("conflict", 409, "the plan is not among EM's plans now")
    if f.requester is None:
        why = f"the requester {f.decision.caller!r} is no longer a caller: reject the decision"
        return Refusal("forbidden", 403, why)
    request = f.decision.request
    _, refused = guards.admit(f.plan, f.requester, request, f.settings, f.now, kill_switch=f.kill_switch)
    refused = refused or guards.vms_in_dr(request, f.in_dr)
    if refused is not None:
        return refused
    meanwhile = ran_meanwhile(f.decision, f.latest)
    if meanwhile is not None:
        return Refusal("conflict", 409, meanwhile)
    own = f.decision.request_id
    cleared = guards.clear_to_start(f.plan, request, f.state, f.latest, f.settings, f.now, None, own)
    if cleared is not None:
        return cleared
    return guards.within_limits(f.plan, f.state, f.settings, f.now) if mode == "start" else None
