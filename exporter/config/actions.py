"""The `actions:` section: caller tokens and roles (from their own file), allowed plans, plan policies,
approval mode."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from exporter.config.fields import ConfigError
from exporter.config.model import APPROVAL_MODES, ROLES, ActionSettings, Caller, PlanEntry
from exporter.config.notifications import notification_targets
from exporter.config.values import keys, mapping, number, one_of, read_yaml, section, string
from exporter.secret import Secret

log = logging.getLogger(__name__)

MIN_TOKEN_LENGTH = 16
ACTION_KEYS = keys(ActionSettings) | {"tokens_file", "plans", "allowed_plans", "notifications"}
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


def action_settings(d: dict[str, Any], env: dict[str, str]) -> ActionSettings:
    declared = section(ActionSettings, d, "actions")
    if not declared["enabled"]:
        return ActionSettings()
    callers = _callers(string(d, "tokens_file", "actions"), env)
    if not callers:
        raise ConfigError(
            "actions.tokens_file: actions are enabled but no caller token is set "
            "(actions.tokens_file or VEEAM_ACTION_TOKEN)"
        )
    if declared["audit_log"] is None:
        raise ConfigError(
            "actions.audit_log: required when actions are enabled (the guards persist their state there)"
        )
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
            plan_approval[str(plan)] = one_of(policy, "approval", where, "none", APPROVAL_MODES)
    if "required" in (declared["approval"], *plan_approval.values()) and not any(
        "approver" in c.roles for c in callers
    ):
        raise ConfigError(
            "actions.approval: starts need an approver but no caller has the approver role "
            "(add roles: [approver] to a caller in actions.tokens_file)"
        )
    external_url = declared.pop("external_url")
    if external_url is not None and not external_url.startswith(("http://", "https://")):
        raise ConfigError(f"actions.external_url: must start with http:// or https://, got {external_url!r}")
    return ActionSettings(
        **declared,
        callers=callers,
        allowed_plans=_plan_list(d.get("allowed_plans"), "actions.allowed_plans"),
        restore_point_min_age_seconds=policies,
        plan_approval=plan_approval,
        notifications=notification_targets(d.get("notifications"), "actions.notifications"),
        external_url=None if external_url is None else external_url.rstrip("/"),
    )
