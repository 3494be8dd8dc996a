"""Settings from a YAML file, overridden by the environment, overridden by flags; validated once, at start.

Every error names the setting (as its YAML key) and what is wrong with it. The EM password comes only
from `VEEAM_EM_PASSWORD` or a file: never from a flag (it would show in `ps`) or from the YAML itself.
Each section's declared fields are read by one loader (values.section); what is left here is what needs
more than one field or a file.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from exporter.config.actions import ACTION_KEYS, action_settings
from exporter.config.fields import ConfigError
from exporter.config.model import (
    CollectSettings,
    Config,
    EMSettings,
    PollSettings,
    ReadinessSettings,
    WebSettings,
    parse_listen_address,
)
from exporter.config.values import keys, mapping, number, read_yaml, secret_file, section, string
from exporter.em.address import normalize_base_url
from exporter.secret import Secret

# The keys each section takes: its declared fields, and what has a loader of its own.
SECTIONS = {
    "em": keys(EMSettings) | {"url", "username", "password_file"},
    "poll": keys(PollSettings) | {"collect"},
    "actions": ACTION_KEYS,
    "readiness": keys(ReadinessSettings) | {"plans"},
    "web": keys(WebSettings) | {"basic_auth", "bearer_token_file", "trusted_proxies"},
}
TOP_KEYS = keys(Config) | set(SECTIONS)
# the environment over the file, flags over the environment: (section or "" for the top, key)
ENVIRONMENT = {
    "VEEAM_EM_URL": ("em", "url"),
    "VEEAM_EM_USERNAME": ("em", "username"),
    "VEEAM_EXPORTER_LISTEN_ADDRESS": ("", "listen_address"),
}
FLAGS = {
    "em_url": ("em", "url"),
    "em_username": ("em", "username"),
    "em_password_file": ("em", "password_file"),
    "em_ca_file": ("em", "ca_file"),
    "em_insecure_skip_verify": ("em", "insecure_skip_verify"),
    "listen_address": ("", "listen_address"),
    "poll_interval": ("poll", "active_interval_seconds"),
    "log_level": ("", "log_level"),
}


def build_config(
    data: dict[str, Any], overrides: dict[str, Any], env: dict[str, str] | None = None
) -> Config:
    """`data` from YAML; `overrides` from flags (None = not given); `env` defaults to os.environ."""
    env = dict(os.environ) if env is None else env
    top = dict(mapping(data, "config", TOP_KEYS))
    raw = {name: dict(mapping(top.get(name), name, allowed)) for name, allowed in SECTIONS.items()}
    given = [(ENVIRONMENT[k], v) for k, v in env.items() if k in ENVIRONMENT and v]
    given += [(FLAGS[k], v) for k, v in overrides.items() if v is not None]
    for (where, key), value in given:
        (raw[where] if where else top)[key] = value
    config = Config(
        em=_em(raw["em"], env),
        poll=_poll(raw["poll"]),
        actions=action_settings(raw["actions"], env),
        readiness=_readiness(raw["readiness"]),
        web=_web(raw["web"]),
        **section(Config, top, ""),
    )
    parse_listen_address(config.listen_address)
    return config


def _em(d: dict[str, Any], env: dict[str, str]) -> EMSettings:
    url = string(d, "url", "em")
    if url is None:
        raise ConfigError("em.url: required (config file, VEEAM_EM_URL or --em-url)")
    try:
        url = normalize_base_url(url)
    except ValueError as exc:
        raise ConfigError(f"em.url: {exc}") from None
    username = string(d, "username", "em")
    if username is None:
        raise ConfigError("em.username: required (config file, VEEAM_EM_USERNAME or --em-username)")
    password_file = string(d, "password_file", "em")
    if password_file is not None:
        password = secret_file(password_file, "em.password_file", strip="\r\n")
    elif env.get("VEEAM_EM_PASSWORD"):
        password = Secret(env["VEEAM_EM_PASSWORD"])
    else:
        raise ConfigError(
            "em.password_file: no EM password: set VEEAM_EM_PASSWORD or em.password_file (--em-password-file)"
        )
    em = EMSettings(url=url, username=username, password=password, **section(EMSettings, d, "em"))
    if em.ca_file is not None and not Path(em.ca_file).is_file():
        raise ConfigError(f"em.ca_file: no such file {em.ca_file}")
    if em.insecure_skip_verify and em.ca_file:
        raise ConfigError("em.insecure_skip_verify: cannot be combined with em.ca_file; pick one")
    return em


def _poll(d: dict[str, Any]) -> PollSettings:
    collect = mapping(d.get("collect"), "poll.collect", keys(CollectSettings))
    poll = PollSettings(
        **section(PollSettings, d, "poll"),
        collect=CollectSettings(**section(CollectSettings, collect, "poll.collect")),
    )
    if poll.idle_interval_seconds < poll.active_interval_seconds:
        raise ConfigError("poll.idle_interval_seconds: must not be shorter than poll.active_interval_seconds")
    return poll


def _web(d: dict[str, Any]) -> WebSettings:
    basic = mapping(d.get("basic_auth"), "web.basic_auth", {"username", "password_file"})
    token_file = string(d, "bearer_token_file", "web")
    if basic and token_file:
        raise ConfigError("web.basic_auth: choose basic_auth or bearer_token_file, not both")
    proxies = d.get("trusted_proxies") or []
    if not isinstance(proxies, list) or not all(isinstance(p, str) and p.strip() for p in proxies):
        raise ConfigError("web.trusted_proxies: must be a list of addresses (the reverse proxies in front)")
    web = WebSettings(trusted_proxies=tuple(p.strip() for p in proxies), **section(WebSettings, d, "web"))
    if (web.tls_cert_file is None) != (web.tls_key_file is None):
        raise ConfigError("web.tls_cert_file: give both web.tls_cert_file and web.tls_key_file, or neither")
    for name, path in (("tls_cert_file", web.tls_cert_file), ("tls_key_file", web.tls_key_file)):
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"web.{name}: no such file {path}")
    if basic:
        user = string(basic, "username", "web.basic_auth")
        password_file = string(basic, "password_file", "web.basic_auth")
        if user is None or password_file is None:
            raise ConfigError("web.basic_auth: needs username and password_file")
        web = replace(
            web,
            basic_username=user,
            basic_password=secret_file(password_file, "web.basic_auth.password_file"),
        )
    if token_file:
        web = replace(web, bearer_token=secret_file(token_file, "web.bearer_token_file"))
    return web


def _readiness(d: dict[str, Any]) -> ReadinessSettings:
    plans = mapping(d.get("plans"), "readiness.plans", set(map(str, d.get("plans") or {})))
    rpos = []
    for plan, policy in plans.items():
        where = f"readiness.plans.{plan}"
        policy = mapping(policy, where, {"rpo_seconds"})
        if "rpo_seconds" not in policy:
            raise ConfigError(f"{where}.rpo_seconds: required")
        rpos.append((str(plan), number(policy, "rpo_seconds", where, 0, minimum=60)))
    return ReadinessSettings(plan_rpo_seconds=tuple(rpos), **section(ReadinessSettings, d, "readiness"))


def load_config(path: str | None, overrides: dict[str, Any], env: dict[str, str] | None = None) -> Config:
    return build_config(read_yaml(path) if path else {}, overrides, env)
