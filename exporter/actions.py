"""Guarded failover start. Every request goes through the same checks, in this order, and every decision
is written to the audit log before the caller hears of it:

authenticated -> plan known -> kill switch -> plan allowed for this caller -> restore point policy ->
(under the plan's lock) not a duplicate -> no session running -> not within the cooldown -> dry run? ->
"starting" on disk -> POST ?action=start -> "accepted" on disk -> follow the EM task in the background.

HTTP status codes follow Alertmanager's retry rules: 4xx for what will never succeed (it does not
retry), 5xx only for what may succeed later (EM down), so retries cannot storm.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from exporter.audit import AuditLog
from exporter.config import ActionSettings, Caller
from exporter.em.client import EMClient, EMError
from exporter.em.model import Plan, Session
from exporter.snapshot import Store

log = logging.getLogger(__name__)

SOURCES = ("api", "alertmanager")
OUTCOMES = (
    "accepted",
    "dry_run",
    "duplicate",
    "conflict",
    "forbidden",
    "unauthorized",
    "invalid",
    "em_error",
)


@dataclass(frozen=True)
class StartRequest:
    plan_ref: str  # plan name or ID
    source: str  # "api" or "alertmanager"
    start_date: datetime | None = None  # None: StartNow (latest restore points)
    dry_run: bool = False
    reason: str = ""
    idempotency_key: str | None = None
    alert_fingerprint: str | None = None
    remote: str = ""


@dataclass(frozen=True)
class Decision:
    request_id: str
    outcome: str  # one of OUTCOMES
    status: int
    reason: str
    plan: str | None = None
    plan_id: str | None = None
    em_task_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"request_id": self.request_id, "outcome": self.outcome, "reason": self.reason}
        if self.plan is not None:
            out["plan"] = self.plan
            out["plan_id"] = self.plan_id
        if self.em_task_id is not None:
            out["em_task"] = {"id": self.em_task_id}
        return out


# EM errors after the start request was sent with no readable answer back: it may have been carried out.
# (connect, tls and logon fail before sending; an HTTP error status is EM saying it did not start it.)
ANSWER_LOST = frozenset({"timeout", "protocol", "parse", "content_type", "too_large"})


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
        self.audit = AuditLog(settings.audit_log)
        self.state = self.audit.load()
        if self.audit.skipped_on_load:
            log.warning(
                "audit log: skipped %d unreadable line(s) (cut short by a crash?)", self.audit.skipped_on_load
            )
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._stats_lock = threading.Lock()
        self.requests: Counter[tuple[str, str, str]] = Counter()  # (plan, source, outcome)
        self._stop = threading.Event()
        self._trackers: list[threading.Thread] = []

    # -- authentication ----------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> Caller | None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        found = None
        given = token.strip().encode()
        for caller in self.settings.callers:
            # compare against every token, so timing says nothing about which one nearly matched
            if hmac.compare_digest(given, caller.token.reveal().encode()):
                found = caller
        return found

    # -- decisions ---------------------------------------------------------------------------

    def refuse(
        self,
        source: str,
        outcome: str,
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
            plan_ref=plan_ref or "", source=source, remote=remote, alert_fingerprint=fingerprint
        )
        # Only an authenticated caller's plan name may become a label value or be confirmed in the answer.
        plan = None if caller is None else _resolve(self.store.current().plans, req.plan_ref)[0]
        return self._decide(_request_id(), caller, req, plan, outcome, status, reason)

    def start(self, caller: Caller, req: StartRequest) -> Decision:
        rid = _request_id()
        snap = self.store.current()
        plan, why = _resolve(snap.plans, req.plan_ref)
        if plan is None:
            if not snap.plans and not snap.up:
                # We have not read the plans from EM yet: this may work in a moment.
                return self._decide(rid, caller, req, None, "em_error", 503, "plans not read from EM yet")
            return self._decide(rid, caller, req, None, "invalid", 404, why)
        if self.settings.kill_switch:
            return self._decide(rid, caller, req, plan, "forbidden", 403, "actions.kill_switch is on")
        allowed = caller.plans if caller.plans is not None else self.settings.allowed_plans
        if plan.name not in allowed and plan.id not in allowed:
            return self._decide(
                rid, caller, req, plan, "forbidden", 403, f"plan not allowed for caller {caller.name!r}"
            )
        start_date, why = self._policy(plan, req.start_date)
        if why:
            return self._decide(rid, caller, req, plan, "invalid", 422, why)
        with self._lock_for(plan.id):
            return self._start_locked(rid, caller, req, plan, start_date)

    def _start_locked(
        self, rid: str, caller: Caller, req: StartRequest, plan: Plan, start_date: datetime | None
    ) -> Decision:
        now = time.time()
        if req.idempotency_key and req.idempotency_key in self.state.used_keys:
            first = self.state.used_keys[req.idempotency_key]
            return self._decide(
                rid,
                caller,
                req,
                plan,
                "duplicate",
                200,
                f"already handled as request {first.get('request_id')}",
                em_task_id=first.get("em_task_id"),
            )
        latest = next(
            (
                s
                for s in self.store.current().sessions
                if (s.backup_server, s.plan) == (plan.backup_server, plan.name)
            ),
            None,
        )
        if latest is not None and latest.active:
            return self._decide(
                rid,
                caller,
                req,
                plan,
                "conflict",
                409,
                f"failover session {latest.id} is still {latest.state}",
            )
        last = self.state.last_start.get(plan.id)
        before = self.state.previous_session.get(plan.id, "")
        if last is not None and _not_seen_yet(latest, before, last, now, self.settings.task_timeout_seconds):
            # We asked EM to start it, and the session that start makes has not shown up yet: it runs.
            return self._decide(
                rid,
                caller,
                req,
                plan,
                "conflict",
                409,
                f"a start was requested {now - last:.0f}s ago and its session is not visible yet",
            )
        if last is not None and now - last < self.settings.cooldown_seconds:
            return self._decide(
                rid,
                caller,
                req,
                plan,
                "conflict",
                409,
                f"started {now - last:.0f}s ago; cooldown is {self.settings.cooldown_seconds:.0f}s",
            )
        spec = {
            "start": "now" if start_date is None else start_date.astimezone(UTC).isoformat(),
            "previous_session_id": None if latest is None else latest.id,
        }
        if self.settings.dry_run or req.dry_run:
            return self._decide(
                rid,
                caller,
                req,
                plan,
                "dry_run",
                200,
                "dry run: every check passed, nothing sent",
                extra=spec,
            )
        # On disk before EM hears of it: if we die now, a restart treats the start as having happened.
        self._write(rid, caller, req, plan, "starting", 0, "asking EM to start the plan", extra=spec)
        try:
            task = self.client.start_plan(plan.id, start_date)
        except EMError as exc:
            if exc.reason in ANSWER_LOST:
                # The request went out and EM's answer was lost or unreadable: EM may have started the
                # plan. Count it as started and never try again on our own (a retry could start it twice).
                return self._decide(
                    rid,
                    caller,
                    req,
                    plan,
                    "em_error",
                    504,
                    f"EM's answer was lost: {exc}; the start may have happened, check EM",
                    audit_outcome="em_unknown",
                )
            if exc.status is not None and 400 <= exc.status < 500:
                return self._decide(rid, caller, req, plan, "em_error", 422, f"EM refused the start: {exc}")
            return self._decide(rid, caller, req, plan, "em_error", 503, f"EM unavailable: {exc}")
        decision = self._decide(
            rid,
            caller,
            req,
            plan,
            "accepted",
            202,
            f"EM accepted the start ({task.state})",
            em_task_id=task.id,
            extra=spec,
        )
        self.wake_poller()
        self._track(decision, task.id)
        return decision

    # -- helpers -----------------------------------------------------------------------------

    def _policy(self, plan: Plan, start_date: datetime | None) -> tuple[datetime | None, str]:
        policies = self.settings.restore_point_min_age_seconds
        min_age = policies.get(plan.name, policies.get(plan.id))
        if min_age is None:
            return start_date, ""
        newest_allowed = datetime.fromtimestamp(time.time() - min_age, UTC)
        if start_date is None:
            return newest_allowed, ""
        if start_date > newest_allowed:
            return None, f"plan policy: restore points must be at least {min_age / 60:.0f} minutes old"
        return start_date, ""

    def _lock_for(self, plan_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(plan_id, threading.Lock())

    def _decide(
        self,
        rid: str,
        caller: Caller | None,
        req: StartRequest,
        plan: Plan | None,
        outcome: str,
        status: int,
        reason: str,
        *,
        em_task_id: str | None = None,
        extra: dict[str, Any] | None = None,
        audit_outcome: str | None = None,
    ) -> Decision:
        decision = Decision(
            request_id=rid,
            outcome=outcome,
            status=status,
            reason=reason,
            plan=None if plan is None else plan.name,
            plan_id=None if plan is None else plan.id,
            em_task_id=em_task_id,
        )
        self._write(
            rid,
            caller,
            req,
            plan,
            audit_outcome or outcome,
            status,
            reason,
            em_task_id=em_task_id,
            extra=extra,
        )
        with self._stats_lock:
            self.requests[(decision.plan or "", req.source, outcome)] += 1
        self.store.publish()  # new counts: the next scrape renders afresh
        log.info(
            "start request %s: %s %s (%s) plan=%s caller=%s source=%s",
            rid,
            outcome,
            status,
            reason,
            decision.plan or req.plan_ref[:100],
            None if caller is None else caller.name,
            req.source,
        )
        return decision

    def _write(
        self,
        rid: str,
        caller: Caller | None,
        req: StartRequest,
        plan: Plan | None,
        outcome: str,
        status: int,
        reason: str,
        *,
        em_task_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        record = {
            "request_id": rid,
            "source": req.source,
            "caller": None if caller is None else caller.name,
            "remote": req.remote,
            "plan_ref": req.plan_ref[:200],
            "plan": None if plan is None else plan.name,
            "plan_id": None if plan is None else plan.id,
            "alert_fingerprint": req.alert_fingerprint,
            "idempotency_key": req.idempotency_key,
            "dry_run": req.dry_run or self.settings.dry_run,
            "reason_given": req.reason[:500] or None,
            "outcome": outcome,
            "status": status,
            "reason": reason,
            "em_task_id": em_task_id,
            **(extra or {}),
        }
        written = self.audit.write(record)
        with self._stats_lock:
            self.state.apply(written)

    # -- following the EM task -----------------------------------------------------------------

    def _track(self, decision: Decision, task_id: str) -> None:
        t = threading.Thread(
            target=self._follow, args=(decision, task_id), daemon=True, name=f"task-{task_id}"
        )
        self._trackers.append(t)
        t.start()

    def _follow(self, decision: Decision, task_id: str) -> None:
        deadline = time.monotonic() + self.settings.task_timeout_seconds
        base = {
            "request_id": decision.request_id,
            "plan": decision.plan,
            "plan_id": decision.plan_id,
            "em_task_id": task_id,
        }
        uncollected = False  # EM said OperationFinished: done on the backup server, not collected yet
        while not self._stop.wait(self.settings.task_poll_interval_seconds):
            if time.monotonic() > deadline:
                if uncollected:
                    reason = "EM task finished on the backup server; EM had not collected it in time"
                    self.audit.write({**base, "outcome": "task_uncollected", "reason": reason})
                else:
                    self.audit.write(
                        {**base, "outcome": "task_timeout", "reason": "EM task did not finish in time"}
                    )
                return
            try:
                task = self.client.task(task_id)
            except EMError as exc:
                if exc.status == 404:  # tasks live with EM's logon session; a re-logon loses them
                    self.audit.write({**base, "outcome": "task_lost", "reason": str(exc)})
                    return
                continue
            if task.state == "OperationFinished" and not uncollected:
                # Not a failure and not a time-out: EM shows the result after its next collection from
                # the backup server (every 15 minutes by default).
                uncollected = True
                self.audit.write({**base, "outcome": "task_done_uncollected", "reason": _UNCOLLECTED})
                continue
            if task.state == "Finished":
                ok = task.success is not False
                self.audit.write(
                    {
                        **base,
                        "outcome": "task_finished" if ok else "task_failed",
                        "reason": task.message,
                        "em_session_id": task.related_session_id,
                    }
                )
                self.wake_poller()  # the new session shows on /metrics at the next poll
                return

    def close(self) -> None:
        self._stop.set()
        for t in self._trackers:
            t.join(timeout=5)
        self.audit.close()

    # -- for the collector ---------------------------------------------------------------------

    def stats(self) -> tuple[dict[tuple[str, str, str], int], dict[str, float]]:
        """Request counts; when each plan (by ID) was last started, kept across restarts by the audit log."""
        with self._stats_lock:
            return dict(self.requests), dict(self.state.last_start)


_UNCOLLECTED = (
    "done on the backup server; EM shows the session after its next data collection (15 min by default)"
)


def _not_seen_yet(
    latest: Session | None, before: str, requested: float, now: float, give_up_after: float
) -> bool:
    """True while the plan's latest session is still the one from before our start request (at most
    give_up_after seconds): the session that start made is not visible yet, so it counts as running."""
    if now - requested > give_up_after:
        return False  # never showed up: do not block the plan for ever
    return (latest.id if latest is not None else "") == before


def _resolve(plans: tuple[Plan, ...], ref: str) -> tuple[Plan | None, str]:
    by_id = [p for p in plans if p.id == ref]
    if by_id:
        return by_id[0], ""
    by_name = [p for p in plans if p.name == ref]
    if len(by_name) > 1:
        return None, "plan name is ambiguous (several backup servers have it): use the plan ID"
    if by_name:
        return by_name[0], ""
    return None, "no such cloud failover plan"


def _request_id() -> str:
    return uuid.uuid4().hex
