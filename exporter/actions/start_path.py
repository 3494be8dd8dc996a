"""The guarded start's checks, in order, and the start itself (the order is in engine.py's docstring).
Every answer is recorded first (the recorder); a start that passes every guard but needs an approver
becomes a pending decision (decisions.py), and comes back here once approved (approvals.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from exporter.actions import guards
from exporter.actions.audit.log import AuditWriteError
from exporter.actions.audit.recorder import Recorder
from exporter.actions.decisions import PendingDecisions
from exporter.actions.locks import StartLocks
from exporter.actions.model import Approval, Attempt, Decision, StartRequest, request_id
from exporter.actions.plan_facts import vms_in_dr
from exporter.actions.switches import Switches
from exporter.actions.tracker import TaskTracker
from exporter.config import ActionSettings, Caller
from exporter.em.errors import EMError
from exporter.em.model import Plan, Session
from exporter.polling.snapshot import Store

if TYPE_CHECKING:  # types only
    from exporter.em.client import EMClient


@dataclass
class StartPath:
    settings: ActionSettings
    client: EMClient
    store: Store
    recorder: Recorder
    decisions: PendingDecisions
    locks: StartLocks
    tracker: TaskTracker
    switches: Callable[[], Switches]
    wake_poller: Callable[[], None]
    on_started: Callable[[str], None]  # EM accepted a start on this backup server (a collection follows)

    def start(self, caller: Caller, req: StartRequest) -> Decision:
        snap = self.store.current()
        plan, why = guards.resolve(snap.plans, req.plan_ref)
        attempt = Attempt(request_id(), caller, req, plan)
        if "starter" not in caller.roles:
            return self.recorder.decide(
                attempt, "forbidden", 403, f"caller {caller.name!r} has no starter role"
            )
        if plan is None:
            if not snap.plans and not snap.up:
                # We have not read the plans from EM yet: this may work in a moment.
                return self.recorder.decide(attempt, "em_error", 503, "plans not read from EM yet")
            if caller.plans is not None:
                # a caller restricted to some plans cannot tell "no such plan" from "not yours"
                return self.recorder.decide(attempt, "forbidden", 403, guards.not_allowed(caller))
            return self.recorder.decide(attempt, "invalid", 404, why)
        start_date, refusal = guards.admit(
            plan, caller, req, self.settings, time.time(), kill_switch=self.switches().kill_switch
        )
        refusal = refusal or guards.vms_in_dr(req, vms_in_dr(plan, snap))
        if refusal is not None:
            return self.recorder.decide(attempt, refusal.outcome, refusal.status, refusal.reason)
        scoped = replace(req, idempotency_key=guards.scoped_key(caller, plan, req.idempotency_key))
        with self.locks.plan(plan.id):
            return self.start_locked(replace(attempt, request=scoped), start_date, req.idempotency_key)

    def latest_session(self, plan: Plan) -> Session | None:
        return next(
            (
                s
                for s in self.store.current().sessions
                if (s.backup_server, s.plan) == (plan.backup_server, plan.name)
            ),
            None,
        )

    def start_locked(
        self,
        attempt: Attempt,
        start_date: datetime | None,
        legacy_key: str | None,
        approval: Approval | None = None,
    ) -> Decision:
        """The checks under the plan's lock, then the start. `approval`: an approver said yes to this
        pending decision (approvals.py holds the plan's lock and checked what it saw)."""
        plan = attempt.plan
        assert plan is not None
        latest = self.latest_session(plan)
        state = self.recorder.journal.state
        own = attempt.request_id if approval else ""
        refusal = guards.clear_to_start(
            plan, attempt.request, state, latest, self.settings, time.time(), legacy_key, own
        )
        if refusal is not None:
            return self.recorder.decide(
                attempt, refusal.outcome, refusal.status, refusal.reason, em_task_id=refusal.em_task_id
            )
        spec: dict[str, Any] = {
            "start": "now" if start_date is None else start_date.astimezone(UTC).isoformat(),
            "previous_session_id": None if latest is None else latest.id,
        }
        if approval is None and guards.approval_required(plan, self.settings):
            # Nobody is asked to approve what the limits would refuse anyway.
            refusal = guards.within_limits(plan, state, self.settings, time.time()) or guards.pending_cap(
                attempt.caller, state, self.settings
            )
            if refusal is not None:
                return self.recorder.decide(attempt, refusal.outcome, refusal.status, refusal.reason)
            return self.decisions.open(attempt, spec)
        # The mode, the limits across plans and the start on disk are settled under one lock: no switch
        # changes meanwhile, and requests for many plans at once cannot all pass the limits before any
        # of them counts.
        with self.locks.limits:
            if self.switches().kill_switch:  # flipped on since the first check: it wins
                why = "the kill switch is on (actions.kill_switch or PUT /api/v1/switches)"
                return self.recorder.decide(attempt, "forbidden", 403, why)
            dry_run = self.switches().dry_run or attempt.request.dry_run
            if approval is not None:
                if dry_run != approval.dry_run:
                    modes = ("a dry run", "a real start")
                    was, now = modes if approval.dry_run else modes[::-1]
                    why = f"approved as {was}, but it is {now} now"
                    return self.recorder.decide(attempt, "conflict", 409, f"{why}: nothing was done")
                pending = self.decisions.get(attempt.request_id)
                if pending is None:  # cannot be: the approval holds the plan's lock and looked
                    return self.recorder.decide(attempt, "conflict", 409, "the decision was closed meanwhile")
                try:
                    self.decisions.close(pending, "approved", approval.by, approval.reason)
                except AuditWriteError as exc:
                    why = f"{exc}: an approval must be on record before it acts; nothing was done"
                    return self.recorder.decide(attempt, "audit_error", 503, why)
                spec["approver"] = approval.by
            if dry_run:
                return self.recorder.decide(
                    attempt, "dry_run", 200, "dry run: every check passed, nothing sent", extra=spec
                )
            refusal = guards.within_limits(plan, self.recorder.journal.state, self.settings, time.time())
            if refusal is not None:
                return self.recorder.decide(attempt, refusal.outcome, refusal.status, refusal.reason)
            # On disk before EM hears of it: if we die now, a restart treats the start as having
            # happened. If it cannot be put on disk, EM is not asked (fail closed).
            try:
                self.recorder.write_before_em(attempt, "asking EM to start the plan", spec)
            except AuditWriteError as exc:
                why = f"{exc}: a start must be on record before EM is asked; nothing was sent"
                return self.recorder.decide(attempt, "audit_error", 503, why)
        try:
            task = self.client.start_plan(plan.id, start_date)
        except EMError as exc:
            status, why, audit_outcome = guards.em_failure(exc)
            return self.recorder.decide(attempt, "em_error", status, why, audit_outcome=audit_outcome)
        decision = self.recorder.decide(
            attempt, "accepted", 202, f"EM accepted the start ({task.state})", em_task_id=task.id, extra=spec
        )
        self.wake_poller()
        self.on_started(plan.backup_server)
        self.tracker.track(decision, task.id)
        return decision
