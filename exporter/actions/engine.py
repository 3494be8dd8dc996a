"""Guarded failover start. Every request goes through the same checks, in this order, and every decision
is written to the audit log before the caller hears of it:

authenticated -> plan known -> kill switch -> plan allowed for this caller -> restore point policy ->
(under the plan's lock) not a duplicate -> no session running -> not within the cooldown -> dry run? ->
"starting" on disk -> POST ?action=start -> "accepted" on disk -> follow the EM task in the background.

HTTP status codes follow Alertmanager's retry rules: 4xx for what will never succeed (it does not
retry), 5xx only for what may succeed later (EM down), so retries cannot storm.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from exporter.actions import guards
from exporter.actions.audit import AuditWriteError
from exporter.actions.model import Attempt, Decision, Outcome, StartRequest
from exporter.actions.recorder import Recorder
from exporter.actions.tracker import TaskTracker
from exporter.config import ActionSettings, Caller
from exporter.em.errors import EMError
from exporter.http.auth import bearer, matching
from exporter.polling.snapshot import Store

if TYPE_CHECKING:  # types only
    from exporter.em.client import EMClient


class Actions:
    def __init__(
        self,
        settings: ActionSettings,
        client: EMClient,
        store: Store,
        *,
        wake_poller: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.store = store
        self.wake_poller = wake_poller
        self.recorder = Recorder(settings.audit_log, settings.dry_run, store, settings.audit_log_rotate_bytes)
        self.tracker = TaskTracker(client, self.recorder, settings, wake_poller)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._limits_lock = threading.Lock()

    def authenticate(self, authorization: str | None) -> Caller | None:
        found = matching(bearer(authorization), [c.token for c in self.settings.callers])
        return None if found is None else self.settings.callers[found]

    def refuse(
        self,
        source: str,
        outcome: Outcome,
        status: int,
        reason: str,
        *,
        caller: Caller | None = None,
        remote: str = "",
        plan_ref: str | None = None,
        fingerprint: str | None = None,
    ) -> Decision:
        """Record a request turned away before its checks could run (bad token, bad body, ...)."""
        req = StartRequest(
            plan_ref=plan_ref or "",
            source="alertmanager" if source == "alertmanager" else "api",
            remote=remote,
            alert_fingerprint=fingerprint,
        )
        if caller is None and outcome == "unauthorized":
            return self.recorder.unauthenticated(Attempt(_request_id(), None, req, None), reason)
        # Only an authenticated caller's plan name may become a label value or be confirmed in the answer.
        plan = None if caller is None else guards.resolve(self.store.current().plans, req.plan_ref)[0]
        return self.recorder.decide(Attempt(_request_id(), caller, req, plan), outcome, status, reason)

    def start(self, caller: Caller, req: StartRequest) -> Decision:
        snap = self.store.current()
        plan, why = guards.resolve(snap.plans, req.plan_ref)
        attempt = Attempt(_request_id(), caller, req, plan)
        if plan is None:
            if not snap.plans and not snap.up:
                # We have not read the plans from EM yet: this may work in a moment.
                return self.recorder.decide(attempt, "em_error", 503, "plans not read from EM yet")
            return self.recorder.decide(attempt, "invalid", 404, why)
        start_date, refusal = guards.admit(plan, caller, req, self.settings, time.time())
        if refusal is not None:
            return self.recorder.decide(attempt, refusal.outcome, refusal.status, refusal.reason)
        scoped = replace(req, idempotency_key=guards.scoped_key(caller, plan, req.idempotency_key))
        with self._lock_for(plan.id):
            return self._start_locked(replace(attempt, request=scoped), start_date, req.idempotency_key)

    def _start_locked(
        self, attempt: Attempt, start_date: datetime | None, legacy_key: str | None
    ) -> Decision:
        plan = attempt.plan
        assert plan is not None
        latest = next(
            (
                s
                for s in self.store.current().sessions
                if (s.backup_server, s.plan) == (plan.backup_server, plan.name)
            ),
            None,
        )
        refusal = guards.clear_to_start(
            plan, attempt.request, self.recorder.journal.state, latest, self.settings, time.time(), legacy_key
        )
        if refusal is not None:
            return self.recorder.decide(
                attempt, refusal.outcome, refusal.status, refusal.reason, em_task_id=refusal.em_task_id
            )
        spec = {
            "start": "now" if start_date is None else start_date.astimezone(UTC).isoformat(),
            "previous_session_id": None if latest is None else latest.id,
        }
        if self.settings.dry_run or attempt.request.dry_run:
            return self.recorder.decide(
                attempt, "dry_run", 200, "dry run: every check passed, nothing sent", extra=spec
            )
        # The limits across plans are checked, and the start put on disk, under one lock: requests for
        # many plans at once cannot all pass the check before any of them counts.
        with self._limits_lock:
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
            return self._em_failed(attempt, exc)
        decision = self.recorder.decide(
            attempt, "accepted", 202, f"EM accepted the start ({task.state})", em_task_id=task.id, extra=spec
        )
        self.wake_poller()
        self.tracker.track(decision, task.id)
        return decision

    def _em_failed(self, attempt: Attempt, exc: EMError) -> Decision:
        if not exc.sent:
            # No connection, or the logon before the request failed: nothing reached EM, and a retry
            # may work later (EM restarting, a directory down). The answer names no EM account.
            why = "EM unavailable: the start request was not sent" + (
                "; EM refused the exporter's logon (check its EM account)" if exc.reason == "logon" else ""
            )
            return self.recorder.decide(attempt, "em_error", 503, why)
        if exc.from_em and exc.status is not None and 400 <= exc.status < 500:
            # EM's own Error document refusing the request itself: it did not start the plan.
            return self.recorder.decide(attempt, "em_error", 422, f"EM refused the start: {exc}")
        if exc.from_em and exc.status == 503:
            # EM's own "temporarily overloaded" (documented for overload and maintenance): not taken on.
            return self.recorder.decide(attempt, "em_error", 503, f"EM unavailable: {exc}")
        # The request went out and no answer says EM refused it: no answer, an unreadable one, a 5xx, or
        # a proxy's or gateway's page (a 502 or 504 while EM acted). EM may have started the plan: count
        # it as started and never try again on our own (a retry could start it twice).
        why = f"EM's answer does not say it refused: {exc}; the start may have happened, check EM"
        return self.recorder.decide(attempt, "em_error", 504, why, audit_outcome="em_unknown")

    def _lock_for(self, plan_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(plan_id, threading.Lock())

    def close(self) -> None:
        self.tracker.close()
        self.recorder.journal.close()

    def starts_last_hour(self) -> int:
        return self.recorder.journal.state.starts_within(3600, time.time())

    def stats(self) -> tuple[dict[tuple[str, str, str], int], dict[str, float]]:
        """Request counts; when each plan (by ID) was last started, kept across restarts by the audit log."""
        return self.recorder.stats(), self.recorder.journal.last_starts()


def _request_id() -> str:
    return uuid.uuid4().hex
