"""Scenarios for the EM simulator: which plans and VMs exist, how their failovers run, what they end with.

A scenario is YAML. Durations are in scenario seconds; `time_scale` makes them run that many times
faster on the wall clock (a 20-minute failover with `time_scale: 60` takes 20 s). Restore point ages
are facts about the data, not waits, so they are never scaled.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from exporter.em.errors import ParseError
from exporter.em.timefmt import parse_time
from exporter.simulator.profiles import get_profile
from exporter.simulator.scenario_model import (
    REPLICATION,
    RESULTS,
    ROLES,
    FixedSession,
    PlanSpec,
    Scenario,
    ScenarioError,
    VmSpec,
    stable_id,
)
from exporter.simulator.views import SessionView, TaskView

__all__ = [
    "FixedSession",
    "PlanSpec",
    "Scenario",
    "ScenarioError",
    "VmSpec",
    "load_scenario",
    "scenario_from_dict",
    "stable_id",
]


def _req(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise ScenarioError(f"{where}: missing '{key}'")
    return d[key]


def _num(d: dict[str, Any], key: str, where: str, default: float | None) -> float | None:
    v = d.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
        raise ScenarioError(f"{where}.{key}: must be a non-negative number, got {v!r}")
    return float(v)


def _time(value: Any, where: str) -> float | None:
    if value is None:
        return None
    try:
        return parse_time(str(value).replace("+00:00", "Z"))
    except ParseError as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def _result(value: Any, where: str) -> str:
    if value not in RESULTS:
        raise ScenarioError(f"{where}: must be one of {', '.join(RESULTS)}, got {value!r}")
    return str(value)


def _vm(d: Any, where: str) -> VmSpec:
    if isinstance(d, str):
        return VmSpec(name=d)
    if not isinstance(d, dict):
        raise ScenarioError(f"{where}: must be a name or a mapping")
    stall = d.get("stall_at_progress")
    if stall is not None and (not isinstance(stall, int) or not 0 <= stall <= 99):
        raise ScenarioError(f"{where}.stall_at_progress: must be an integer 0-99")
    fail_at = _num(d, "fail_at", where, 0.5)
    assert fail_at is not None
    if fail_at > 1:
        raise ScenarioError(f"{where}.fail_at: must be between 0 and 1")
    replication = d.get("replication", "running")
    if replication not in REPLICATION:
        raise ScenarioError(f"{where}.replication: must be one of {', '.join(REPLICATION)}")
    if d.get("replication_interval_seconds") == 0:
        raise ScenarioError(f"{where}.replication_interval_seconds: must be more than 0")
    return VmSpec(
        name=str(_req(d, "name", where)),
        replication=str(replication),
        replication_interval=_num(d, "replication_interval_seconds", where, None),
        duration=max(1.0, _num(d, "duration_seconds", where, 300.0) or 1.0),
        result=_result(d.get("result", "Success"), f"{where}.result"),
        restore_point_age=_num(d, "restore_point_age_seconds", where, 3600.0) or 0.0,
        fail_at=fail_at,
        stall_at_progress=stall,
        failure_message=str(d.get("failure_message") or ""),
    )


def _plan(d: Any, where: str) -> PlanSpec:
    if not isinstance(d, dict):
        raise ScenarioError(f"{where}: must be a mapping")
    name = str(_req(d, "name", where))
    server = str(d.get("backup_server", "vbr01.example.local"))
    vms = d.get("vms", [])
    if not isinstance(vms, list):
        raise ScenarioError(f"{where}.vms: must be a list")
    history = []
    for i, h in enumerate(d.get("history", []) or []):
        if not isinstance(h, dict):
            raise ScenarioError(f"{where}.history[{i}]: must be a mapping")
        ago = _num(h, "ago_seconds", f"{where}.history[{i}]", None)
        if ago is None:
            raise ScenarioError(f"{where}.history[{i}]: missing 'ago_seconds'")
        in_dr = h.get("in_dr", False)
        if not isinstance(in_dr, bool):
            raise ScenarioError(f"{where}.history[{i}].in_dr: must be true or false")
        history.append((ago, _result(h.get("result", "Success"), f"{where}.history[{i}].result"), in_dr))
    return PlanSpec(
        name=name,
        id=str(d.get("id") or stable_id("plan", server, name)),
        tenant=str(d.get("tenant", name.split()[0])),
        backup_server=server,
        vms=tuple(_vm(v, f"{where}.vms[{i}]") for i, v in enumerate(vms)),
        vm_stagger=_num(d, "vm_stagger_seconds", where, 30.0) or 0.0,
        start_at=_num(d, "start_at_seconds", where, None),
        repeat_every=_num(d, "repeat_every_seconds", where, None),
        history=tuple(history),
        undo_after=_num(d, "undo_after_seconds", where, None),
    )


def _fixed_task(d: Any, where: str) -> tuple[TaskView, float]:
    if not isinstance(d, dict):
        raise ScenarioError(f"{where}: must be a mapping")
    point_time = _time(_req(d, "point_time", where), f"{where}.point_time")
    if point_time is None:
        raise ScenarioError(f"{where}.point_time: required")
    task = TaskView(
        vm=str(_req(d, "vm", where)),
        state=str(d.get("state", "Working")),
        result=str(d.get("result", "None")),
        progress=int(d.get("progress", 0)),
        creation_time=_time(d.get("creation_time"), f"{where}.creation_time"),
        end_time=_time(d.get("end_time"), f"{where}.end_time"),
        point_id=str(_req(d, "point_id", where)),
        point_name=str(_req(d, "point_name", where)),
    )
    return task, point_time


def _fixed_session(d: Any, where: str, servers: dict[str, str]) -> FixedSession:
    if not isinstance(d, dict):
        raise ScenarioError(f"{where}: must be a mapping")
    plan = str(_req(d, "plan", where))
    if plan not in servers:
        raise ScenarioError(f"{where}: session {d.get('id')} names unknown plan {plan!r}")
    tasks = [_fixed_task(t, f"{where}.tasks[{i}]") for i, t in enumerate(d.get("tasks", []) or [])]
    view = SessionView(
        id=str(_req(d, "id", where)),
        plan=plan,
        backup_server=servers[plan],
        state=str(d.get("state", "Working")),
        result=str(d.get("result", "None")),
        progress=int(d.get("progress", 0)),
        creation_time=_time(d.get("creation_time"), f"{where}.creation_time"),
        end_time=_time(d.get("end_time"), f"{where}.end_time"),
        tasks=tuple(t for t, _ in tasks),
    )
    return FixedSession(view=view, point_times={t.point_id: when for t, when in tasks if t.point_id})


def scenario_from_dict(d: Any, name: str = "scenario") -> Scenario:
    if not isinstance(d, dict):
        raise ScenarioError(f"{name}: must be a YAML mapping")
    plans = tuple(_plan(p, f"plans[{i}]") for i, p in enumerate(d.get("plans", []) or []))
    # EM does not document plan names as unique on a backup server: two tenants may each have a plan of
    # one name (the exporter must not merge them silently). Only a tenant's own duplicate is refused.
    names = [(p.backup_server, p.name, p.tenant) for p in plans]
    if len(set(names)) != len(names):
        raise ScenarioError("plans: one tenant has two plans of one name on one backup server")
    keys = [(p.backup_server, p.name) for p in plans]
    shared = {k for k in keys if keys.count(k) > 1}
    plans = tuple(
        dataclasses.replace(p, id=stable_id("plan", p.backup_server, p.name, p.tenant))
        if (p.backup_server, p.name) in shared and p.id == stable_id("plan", p.backup_server, p.name)
        else p
        for p in plans
    )
    if len({p.id for p in plans}) != len(plans):
        raise ScenarioError("plans: two plans share an id")
    servers = {p.name: p.backup_server for p in plans}
    sessions = tuple(
        _fixed_session(s, f"sessions[{i}]", servers) for i, s in enumerate(d.get("sessions", []) or [])
    )
    users = d.get("users", {"admin": "admin"})
    if not isinstance(users, dict) or not users:
        raise ScenarioError("users: must be a mapping of user name to password")
    roles = d.get("roles") or {}
    if not isinstance(roles, dict) or any(r not in ROLES for r in roles.values()):
        raise ScenarioError(f"roles: must map user names to one of {', '.join(ROLES)}")
    scale = _num(d, "time_scale", "scenario", 1.0) or 1.0
    case = d.get("json_case")
    if case not in (None, "pascal", "camel"):
        raise ScenarioError("json_case: must be 'pascal' or 'camel'")
    try:
        profile = get_profile(str(d.get("profile", "default")))
    except ValueError as exc:
        raise ScenarioError(f"profile: {exc}") from None
    return Scenario(
        name=str(d.get("name", name)),
        plans=plans,
        sessions=sessions,
        time_scale=scale,
        users={str(k): str(v) for k, v in users.items()},
        roles={str(k): str(v) for k, v in roles.items()},
        token_idle_timeout=_num(d, "token_idle_timeout_seconds", "scenario", 900.0) or 900.0,
        task_delay=_num(d, "task_delay_seconds", "scenario", 5.0) or 0.0,
        task_collect_delay=_num(d, "task_collect_delay_seconds", "scenario", 0.0) or 0.0,
        profile=profile,
        point_interval=_num(d, "point_interval_seconds", "scenario", 3600.0) or 3600.0,
        points_per_vm=int(_num(d, "points_per_vm", "scenario", 24) or 1),
        json_case=None if case is None else str(case),
        faults=_faults(d.get("faults")),
        collection_interval=_num(d, "collection_interval_seconds", "scenario", None),
        collection_duration=_num(d, "collection_duration_seconds", "scenario", 20.0) or 0.0,
    )


def _faults(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ScenarioError("faults: must be a mapping of fault switches")
    return {str(k): v for k, v in value.items()}


def builtin_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml")
        for p in resources.files(__package__).joinpath("scenarios").iterdir()
        if p.name.endswith(".yaml")
    )


def load_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario by name (`demo`, `seed`, ...) or a YAML file by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(f"cannot read scenario {name_or_path}: {exc.strerror}") from None
        label = path.name
    else:
        res = resources.files(__package__).joinpath("scenarios", f"{name_or_path}.yaml")
        if not res.is_file():
            raise ScenarioError(
                f"no built-in scenario {name_or_path!r}; built-in: {', '.join(builtin_names())}"
            )
        text = res.read_text(encoding="utf-8")
        label = name_or_path
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{label}: not valid YAML: {exc}") from None
    return scenario_from_dict(data, label)
