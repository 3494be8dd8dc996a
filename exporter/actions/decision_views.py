"""What a pending decision looks like from outside: the list `GET /api/v1/decisions` and /status show,
and what approving one would do now (decision_preview.py), from what is known now."""

from __future__ import annotations

import time
from typing import Any

from exporter.actions import decision_preview
from exporter.actions.audit.records import PendingDecision
from exporter.actions.decision_preview import Preview
from exporter.actions.decisions import PendingDecisions
from exporter.actions.plan_facts import plan_facts, vms_in_dr
from exporter.actions.start_path import StartPath
from exporter.config import Caller
from exporter.em.model import Plan


class DecisionViews:
    def __init__(self, path: StartPath, decisions: PendingDecisions) -> None:
        self._path = path
        self._decisions = decisions

    def pending(self, caller: Caller | None) -> list[dict[str, Any]]:
        """The pending decisions a caller may see: a starter its own, every other role (and the status
        page: None) all of them."""
        mine = caller is not None and set(caller.roles) <= {"starter"}
        shown = []
        for d in self._decisions.waiting():
            if mine and caller is not None and d.caller != caller.name:
                continue
            view = d.shown()
            view["now"] = self.now_json(d)  # what approving does now, and the plan's facts
            view["approve"] = f"/api/v1/decisions/{d.request_id}/approve"
            view["reject"] = f"/api/v1/decisions/{d.request_id}/reject"
            shown.append(view)
        return shown

    def view(self, decision_id: str) -> tuple[PendingDecision | None, dict[str, Any] | None]:
        """The pending decision and what approving it would do now (None, None: no such decision)."""
        decision = self._decisions.get(decision_id)
        return decision, None if decision is None else self.now_json(decision)

    def now_json(self, decision: PendingDecision) -> dict[str, Any]:
        """What approving does now (mode, checks, plan state, fingerprint) and what the approver should
        know of the plan (tenant, VMs, expected data loss, VMs never replicated or in DR, EM's data age)."""
        out = self.preview(decision).to_json()
        plan = self.plan(decision)
        if plan is not None:
            out["plan_facts"] = plan_facts(plan, self._path.store.current(), time.time()).to_json()
        return out

    def preview(self, decision: PendingDecision) -> Preview:
        """What approving the decision would do now."""
        path, plan = self._path, self.plan(decision)
        switches = path.switches()
        facts = decision_preview.Facts(
            decision=decision,
            requester=self.requester(decision),
            plan=plan,
            latest=None if plan is None else path.latest_session(plan),
            state=path.recorder.journal.state,
            settings=path.settings,
            dry_run_switch=switches.dry_run,
            kill_switch=switches.kill_switch,
            now=time.time(),
            in_dr=() if plan is None else vms_in_dr(plan, path.store.current()),
        )
        return decision_preview.preview(facts)

    def plan(self, decision: PendingDecision) -> Plan | None:
        return next((p for p in self._path.store.current().plans if p.id == decision.plan_id), None)

    def requester(self, decision: PendingDecision) -> Caller | None:
        return next((c for c in self._path.settings.callers if c.name == decision.caller), None)
