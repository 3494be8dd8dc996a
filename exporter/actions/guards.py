"""The checks a start request goes through, as pure functions of the request and what is known: the
same inputs always give the same answer, so each check is tested on its own and the engine only
strings them together (docs/actions.md has the order and the answers)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from exporter.actions.audit.state import AuditState
from exporter.actions.model import Outcome, StartRequest
from exporter.config import ActionSettings, Caller, PlanEntry
from exporter.em.errors import EMError
from exporter.em.model import Plan, Session


@dataclass(frozen=True)
class Refusal:
    outcome: Outcome
    status: int
    reason: str
    em_task_id: str | None = None


def resolve(plans: tuple[Plan, ...], ref: str) -> tuple[Plan | None, str]:
    """The plan a request names, by ID or by name; a name several plans have is refused."""
    by_id = [p for p in plans if p.id == ref]
    if by_id:
        return by_id[0], ""
    by_name = [p for p in plans if p.name == ref]
    if len(by_name) > 1:
        return None, "plan name is ambiguous (several plans have it): use the plan ID"
    if by_name:
        return by_name[0], ""
    return None, "no such cloud failover plan"


def admit(
    plan: Plan, caller: Caller, req: StartRequest, settings: ActionSettings, now: float, *, kill_switch: bool
) -> tuple[datetime | None, Refusal | None]:
    """Kill switch, the caller's plans, the plan's restore point policy. Returns the StartDate to send."""
    if kill_switch:
        return None, Refusal(
            "forbidden", 403, "the kill switch is on (actions.kill_switch or PUT /api/v1/switches)"
        )
    if not allowed(caller, plan, settings):
        return None, Refusal("forbidden", 403, not_allowed(caller))
    policies = settings.restore_point_min_age_seconds
    min_age = policies.get(plan.name, policies.get(plan.id))
    if min_age is None:
        return req.start_date, None
    newest_allowed = datetime.fromtimestamp(now - min_age, UTC)
    if req.start_date is None:
        return newest_allowed, None
    if req.start_date > newest_allowed:
        why = f"plan policy: restore points must be at least {min_age / 60:.0f} minutes old"
        return None, Refusal("invalid", 422, why)
    return req.start_date, None


def vms_in_dr(req: StartRequest, in_dr: tuple[str, ...]) -> Refusal | None:
    """A plan some of whose VMs already run from their replicas (Failover) is not started again unless
    the request says so: that is a failover over a failover, not a first one."""
    if not in_dr or req.allow_vms_in_dr:
        return None
    shown = ", ".join(in_dr[:5]) + (f" and {len(in_dr) - 5} more" if len(in_dr) > 5 else "")
    why = (
        f"{len(in_dr)} of the plan's VMs run in DR already ({shown}); to start it anyway, ask with "
        '"allow_vms_in_dr": true'
    )
    return Refusal("conflict", 409, why)


def within_limits(plan: Plan, state: AuditState, settings: ActionSettings, now: float) -> Refusal | None:
    """The global limits: starts in the last hour across all plans, and on the plan's backup server."""
    started = state.starts_within(3600, now)
    if started >= settings.max_starts_per_hour:
        limit = settings.max_starts_per_hour
        why = f"{started} starts in the last hour reach actions.max_starts_per_hour ({limit})"
        return Refusal("conflict", 409, why)
    per_server = settings.max_starts_per_hour_per_backup_server
    if per_server:
        on_server = state.starts_within(3600, now, plan.backup_server)
        if on_server >= per_server:
            why = (
                f"{on_server} starts on {plan.backup_server} in the last hour reach "
                f"actions.max_starts_per_hour_per_backup_server ({per_server})"
            )
            return Refusal("conflict", 409, why)
    return None


def pending_cap(caller: Caller | None, state: AuditState, settings: ActionSettings) -> Refusal | None:
    """At most actions.max_pending_per_caller decisions of one caller wait at once."""
    name = None if caller is None else caller.name
    waiting = sum(1 for d in state.decisions.values() if d.caller == name)
    if waiting < settings.max_pending_per_caller:
        return None
    why = f"caller {name!r} has {waiting} decisions waiting (actions.max_pending_per_caller)"
    return Refusal("conflict", 409, why)


def not_allowed(caller: Caller) -> str:
    """The one answer to a plan a caller may not start, known to EM or not."""
    return f"plan not allowed for caller {caller.name!r}"


def allowed(caller: Caller, plan: Plan, settings: ActionSettings) -> bool:
    """The caller's own plan list, or the global one."""
    entries = caller.plans if caller.plans is not None else settings.allowed_plans
    return any(_names(entry, plan) for entry in entries)


def approval_required(plan: Plan, settings: ActionSettings) -> bool:
    """The plan's own approval setting (by name or ID), or the global one."""
    mode = settings.plan_approval.get(plan.name, settings.plan_approval.get(plan.id, settings.approval))
    return mode == "required"


