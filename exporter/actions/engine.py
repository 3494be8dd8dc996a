"""Guarded failover start. Every request goes through the same checks, in this order, and every decision
is written to the audit log before the caller hears of it:

authenticated -> a starter -> plan known -> kill switch -> plan allowed for this caller -> restore point
policy -> none of its VMs in DR already (unless asked) -> (under the plan's lock) not a duplicate -> no
session running, no decision waiting -> not within the cooldown -> approval required? (then a pending
decision, and the same checks again once an approver says yes: approvals.py) -> dry run? -> (under the
limits' lock) within the hourly limits -> "starting" on disk -> POST ?action=start -> "accepted" on disk
-> follow the EM task in the background.

HTTP status codes follow Alertmanager's retry rules: 4xx for what will never succeed (it does not
retry), 5xx only for what may succeed later (EM down), so retries cannot storm.

This module is the service the routes, /status and the metrics use (Actions); the checks run in
start_path.py, pending decisions live in decisions.py, approvals in approvals.py, the audit log in audit/.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from exporter.actions import guards, switches
from exporter.actions.announce import Announcer
from exporter.actions.approvals import Approvals
from exporter.actions.audit.log import AuditLogUnavailable
from exporter.actions.audit.recorder import Recorder
from exporter.actions.audit.records import PendingDecision
from exporter.actions.decision_views import DecisionViews
from exporter.actions.decisions import PendingDecisions
from exporter.actions.locks import StartLocks
from exporter.actions.model import Attempt, Decision, Outcome, StartRequest, request_id
from exporter.actions.start_path import StartPath
from exporter.actions.switches import Switches
from exporter.actions.tracker import TaskTracker
from exporter.config import ActionSettings, Caller
from exporter.http.auth import bearer, matching
from exporter.polling.snapshot import Store

if TYPE_CHECKING:  # types only
    from exporter.em.client import EMClient

log = logging.getLogger(__name__)


class Actions:
    """The guarded start as a service: what the routes, the status page and the metrics may ask of it.
    Nothing outside reaches past it into the audit log."""

    def __init__(
        self,
        settings: ActionSettings,
        client: EMClient,
        store: Store,
        *,
        wake_poller: Callable[[], None] = lambda: None,
        on_started: Callable[[str], None] = lambda backup_server: None,
    ) -> None:
        self.settings = settings
        self.store = store
        self._announcer = Announcer(settings.notifications, settings.external_url)
        try:
            self._recorder = Recorder(
                settings.audit_log,
                lambda: self.switches().dry_run,
                store,
                settings.audit_log_rotate_bytes,
                self._announcer,
            )
        except AuditLogUnavailable:
            self._announcer.close()
            raise
        self._tracker = TaskTracker(client, self._recorder, settings, wake_poller)
        self._locks = StartLocks()
        self._decisions = PendingDecisions(settings, self._recorder, self._locks)
        self._path = StartPath(
            settings,
            client,
            store,
            self._recorder,
            self._decisions,
            self._locks,
            self._tracker,
            self.switches,
            wake_poller,
            on_started,
        )
        self._views = DecisionViews(self._path, self._decisions)
        self._approvals = Approvals(self._path, self._decisions, self._views)
        switches.reconcile(settings, self._recorder)

    # -- requests ---------------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> Caller | None:
        found = matching(bearer(authorization), [c.token for c in self.settings.callers])
        return None if found is None else self.settings.callers[found]

    def start(self, caller: Caller, req: StartRequest) -> Decision:
        return self._path.start(caller, req)

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
        """`mode`, `fingerprint`: what approving does, as the approver saw it (decision_preview.py)."""
        return self._approvals.approve(
            approver, decision_id, remote, reason, mode=mode, fingerprint=fingerprint
        )

    def reject(self, caller: Caller, decision_id: str, reason: str) -> tuple[int, dict[str, Any]]:
        return self._approvals.reject(caller, decision_id, reason)

    def set_switches(self, caller: Caller, changes: dict[str, bool], reason: str) -> Switches:
        return switches.set_switches(
            self.settings, self._recorder, self._locks.limits, caller, changes, reason
        )

    def refuse(
        self, request: StartRequest, caller: Caller | None, outcome: Outcome, status: int, reason: str
    ) -> Decision:
        """A request turned away before its checks could run (bad token, bad body, ...): recorded, and
        without a caller only counted (anyone can send those, as fast as they like)."""
        if caller is None and outcome == "unauthorized":
            return self._recorder.unauthenticated(Attempt(request_id(), None, request, None), reason)
        # Only an authenticated caller's plan name may become a label value or be confirmed in the answer.
        plan = None if caller is None else guards.resolve(self.store.current().plans, request.plan_ref)[0]
        return self._recorder.decide(Attempt(request_id(), caller, request, plan), outcome, status, reason)

    def ignored(self, request: StartRequest, caller: Caller, reason: str) -> None:
        """An alert that starts nothing (resolved, or naming no plan): on the audit log."""
        self._recorder.ignored(request, caller, reason)

    # -- what is known ----------------------------------------------------------------------

    def switches(self) -> Switches:
        return switches.current(self.settings, self._recorder.journal.state.switches)

    def pending(self, caller: Caller | None) -> list[dict[str, Any]]:
        return self._views.pending(caller)

    def decision(self, decision_id: str) -> tuple[PendingDecision | None, dict[str, Any] | None]:
        """A pending decision and what approving it does now, with the plan's facts."""
        return self._views.view(decision_id)

    def preview(self, decision_id: str) -> dict[str, Any] | None:
        """What approving a pending decision does now (None: no such decision)."""
        return self._views.view(decision_id)[1]

    def recent(self, n: int, caller: str | None = None) -> list[dict[str, Any]]:
        """The latest audit records (of one caller)."""
        return self._recorder.journal.recent(n, caller)

    def notification_stats(self) -> dict[tuple[str, str], int]:
        """(webhook, result) -> announcements."""
        return self._announcer.stats()

    def pending_by_plan(self) -> Counter[str]:
        return Counter(d.plan for d in self._decisions.waiting())

    def verdict_stats(self) -> dict[tuple[str, str], int]:
        return self._recorder.verdict_stats()

    @property
    def write_errors(self) -> int:
        """Audit records the disk refused."""
        return self._recorder.journal.write_errors

    def starts_last_hour(self) -> int:
        return self._recorder.journal.state.starts_within(3600, time.time())

    def stats(self) -> tuple[dict[tuple[str, str, str], int], dict[str, float]]:
        """Request counts; when each plan (by ID) was last started, kept across restarts by the audit log."""
        return self._recorder.stats(), self._recorder.journal.last_starts()

    def close(self) -> None:
        self._decisions.stop()
        self._tracker.close()
        self._announcer.close()
        self._recorder.journal.close()
