"""Settings from a YAML file, overridden by the environment, overridden by flags; validated once, at start.

Every error names the setting (as its YAML key) and what is wrong with it. The EM password comes only
from `VEEAM_EM_PASSWORD` or a file: never from a flag (it would show in `ps`) or from the YAML itself.
Numeric settings take their defaults and minimums from the fields in config.py (`setting`).
"""

from __future__ import annotations

import os
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from exporter.config import (
    CollectSettings,
    Config,
    ConfigError,
    EMSettings,
    PollSettings,
    ReadinessSettings,
    WebSettings,
    parse_listen_address,
)
from exporter.config_actions import ACTION_KEYS, action_settings
from exporter.config_notifications import notification_targets
from exporter.config_values import bool_, mapping, number, numbers, read_yaml, secret_file, string
from exporter.em.address import normalize_base_url
from exporter.secret import Secret

# The keys each section takes: its fields, with the password and the tokens read from files.
EM_KEYS = {f.name for f in fields(EMSettings)} - {"password"} | {"password_file"}
POLL_KEYS = {f.name for f in fields(PollSettings)}
TOP_KEYS = {
    "em",
    "poll",
    "actions",
    "readiness",
    "web",
    "listen_address",
    "log_level",
    "log_format",
    "helper_process",
}
WEB_KEYS = {
    "tls_cert_file",
    "tls_key_file",
    "basic_auth",
    "bearer_token_file",
    "trusted_proxies",
    *(f.name for f in fields(WebSettings) if "minimum" in f.metadata),
}
READINESS_KEYS = {f.name for f in fields(ReadinessSettings)} - {"plan_rpo_seconds"} | {"plans"}
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


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
    top = mapping(data, "config", TOP_KEYS)
    em = dict(mapping(top.get("em"), "em", EM_KEYS))
    poll = dict(mapping(top.get("poll"), "poll", POLL_KEYS))

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

    url = string(em, "url", "em")
    if url is None:
        raise ConfigError("em.url: required (config file, VEEAM_EM_URL or --em-url)")
    try:
        url = normalize_base_url(url)
    except ValueError as exc:
        raise ConfigError(f"em.url: {exc}") from None
    username = string(em, "username", "em")
    if username is None:
        raise ConfigError("em.username: required (config file, VEEAM_EM_USERNAME or --em-username)")
    password_file = string(em, "password_file", "em")
    if password_file is not None:
        password = _read_password_file(password_file)
    elif env.get("VEEAM_EM_PASSWORD"):
        password = Secret(env["VEEAM_EM_PASSWORD"])
    else:
        raise ConfigError(
            "em.password_file: no EM password: set VEEAM_EM_PASSWORD or em.password_file (--em-password-file)"
        )
    ca_file = string(em, "ca_file", "em")
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
    log_format = str(top.get("log_format", "text")).lower()
    if log_format not in LOG_FORMATS:
        raise ConfigError(
            f"log_format: must be one of {', '.join(LOG_FORMATS)}, got {top.get('log_format')!r}"
        )

    collect_raw = mapping(poll.get("collect"), "poll.collect", {f.name for f in fields(CollectSettings)})
    collect = CollectSettings(
        enabled=bool_(collect_raw, "enabled", "poll.collect", False),
        **numbers(CollectSettings, collect_raw, "poll.collect"),
    )
    poll_settings = PollSettings(**numbers(PollSettings, poll, "poll"), collect=collect)
    actions_raw = mapping(top.get("actions"), "actions", ACTION_KEYS)
    notify = notification_targets(actions_raw.get("notifications"), "actions.notifications")
    actions = action_settings(actions_raw, env, notify)
    web = _web(mapping(top.get("web"), "web", WEB_KEYS))
    if poll_settings.idle_interval_seconds < poll_settings.active_interval_seconds:
        raise ConfigError("poll.idle_interval_seconds: must not be shorter than poll.active_interval_seconds")
    return Config(
        em=EMSettings(
            url=url,
            username=username,
            password=password,
            ca_file=ca_file,
            insecure_skip_verify=insecure,
            **numbers(EMSettings, em, "em"),
        ),
        poll=poll_settings,
        actions=actions,
        readiness=_readiness(mapping(top.get("readiness"), "readiness", READINESS_KEYS)),
        web=web,
        listen_address=listen,
        log_level=log_level,
        log_format=log_format,
        helper_process=_helper_process(top),
    )


def _web(d: dict[str, Any]) -> WebSettings:
    cert, key = string(d, "tls_cert_file", "web"), string(d, "tls_key_file", "web")
    if (cert is None) != (key is None):
        raise ConfigError("web.tls_cert_file: give both web.tls_cert_file and web.tls_key_file, or neither")
    for name, path in (("tls_cert_file", cert), ("tls_key_file", key)):
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"web.{name}: no such file {path}")
    basic = mapping(d.get("basic_auth"), "web.basic_auth", {"username", "password_file"})
    token_file = string(d, "bearer_token_file", "web")
    if basic and token_file:
        raise ConfigError("web.basic_auth: choose basic_auth or bearer_token_file, not both")
    proxies = d.get("trusted_proxies") or []
    if not isinstance(proxies, list) or not all(isinstance(p, str) and p.strip() for p in proxies):
        raise ConfigError("web.trusted_proxies: must be a list of addresses (the reverse proxies in front)")
    settings = WebSettings(
        tls_cert_file=cert,
        tls_key_file=key,
        trusted_proxies=tuple(p.strip() for p in proxies),
        **numbers(WebSettings, d, "web"),
    )
    if basic:
        user = string(basic, "username", "web.basic_auth")
        password_file = string(basic, "password_file", "web.basic_auth")
        if user is None or password_file is None:
            raise ConfigError("web.basic_auth: needs username and password_file")
        settings = replace(
            settings,
            basic_username=user,
            basic_password=secret_file(password_file, "web.basic_auth.password_file"),
        )
    if token_file:
        settings = replace(settings, bearer_token=secret_file(token_file, "web.bearer_token_file"))
    return settings


def _readiness(d: dict[str, Any]) -> ReadinessSettings:
    plans = mapping(d.get("plans"), "readiness.plans", set(map(str, d.get("plans") or {})))
    rpos = []
    for plan, policy in plans.items():
        where = f"readiness.plans.{plan}"
        policy = mapping(policy, where, {"rpo_seconds"})
        if "rpo_seconds" not in policy:
            raise ConfigError(f"{where}.rpo_seconds: required")
        rpos.append((str(plan), number(policy, "rpo_seconds", where, 0, minimum=60)))
    return ReadinessSettings(
        enabled=bool_(d, "enabled", "readiness", True),
        plan_rpo_seconds=tuple(rpos),
        **numbers(ReadinessSettings, d, "readiness"),
    )


def _helper_process(top: dict[str, Any]) -> bool:
    v = top.get("helper_process", True)
    if not isinstance(v, bool):
        raise ConfigError(f"helper_process: must be true or false, got {v!r}")
    return v


def load_config(path: str | None, overrides: dict[str, Any], env: dict[str, str] | None = None) -> Config:
    return build_config(read_yaml(path) if path else {}, overrides, env)