def _names(entry: PlanEntry, plan: Plan) -> bool:
    if isinstance(entry, str):
        return entry in (plan.name, plan.id)
    server, ref = entry
    return server == plan.backup_server and ref in (plan.name, plan.id)


def scoped_key(caller: Caller, plan: Plan, key: str | None) -> str | None:
    """An idempotency key is one caller's, for one plan: another caller's same key is another request,
    and neither can learn of the other's."""
    return None if key is None else f"{caller.name}|{plan.id}|{key}"


def clear_to_start(
    plan: Plan,
    req: StartRequest,
    state: AuditState,
    latest: Session | None,
    settings: ActionSettings,
    now: float,
    legacy: str | None = None,
    request_id: str = "",
) -> Refusal | None:
    """Under the plan's lock: not a repeat, nothing running, no start still on its way, no cooldown.
    `request_id` is an approved decision's own: its key and its pending decision do not stop it."""
    first = _used(state, plan, req.idempotency_key, legacy)
    if first is not None and not (request_id and first.get("request_id") == request_id):
        return Refusal(
            "duplicate",
            200,
            f"already handled as request {first.get('request_id')}",
            em_task_id=first.get("em_task_id"),
        )
    if latest is not None and latest.active:
        return Refusal("conflict", 409, f"failover session {latest.id} is still {latest.state}")
    waiting = state.decision_for(plan.id)
    if waiting is not None and waiting != request_id:
        return Refusal("conflict", 409, f"decision {waiting} for this plan waits for approval")
    if plan.id in state.unwritten_plans:
        why = "its last start is known but not yet on the audit log (the disk refuses it): held"
        return Refusal("conflict", 409, why)
    if state.torn_start_at is not None and now - state.torn_start_at < settings.cooldown_seconds:
        why = "the audit log ends in a start cut short that names no plan: every plan is held for a cooldown"
        return Refusal("conflict", 409, why)
    last = state.last_start.get(plan.id)
    if last is None:
        return None
    before = state.previous_session.get(plan.id, "")
    if _not_seen_yet(latest, before, last, now, settings.task_timeout_seconds):
        # We asked EM to start it, and the session that start makes has not shown up yet: it runs.
        why = f"a start was requested {now - last:.0f}s ago and its session is not visible yet"
        return Refusal("conflict", 409, why)
    if now - last < settings.cooldown_seconds:
        why = f"started {now - last:.0f}s ago; cooldown is {settings.cooldown_seconds:.0f}s"
        return Refusal("conflict", 409, why)
    return None


def _used(state: AuditState, plan: Plan, key: str | None, legacy: str | None) -> dict[str, Any] | None:
    """The decision that used this key before, if any: the caller's own for this plan, or (logs from
    before keys were scoped) an unscoped key's for this same plan."""
    if key and key in state.used_keys:
        return state.used_keys[key]
    if legacy and legacy in state.used_keys and state.used_keys[legacy].get("plan_id") == plan.id:
        return state.used_keys[legacy]
    return None


def _not_seen_yet(
    latest: Session | None, before: str, requested: float, now: float, give_up_after: float
) -> bool:
    """True while the plan's latest session is still the one from before our start request (at most
    give_up_after seconds): the session that start made is not visible yet, so it counts as running."""
    if now - requested > give_up_after:
        return False  # never showed up: do not block the plan for ever
    return (latest.id if latest is not None else "") == before


def em_failure(exc: EMError) -> tuple[int, str, str | None]:
    """What a start EM did not accept says: the HTTP status, the reason, and `em_unknown` for the audit
    log when the start may have happened all the same."""
    if not exc.sent:
        # No connection, or the logon before the request failed: nothing reached EM, and a retry may
        # work later (EM restarting, a directory down). The answer names no EM account.
        why = "EM unavailable: the start request was not sent" + (
            "; EM refused the exporter's logon (check its EM account)" if exc.reason == "logon" else ""
        )
        return 503, why, None
    if exc.from_em and exc.status is not None and 400 <= exc.status < 500 and exc.status != 401:
        # EM's own Error document refusing the request itself: it did not start the plan.
        return 422, f"EM refused the start: {exc}", None
    if exc.from_em and exc.status == 503:
        # EM's own "temporarily overloaded" (documented for overload and maintenance): not taken on.
        return 503, f"EM unavailable: {exc}", None
    # The request went out and no answer says EM refused it: no answer, an unreadable one, a 5xx, a 401
    # (our logon was checked just before; something in front of EM may say 401 after EM acted), or a
    # proxy's or gateway's page (a 502 or 504 while EM acted). EM may have started the plan: count it
    # as started and never try again on our own (a retry could start it twice).
    return (
        504,
        f"EM's answer does not say it refused: {exc}; the start may have happened, check EM",
        "em_unknown",
    )
