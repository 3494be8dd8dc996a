"""The `actions:` section: caller tokens and roles (from their own file), allowed plans, plan policies,
approval mode."""

from __future__ import annotations

import logging
from dataclasses import fields
from pathlib import Path
from typing import Any

from exporter.config import (
    APPROVAL_MODES,
    ROLES,
    ActionSettings,
    Caller,
    ConfigError,
    NotificationTarget,
    PlanEntry,
)
from exporter.config_values import bool_, mapping, number, numbers, read_yaml, string
from exporter.secret import Secret

log = logging.getLogger(__name__)

MIN_TOKEN_LENGTH = 16
ACTION_KEYS = {f.name for f in fields(ActionSettings)} - {
    "callers",
    "restore_point_min_age_seconds",
    "plan_approval",
} | {"tokens_file", "plans"}
PLAN_KEYS = {"restore_point_min_age_minutes", "approval"}


def _plan_list(value: Any, where: str) -> tuple[PlanEntry, ...]:
    """Plan names or IDs, or {backup_server: ..., plan: ...} to name one server's plan only."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"{where}: must be a list of plan names or IDs")
    out: list[PlanEntry] = []
    for i, p in enumerate(value):
        if isinstance(p, str) and p:
            out.append(p)
        elif (
            isinstance(p, dict)
            and set(p) == {"backup_server", "plan"}
            and all(isinstance(v, str) and v for v in p.values())
        ):
            out.append((p["backup_server"], p["plan"]))
        else:
            raise ConfigError(
                f"{where}[{i}]: must be a plan name or ID, or a mapping of backup_server and plan"
            )
    return tuple(out)


def _token(value: Any, where: str) -> Secret:
    if not isinstance(value, str) or len(value.strip()) < MIN_TOKEN_LENGTH:
        # short tokens can be guessed; the value itself is never echoed
        raise ConfigError(f"{where}: must be a string of at least {MIN_TOKEN_LENGTH} characters")
    return Secret(value.strip())


def _callers(path: str | None, env: dict[str, str]) -> tuple[Caller, ...]:
    callers: list[Caller] = []
    if path is not None:
        data = read_yaml(path)
        if Path(path).stat().st_mode & 0o077:
            log.warning("actions.tokens_file %s is open to others: chmod 600 it", path)
        for name, entry in data.items():
            where = f"actions.tokens_file {path}: {name}"
            if isinstance(entry, str):
                callers.append(Caller(name=str(name), token=_token(entry, where)))
            elif isinstance(entry, dict):
                unknown = set(entry) - {"token", "plans", "roles"}
                if unknown:
                    raise ConfigError(
                        f"{where}.{sorted(unknown)[0]}: unknown setting; known: plans, roles, token"
                    )
                plans = _plan_list(entry["plans"], f"{where}.plans") if "plans" in entry else None
                roles = entry.get("roles", ["starter"])
                if not isinstance(roles, list) or not roles or any(r not in ROLES for r in roles):
                    raise ConfigError(f"{where}.roles: must be a list of {', '.join(ROLES)}")
                token = _token(entry.get("token"), f"{where}.token")
                callers.append(Caller(name=str(name), token=token, plans=plans, roles=tuple(roles)))
            else:
                raise ConfigError(f"{where}: must be a token or a mapping with token and plans")
    if env.get("VEEAM_ACTION_TOKEN"):
        callers.append(Caller(name="env", token=_token(env["VEEAM_ACTION_TOKEN"], "VEEAM_ACTION_TOKEN")))
    names = [c.name for c in callers]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        why = f"caller {repeated[0][:60]!r} given twice; names must be unique"
        raise ConfigError(f"actions.tokens_file: {why}")
    tokens = [c.token.reveal() for c in callers]
    if len(set(tokens)) != len(tokens):
        raise ConfigError("actions.tokens_file: two callers share a token; give each its own")
    return tuple(callers)


def action_settings(
    d: dict[str, Any], env: dict[str, str], notifications: tuple[NotificationTarget, ...] = ()
) -> ActionSettings:
    enabled = bool_(d, "enabled", "actions", False)
    if not enabled:
        return ActionSettings()
    callers = _callers(string(d, "tokens_file", "actions"), env)
    if not callers:
        raise ConfigError(
            "actions.tokens_file: actions are enabled but no caller token is set "
            "(actions.tokens_file or VEEAM_ACTION_TOKEN)"
        )
    audit_log = string(d, "audit_log", "actions")
    if audit_log is None:
        raise ConfigError(
            "actions.audit_log: required when actions are enabled (the guards persist their state there)"
        )
    label = string(d, "alertmanager_plan_label", "actions") or "veeam_failover_plan"
    policies: dict[str, float] = {}
    plan_approval: dict[str, str] = {}
    plans = d.get("plans") or {}
    if not isinstance(plans, dict):
        raise ConfigError("actions.plans: must be a mapping of plan name or ID to its policy")
    for plan, policy in plans.items():
        where = f"actions.plans.{plan}"
        policy = mapping(policy, where, PLAN_KEYS)
        if "restore_point_min_age_minutes" in policy:
            policies[str(plan)] = 60 * number(policy, "restore_point_min_age_minutes", where, 0, minimum=1)
        if "approval" in policy:
            plan_approval[str(plan)] = _approval(policy, where)
    approval = _approval(d, "actions") if "approval" in d else "none"
    if "required" in (approval, *plan_approval.values()) and not any("approver" in c.roles for c in callers):
        raise ConfigError(
            "actions.approval: starts need an approver but no caller has the approver role "
            "(add roles: [approver] to a caller in actions.tokens_file)"
        )
    external_url = string(d, "external_url", "actions")
    if external_url is not None and not external_url.startswith(("http://", "https://")):
        raise ConfigError(f"actions.external_url: must start with http:// or https://, got {external_url!r}")
    return ActionSettings(
        enabled=True,
        kill_switch=bool_(d, "kill_switch", "actions", False),
        dry_run=bool_(d, "dry_run", "actions", False),
        callers=callers,
        allowed_plans=_plan_list(d.get("allowed_plans"), "actions.allowed_plans"),
        audit_log=audit_log,
        alertmanager_plan_label=label,
        **numbers(ActionSettings, d, "actions"),
        restore_point_min_age_seconds=policies,
        approval=approval,
        plan_approval=plan_approval,
        notifications=notifications,
        external_url=None if external_url is None else external_url.rstrip("/"),
    )


def _approval(d: dict[str, Any], where: str) -> str:
    value = d.get("approval")
    if value not in APPROVAL_MODES:
        raise ConfigError(f"{where}.approval: must be one of {', '.join(APPROVAL_MODES)}, got {value!r}")
    return str(value)
