"""The start guards as pure functions: each check, its answer, and the order they come in."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from exporter.actions import guards
from exporter.actions.audit.state import AuditState
from exporter.actions.model import StartRequest
from exporter.config import ActionSettings, Caller
from exporter.em.model import Plan, Session
from exporter.secret import Secret

PLAN = Plan(id="p1", name="ACME", backup_server="vbr01", tenant="ACME", vms=("a",))
CALLER = Caller("runbook", Secret("x" * 20))
SETTINGS = ActionSettings(
    enabled=True, allowed_plans=("ACME",), cooldown_seconds=600, task_timeout_seconds=1200
)
NOW = 1_800_000_000.0
REQ = StartRequest(plan_ref="ACME", source="api")


def session(sid: str, state: str) -> Session:
    return Session(sid, "ACME", "vbr01", state, "None", 0, NOW - 60, None, ())


def test_resolve_by_id_then_name_and_an_ambiguous_name_is_refused() -> None:
    twin = dataclasses.replace(PLAN, id="p2", tenant="Other")
    assert guards.resolve((PLAN,), "p1") == (PLAN, "")
    assert guards.resolve((PLAN,), "ACME") == (PLAN, "")
    assert guards.resolve((PLAN, twin), "p2") == (twin, "")
    plan, why = guards.resolve((PLAN, twin), "ACME")
    assert plan is None and "ambiguous" in why
    assert guards.resolve((PLAN,), "nope") == (None, "no such cloud failover plan")


def test_admit_kill_switch_allowlist_and_policy() -> None:
    assert guards.admit(PLAN, CALLER, REQ, SETTINGS, NOW, kill_switch=False) == (None, None)
    _, r = guards.admit(PLAN, CALLER, REQ, SETTINGS, NOW, kill_switch=True)
    assert r is not None and (r.outcome, r.status) == ("forbidden", 403)
    _, r = guards.admit(
        PLAN, dataclasses.replace(CALLER, plans=("other",)), REQ, SETTINGS, NOW, kill_switch=False
    )
    assert r is not None and (r.outcome, r.status) == ("forbidden", 403) and "runbook" in r.reason
    policy = dataclasses.replace(SETTINGS, restore_point_min_age_seconds={"ACME": 3600.0})
    when, r = guards.admit(PLAN, CALLER, REQ, policy, NOW, kill_switch=False)
    assert r is None and when == datetime.fromtimestamp(NOW - 3600, UTC)  # start_now becomes a StartDate
    too_new = dataclasses.replace(REQ, start_date=datetime.fromtimestamp(NOW - 60, UTC))
    _, r = guards.admit(PLAN, CALLER, too_new, policy, NOW, kill_switch=False)
    assert r is not None and (r.outcome, r.status) == ("invalid", 422)


def test_clear_to_start_duplicate_running_unseen_and_cooldown() -> None:
    state = AuditState()
    assert guards.clear_to_start(PLAN, REQ, state, None, SETTINGS, NOW) is None
    state.used_keys["k"] = {"request_id": "r1", "em_task_id": "task-1"}
    r = guards.clear_to_start(PLAN, dataclasses.replace(REQ, idempotency_key="k"), state, None, SETTINGS, NOW)
    assert r is not None and (r.outcome, r.status, r.em_task_id) == ("duplicate", 200, "task-1")
    r = guards.clear_to_start(PLAN, REQ, state, session("s1", "Working"), SETTINGS, NOW)
    assert r is not None and (r.outcome, r.status) == ("conflict", 409) and "s1" in r.reason
    # a start asked 100 s ago whose session is not visible yet still counts as running...
    state.last_start["p1"], state.previous_session["p1"] = NOW - 100, "s0"
    r = guards.clear_to_start(PLAN, REQ, state, session("s0", "Stopped"), SETTINGS, NOW)
    assert r is not None and "not visible yet" in r.reason
    # ...once its session shows, the cooldown holds it...
    r = guards.clear_to_start(PLAN, REQ, state, session("s9", "Stopped"), SETTINGS, NOW)
    assert r is not None and "cooldown" in r.reason
    # ...and after the cooldown the plan may start again
    assert guards.clear_to_start(PLAN, REQ, state, session("s9", "Stopped"), SETTINGS, NOW + 600) is None
