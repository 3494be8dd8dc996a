"""Exporter settings: YAML file, overridden by environment, overridden by flags. Validated once, at start.

Every error names the setting (as its YAML key) and what is wrong with it. The EM password comes only
from `VEEAM_EM_PASSWORD` or a file: never from a flag (it would show in `ps`) or from the YAML itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from exporter.em.address import normalize_base_url
from exporter.secret import Secret


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class EMSettings:
    url: str
    username: str
    password: Secret = field(repr=False)
    ca_file: str | None = None
    insecure_skip_verify: bool = False
    timeout_seconds: float = 30.0
    page_size: int = 100
    max_body_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class PollSettings:
    active_interval_seconds: float = 10.0
    idle_interval_seconds: float = 60.0
    # How far back each poll looks for new sessions. EM learns of sessions from its backup servers
    # every 15 minutes by default, so a session can appear with a CreationTime that far in the past.
    session_lookback_seconds: float = 1800.0
    history_seconds: float = 30 * 86400.0  # the first poll looks this far back for each plan's latest session
    # Session queries ask this much further back than needed, then filter exactly on CreationTimeUTC:
    # before 13.x EM does not document whether a DateTime filter value is UTC or the server's local
    # time, and UTC offsets reach 14 h. 0 trusts the server to read UTC.
    filter_time_slack_seconds: float = 14 * 3600.0
    max_backoff_seconds: float = 300.0
    # While EM cannot be read, the last known failover data stays on /metrics this long (its age is
    # time() - veeam_em_last_successful_poll_timestamp_seconds), then it is dropped, not shown as current.
    stale_after_seconds: float = 900.0
    # Replica points are read once each, in queries of 80, at most this many a poll, fewer when the poll
    # also counts sessions or reads plans: 2 keeps a poll within ceil(sessions / page size) + 2
    # requests. Until a point is read, its time comes from its name.
    point_queries_per_poll: int = 2
    # Plans are re-read this often (and at once when a new session names a plan not known yet).
    plans_refresh_seconds: float = 60.0
    max_concurrent_requests: int = 4


@dataclass(frozen=True)
class Caller:
    """Who may call the action endpoints: a name for the audit log, a bearer token, and its plans."""

    name: str
    token: Secret = field(repr=False)
    plans: tuple[str, ...] | None = None  # None: the global actions.allowed_plans


@dataclass(frozen=True)
class ActionSettings:
    enabled: bool = False
    kill_switch: bool = False  # refuse every start, whatever else says
    dry_run: bool = False  # run and record every check, send nothing to EM
    callers: tuple[Caller, ...] = ()
    allowed_plans: tuple[str, ...] = ()  # plan names or IDs
    cooldown_seconds: float = 3600.0
    audit_log: str | None = None
    alertmanager_plan_label: str = "veeam_failover_plan"
    max_body_bytes: int = 256 * 1024
    # How long a start's EM task is followed. EM reports OperationFinished until its next collection
    # from the backup server (15 minutes by default), so this covers one collection and some.
    task_timeout_seconds: float = 1200.0
    task_poll_interval_seconds: float = 2.0
    # plan name or ID -> fail over to a point at least this old (ransomware recovery), instead of the latest
    restore_point_min_age_seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class WebSettings:
    """The exporter's own listener (in the spirit of Prometheus' web.config): optional TLS, and optional
    basic or bearer auth on everything but the probes (/healthz, /readyz) and the action endpoints,
    which have their own tokens."""

    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    basic_username: str | None = None
    basic_password: Secret | None = field(default=None, repr=False)
    bearer_token: Secret | None = field(default=None, repr=False)


MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class Config:
    em: EMSettings
    poll: PollSettings = field(default_factory=PollSettings)
    actions: ActionSettings = field(default_factory=ActionSettings)
    web: WebSettings = field(default_factory=WebSettings)
    listen_address: str = "0.0.0.0:9849"
    log_level: str = "info"
    # Parse EM's large answers and render large expositions in a second process (offload.py): /metrics
    # p99 about halves at 10,000 VMs, for about 100 MB more memory. Off by default.
    helper_process: bool = False

    @property
    def listen_host_port(self) -> tuple[str, int]:
        return parse_listen_address(self.listen_address)


EM_KEYS = {
    "url",
    "username",
    "password_file",
    "ca_file",
    "insecure_skip_verify",
    "timeout_seconds",
    "page_size",
    "max_body_bytes",
}
POLL_KEYS = set(PollSettings.__dataclass_fields__)
TOP_KEYS = {"em", "poll", "actions", "web", "listen_address", "log_level", "helper_process"}
WEB_KEYS = {"tls_cert_file", "tls_key_file", "basic_auth", "bearer_token_file"}
ACTION_KEYS = {
    "enabled",
    "kill_switch",
    "dry_run",
    "tokens_file",
    "allowed_plans",
    "cooldown_seconds",
    "audit_log",
    "alertmanager_plan_label",
    "max_body_bytes",
    "task_timeout_seconds",
    "task_poll_interval_seconds",
    "plans",
}
LOG_LEVELS = ("debug", "info", "warning", "error")


def parse_listen_address(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"listen_address: must be host:port (e.g. 0.0.0.0:9849), got {value!r}")
    return (host.strip("[]") or "0.0.0.0"), int(port)  # noqa: S104 - an exporter listens for Prometheus


def _mapping(value: Any, key: str, allowed: set[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: must be a mapping, got {type(value).__name__}")
    unknown = sorted(set(map(str, value)) - allowed)
    if unknown:
        hint = ""
        if "password" in unknown:
            hint = " (put the password in a file and set em.password_file, or set VEEAM_EM_PASSWORD)"
        raise ConfigError(f"{key}.{unknown[0]}: unknown setting{hint}; known: {', '.join(sorted(allowed))}")
    return value


def _number(
    d: dict[str, Any], key: str, where: str, default: float, *, minimum: float, integer: bool = False
) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or (integer and not float(v).is_integer()):
        raise ConfigError(f"{where}.{key}: must be {'an integer' if integer else 'a number'}, got {v!r}")
    if v < minimum:
        raise ConfigError(f"{where}.{key}: must be at least {minimum:g}, got {v!r}")
    return float(v)


def _string(d: dict[str, Any], key: str, where: str) -> str | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, str) or not v.strip():
        raise ConfigError(f"{where}.{key}: must be a non-empty string, got {v!r}")
    return v


def read_yaml(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path}: not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: must be a YAML mapping at the top level")
    return data


def _read_password_file(path: str) -> Secret:
    try:
        value = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"em.password_file: cannot read {path}: {exc.strerror or exc}") from None
    if not value:
        raise ConfigError(f"em.password_file: {path} is empty")
    return Secret(value)


def build_config(
    data: dict[str, Any], overrides: dict[str, Any], env: dict[str, str] | None = None
) -> Config:
    """`data` from YAML; `overrides` from flags (None = not given); `env` defaults to os.environ."""
    env = dict(os.environ) if env is None else env
    top = _mapping(data, "config", TOP_KEYS)
    em = dict(_mapping(top.get("em"), "em", EM_KEYS))
    poll = dict(_mapping(top.get("poll"), "poll", POLL_KEYS))

    # environment over file, flags over environment
    for env_key, target, key in (
        ("VEEAM_EM_URL", em, "url"),
        ("VEEAM_EM_USERNAME", em, "username"),
        ("VEEAM_EXPORTER_LISTEN_ADDRESS", top, "listen_address"),
    ):
        if env.get(env_key):
            target[key] = env[env_key]
    flag_map = {
        "em_url": (em, "url"),
        "em_username": (em, "username"),
        "em_password_file": (em, "password_file"),
        "em_ca_file": (em, "ca_file"),
        "em_insecure_skip_verify": (em, "insecure_skip_verify"),
        "listen_address": (top, "listen_address"),
        "poll_interval": (poll, "active_interval_seconds"),
        "log_level": (top, "log_level"),
    }
    for flag, value in overrides.items():
        if value is not None:
            target, key = flag_map[flag]
            target[key] = value

    url = _string(em, "url", "em")
    if url is None:
        raise ConfigError("em.url: required (config file, VEEAM_EM_URL or --em-url)")
    try:
        url = normalize_base_url(url)
    except ValueError as exc:
        raise ConfigError(f"em.url: {exc}") from None
    username = _string(em, "username", "em")
    if username is None:
        raise ConfigError("em.username: required (config file, VEEAM_EM_USERNAME or --em-username)")
    password_file = _string(em, "password_file", "em")
    if password_file is not None:
        password = _read_password_file(password_file)
    elif env.get("VEEAM_EM_PASSWORD"):
        password = Secret(env["VEEAM_EM_PASSWORD"])
    else:
        raise ConfigError(
            "em.password_file: no EM password: set VEEAM_EM_PASSWORD or em.password_file (--em-password-file)"
        )
    ca_file = _string(em, "ca_file", "em")
    if ca_file is not None and not Path(ca_file).is_file():
        raise ConfigError(f"em.ca_file: no such file {ca_file}")
    insecure = em.get("insecure_skip_verify", False)
    if not isinstance(insecure, bool):
        raise ConfigError(f"em.insecure_skip_verify: must be true or false, got {insecure!r}")
    if insecure and ca_file:
        raise ConfigError("em.insecure_skip_verify: cannot be combined with em.ca_file; pick one")

    listen = top.get("listen_address", "0.0.0.0:9849")
    if not isinstance(listen, str):
        raise ConfigError(f"listen_address: must be host:port, got {listen!r}")
    parse_listen_address(listen)
    log_level = str(top.get("log_level", "info")).lower()
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"log_level: must be one of {', '.join(LOG_LEVELS)}, got {top.get('log_level')!r}")

    poll_settings = PollSettings(
        active_interval_seconds=_number(poll, "active_interval_seconds", "poll", 10.0, minimum=1),
        idle_interval_seconds=_number(poll, "idle_interval_seconds", "poll", 60.0, minimum=1),
        session_lookback_seconds=_number(poll, "session_lookback_seconds", "poll", 1800.0, minimum=0),
        history_seconds=_number(poll, "history_seconds", "poll", 30 * 86400.0, minimum=60),
        filter_time_slack_seconds=_number(poll, "filter_time_slack_seconds", "poll", 14 * 3600.0, minimum=0),
        point_queries_per_poll=int(
            _number(poll, "point_queries_per_poll", "poll", 2, minimum=1, integer=True)
        ),
        plans_refresh_seconds=_number(poll, "plans_refresh_seconds", "poll", 60.0, minimum=1),
        max_concurrent_requests=int(
            _number(poll, "max_concurrent_requests", "poll", 4, minimum=1, integer=True)
        ),
        stale_after_seconds=_number(poll, "stale_after_seconds", "poll", 900.0, minimum=1),
        max_backoff_seconds=_number(poll, "max_backoff_seconds", "poll", 300.0, minimum=1),
    )
    actions = _actions(_mapping(top.get("actions"), "actions", ACTION_KEYS), env)
    web = _web(_mapping(top.get("web"), "web", WEB_KEYS))
    if poll_settings.idle_interval_seconds < poll_settings.active_interval_seconds:
        raise ConfigError("poll.idle_interval_seconds: must not be shorter than poll.active_interval_seconds")
    return Config(
        em=EMSettings(
            url=url,
            username=username,
            password=password,
            ca_file=ca_file,
            insecure_skip_verify=insecure,
            timeout_seconds=_number(em, "timeout_seconds", "em", 30.0, minimum=0.1),
            page_size=int(_number(em, "page_size", "em", 100, minimum=1, integer=True)),
            max_body_bytes=int(
                _number(em, "max_body_bytes", "em", 64 * 1024 * 1024, minimum=1024, integer=True)
            ),
        ),
        poll=poll_settings,
        actions=actions,
        web=web,
        listen_address=listen,
        log_level=log_level,
        helper_process=_helper_process(top),
    )


def _secret_file(path: str, where: str) -> Secret:
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    if not value:
        raise ConfigError(f"{where}: {path} is empty")
    return Secret(value)


def _web(d: dict[str, Any]) -> WebSettings:
    cert, key = _string(d, "tls_cert_file", "web"), _string(d, "tls_key_file", "web")
    if (cert is None) != (key is None):
        raise ConfigError("web.tls_cert_file: give both web.tls_cert_file and web.tls_key_file, or neither")
    for name, path in (("tls_cert_file", cert), ("tls_key_file", key)):
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"web.{name}: no such file {path}")
    basic = _mapping(d.get("basic_auth"), "web.basic_auth", {"username", "password_file"})
    token_file = _string(d, "bearer_token_file", "web")
    if basic and token_file:
        raise ConfigError("web.basic_auth: choose basic_auth or bearer_token_file, not both")
    settings = WebSettings(tls_cert_file=cert, tls_key_file=key)
    if basic:
        user = _string(basic, "username", "web.basic_auth")
        password_file = _string(basic, "password_file", "web.basic_auth")
        if user is None or password_file is None:
            raise ConfigError("web.basic_auth: needs username and password_file")
        settings = replace(
            settings,
            basic_username=user,
            basic_password=_secret_file(password_file, "web.basic_auth.password_file"),
        )
    if token_file:
        settings = replace(settings, bearer_token=_secret_file(token_file, "web.bearer_token_file"))
    return settings


def _helper_process(top: dict[str, Any]) -> bool:
    v = top.get("helper_process", False)
    if not isinstance(v, bool):
        raise ConfigError(f"helper_process: must be true or false, got {v!r}")
    return v


def _bool(d: dict[str, Any], key: str, where: str, default: bool) -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise ConfigError(f"{where}.{key}: must be true or false, got {v!r}")
    return v


def _plan_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
        raise ConfigError(f"{where}: must be a list of plan names or IDs")
    return tuple(value)


def _token(value: Any, where: str) -> Secret:
    if not isinstance(value, str) or len(value.strip()) < MIN_TOKEN_LENGTH:
        # short tokens can be guessed; the value itself is never echoed
        raise ConfigError(f"{where}: must be a string of at least {MIN_TOKEN_LENGTH} characters")
    return Secret(value.strip())


def _callers(path: str | None, env: dict[str, str]) -> tuple[Caller, ...]:
    callers: list[Caller] = []
    if path is not None:
        data = read_yaml(path)
        for name, entry in data.items():
            where = f"actions.tokens_file {path}: {name}"
            if isinstance(entry, str):
                callers.append(Caller(name=str(name), token=_token(entry, where)))
            elif isinstance(entry, dict):
                unknown = set(entry) - {"token", "plans"}
                if unknown:
                    raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown setting; known: plans, token")
                plans = _plan_list(entry["plans"], f"{where}.plans") if "plans" in entry else None
                callers.append(
                    Caller(name=str(name), token=_token(entry.get("token"), f"{where}.token"), plans=plans)
                )
            else:
                raise ConfigError(f"{where}: must be a token or a mapping with token and plans")
    if env.get("VEEAM_ACTION_TOKEN"):
        callers.append(Caller(name="env", token=_token(env["VEEAM_ACTION_TOKEN"], "VEEAM_ACTION_TOKEN")))
    tokens = [c.token.reveal() for c in callers]
    if len(set(tokens)) != len(tokens):
        raise ConfigError("actions.tokens_file: two callers share a token; give each its own")
    return tuple(callers)


def _actions(d: dict[str, Any], env: dict[str, str]) -> ActionSettings:
    enabled = _bool(d, "enabled", "actions", False)
    if not enabled:
        return ActionSettings()
    callers = _callers(_string(d, "tokens_file", "actions"), env)
    if not callers:
        raise ConfigError(
            "actions.tokens_file: actions are enabled but no caller token is set "
            "(actions.tokens_file or VEEAM_ACTION_TOKEN)"
        )
    audit_log = _string(d, "audit_log", "actions")
    if audit_log is None:
        raise ConfigError(
            "actions.audit_log: required when actions are enabled (the guards persist their state there)"
        )
    label = _string(d, "alertmanager_plan_label", "actions") or "veeam_failover_plan"
    policies: dict[str, float] = {}
    plans = d.get("plans") or {}
    if not isinstance(plans, dict):
        raise ConfigError("actions.plans: must be a mapping of plan name or ID to its policy")
    for plan, policy in plans.items():
        where = f"actions.plans.{plan}"
        policy = _mapping(policy, where, {"restore_point_min_age_minutes"})
        if "restore_point_min_age_minutes" in policy:
            policies[str(plan)] = 60 * _number(policy, "restore_point_min_age_minutes", where, 0, minimum=1)
    return ActionSettings(
        enabled=True,
        kill_switch=_bool(d, "kill_switch", "actions", False),
        dry_run=_bool(d, "dry_run", "actions", False),
        callers=callers,
        allowed_plans=_plan_list(d.get("allowed_plans"), "actions.allowed_plans"),
        cooldown_seconds=_number(d, "cooldown_seconds", "actions", 3600.0, minimum=0),
        audit_log=audit_log,
        alertmanager_plan_label=label,
        max_body_bytes=int(_number(d, "max_body_bytes", "actions", 256 * 1024, minimum=1024, integer=True)),
        task_poll_interval_seconds=_number(d, "task_poll_interval_seconds", "actions", 2.0, minimum=0.05),
        task_timeout_seconds=_number(d, "task_timeout_seconds", "actions", 1200.0, minimum=1),
        restore_point_min_age_seconds=policies,
    )


def load_config(path: str | None, overrides: dict[str, Any], env: dict[str, str] | None = None) -> Config:
    return build_config(read_yaml(path) if path else {}, overrides, env)
