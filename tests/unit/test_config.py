"""Settings: file < environment < flags; every bad value is refused with the key and the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from exporter.cli import main
from exporter.config import ConfigError
from exporter.config.load import build_config, load_config

ENV = {"VEEAM_EM_PASSWORD": "pw-from-env"}
GOOD = {"em": {"url": "https://em.example:9398", "username": "svc"}}


def build(
    data: dict[str, Any], overrides: dict[str, Any] | None = None, env: dict[str, str] | None = None
) -> Any:
    return build_config(data, overrides or {}, ENV if env is None else env)


def test_defaults_and_url_normalisation() -> None:
    c = build(GOOD)
    assert c.em.url == "https://em.example:9398/api"
    assert c.em.password.reveal() == "pw-from-env"
    assert "pw-from-env" not in repr(c)
    assert (c.poll.active_interval_seconds, c.poll.idle_interval_seconds) == (10.0, 60.0)
    assert c.listen_host_port == ("0.0.0.0", 9849)
    assert c.em.insecure_skip_verify is False
    assert c.helper_process is True  # started only for large data
    assert build({**GOOD, "helper_process": False}).helper_process is False


def test_precedence_flags_over_env_over_file(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("pw-from-file\n")
    env = {**ENV, "VEEAM_EM_URL": "https://env:9398/api/", "VEEAM_EXPORTER_LISTEN_ADDRESS": "127.0.0.1:1111"}
    c = build({**GOOD, "listen_address": "0.0.0.0:2222"}, {"em_url": None, "listen_address": None}, env)
    assert c.em.url == "https://env:9398/api" and c.listen_address == "127.0.0.1:1111"
    c = build(GOOD, {"em_url": "https://flag:9398", "em_password_file": str(pw), "poll_interval": 3.0}, env)
    assert c.em.url == "https://flag:9398/api"
    assert c.em.password.reveal() == "pw-from-file"  # the file wins, trailing newline dropped
    assert c.poll.active_interval_seconds == 3.0


@pytest.mark.parametrize(
    ("data", "env", "message"),
    [
        ({"em": {"username": "svc"}}, ENV, "em.url: required"),
        ({"em": {"url": "em.example:9398", "username": "svc"}}, ENV, "em.url: must be an http(s) URL"),
        ({"em": {"url": "https://u:p@em", "username": "svc"}}, ENV, "em.url: must not carry credentials"),
        ({"em": {"url": "https://em"}}, ENV, "em.username: required"),
        (GOOD, {}, "em.password_file: no EM password"),
        (
            {"em": {**GOOD["em"], "password": "x"}},
            ENV,
            "em.password: unknown setting (put the password in a file",
        ),
        (
            {"em": {**GOOD["em"], "timeout_seconds": "fast"}},
            ENV,
            "em.timeout_seconds: must be a number, got 'fast'",
        ),
        ({"em": {**GOOD["em"], "page_size": 0}}, ENV, "em.page_size: must be at least 1"),
        (
            {"em": {**GOOD["em"], "insecure_skip_verify": "yes"}},
            ENV,
            "em.insecure_skip_verify: must be true or false",
        ),
        (
            {"em": {**GOOD["em"], "ca_file": "/no/such/ca.pem"}},
            ENV,
            "em.ca_file: no such file /no/such/ca.pem",
        ),
        (
            {**GOOD, "poll": {"active_interval_seconds": -1}},
            ENV,
            "poll.active_interval_seconds: must be at least 1",
        ),
        (
            {**GOOD, "poll": {"idle_interval_seconds": 5}},
            ENV,
            "poll.idle_interval_seconds: must not be shorter",
        ),
        ({**GOOD, "poll": {"intervall": 5}}, ENV, "poll.intervall: unknown setting"),
        ({**GOOD, "listen_address": "9849"}, ENV, "listen_address: must be host:port"),
        ({**GOOD, "log_level": "loud"}, ENV, "log_level: must be one of"),
        ({**GOOD, "helper_process": "yes"}, ENV, "helper_process: must be true or false, got 'yes'"),
        ({**GOOD, "emm": {}}, ENV, "config.emm: unknown setting"),
        ({"em": ["url"]}, ENV, "em: must be a mapping"),
    ],
)
def test_bad_values_name_the_key(data: dict[str, Any], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        build(data, env=env)
    assert message in str(err.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file /no/such\.yaml: No such file"):
        load_config("/no/such.yaml", {}, ENV)
    bad = tmp_path / "bad.yaml"
    bad.write_text("em: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML at line 2"):
        load_config(str(bad), {}, ENV)
    empty = tmp_path / "pw"
    empty.write_text("")
    with pytest.raises(ConfigError, match=r"em.password_file: .*/pw is empty"):
        build(GOOD, {"em_password_file": str(empty)})


def test_cli_run_reports_a_config_error_and_exits_non_zero(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "em:\n  url: https://em.example:9398\n  username: svc\npoll:\n  active_interval_seconds: soon\n"
    )
    result = CliRunner().invoke(main, ["run", "--config", str(cfg)], env={"VEEAM_EM_PASSWORD": "pw-x"})
    assert result.exit_code == 2
    assert "config: poll.active_interval_seconds: must be a number, got 'soon'" in result.output
    assert "pw-x" not in result.output


def test_cli_has_no_password_flag() -> None:
    result = CliRunner().invoke(main, ["run", "--em-password", "x"])
    assert result.exit_code == 2 and "No such option '--em-password'" in result.output


def test_cli_simulate_rejects_an_unknown_scenario() -> None:
    result = CliRunner().invoke(main, ["simulate", "--scenario", "nope"])
    assert result.exit_code == 2 and "no built-in scenario 'nope'; built-in: demo, seed" in result.output


def test_the_example_config_is_valid(tmp_path: Path) -> None:
    data = yaml.safe_load((Path(__file__).parents[2] / "examples" / "exporter.yaml").read_text())
    tokens = yaml.safe_load((Path(__file__).parents[2] / "examples" / "action-tokens.yaml").read_text())
    (tmp_path / "pw").write_text("pw")
    (tmp_path / "ca.pem").write_text("")
    (tmp_path / "tokens.yaml").write_text(yaml.safe_dump(tokens))
    data["em"].update(password_file=str(tmp_path / "pw"), ca_file=str(tmp_path / "ca.pem"))
    data["actions"].update(tokens_file=str(tmp_path / "tokens.yaml"), audit_log=str(tmp_path / "audit.jsonl"))
    (tmp_path / "hook").write_text("https://hooks.slack.example/services/T/B/secret\n")
    data["actions"]["notifications"][0]["url_file"] = str(tmp_path / "hook")
    c = build(data, env={})
    assert c.actions.enabled and c.actions.dry_run
    assert [(x.name, x.plans, x.roles) for x in c.actions.callers] == [
        ("alertmanager", None, ("starter",)),
        ("grafana", None, ("viewer",)),
        ("lead", None, ("approver", "admin")),
        ("oncall", None, ("approver",)),
        ("runbook", ("ACME full site failover", ("vbr02.example.local", "Globex DR plan")), ("starter",)),
    ]
    assert c.actions.restore_point_min_age_seconds == {"Globex DR plan": 7200.0}
    assert (c.actions.approval, c.actions.plan_approval) == ("required", {"ACME DR drill": "none"})
    assert (c.poll.collect.enabled, c.poll.collect.interval_seconds) == (True, 60.0)
    assert c.readiness.rpo_for("ACME full site failover", "some-id") == 3600.0
    assert c.readiness.rpo_for("Globex DR plan", "some-id") == 14400.0
    [chat] = c.actions.notifications
    assert (chat.name, chat.format, chat.url.reveal()) == (
        "chat",
        "slack",
        "https://hooks.slack.example/services/T/B/secret",
    )
    assert "secret" not in repr(chat)


def test_actions_are_off_unless_enabled() -> None:
    assert build({**GOOD, "actions": {"allowed_plans": ["x"]}}).actions.enabled is False


@pytest.mark.parametrize(
    ("actions", "tokens", "message"),
    [
        ({"enabled": True, "audit_log": "/tmp/a"}, None, "actions are enabled but no caller token is set"),
        ({"enabled": True}, {"am": "long-enough-token-123"}, "actions.audit_log: required"),
        ({"enabled": True, "audit_log": "/tmp/a"}, {"am": "short"}, ": am: must be a string of at least 16"),
        (
            {"enabled": True, "audit_log": "/tmp/a"},
            {"am": {"token": "long-enough-token-123", "plan": ["x"]}},
            "am.plan: unknown setting",
        ),
        (
            {"enabled": True, "audit_log": "/tmp/a"},
            {"a": "long-enough-token-123", "b": "long-enough-token-123"},
            "two callers share a token",
        ),
        ({"enabled": "yes"}, None, "actions.enabled: must be true or false"),
        (
            {"enabled": True, "audit_log": "/tmp/a", "plans": {"P": {"restore_point_min_age_minutes": 0}}},
            {"am": "long-enough-token-123"},
            "actions.plans.P.restore_point_min_age_minutes: must be at least 1",
        ),
        (
            {"enabled": True, "audit_log": "/tmp/a", "approval": "required"},
            {"am": "long-enough-token-123"},
            "no caller has the approver role",
        ),
        (
            {"enabled": True, "audit_log": "/tmp/a", "plans": {"P": {"approval": "required"}}},
            {"am": "long-enough-token-123"},
            "no caller has the approver role",
        ),
        (
            {"enabled": True, "audit_log": "/tmp/a", "approval": "yes"},
            {"am": "long-enough-token-123"},
            "actions.approval: must be one of none, required",
        ),
        (
            {"enabled": True, "audit_log": "/tmp/a"},
            {"am": {"token": "long-enough-token-123", "roles": ["superuser"]}},
            "am.roles: must be a list of starter, approver, admin, viewer",
        ),
        (
            {"enabled": True, "audit_log": "/tmp/a", "external_url": "veeam.example"},
            {"am": "long-enough-token-123"},
            "actions.external_url: must start with http:// or https://",
        ),
    ],
)
def test_bad_action_settings(
    tmp_path: Path, actions: dict[str, Any], tokens: dict[str, Any] | None, message: str
) -> None:
    if tokens is not None:
        (tmp_path / "t.yaml").write_text(yaml.safe_dump(tokens))
        actions = {**actions, "tokens_file": str(tmp_path / "t.yaml")}
    with pytest.raises(ConfigError) as err:
        build({**GOOD, "actions": actions})
    assert message in str(err.value)
    assert "short" not in str(err.value) or "short" in message  # a refused token is never echoed


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        ({"url": "https://h.example/x"}, "actions.notifications[0].name: required"),
        (
            {"name": "a", "url": "https://h.example/x", "url_file": "/f"},
            "give exactly one of url or url_file",
        ),
        ({"name": "a", "url": "ftp://h.example/very-secret-path"}, "the URL must start with http"),
        (
            {"name": "a", "url": "https://h.example/x", "format": "teams"},
            "format: must be one of json, slack",
        ),
        (
            {"name": "a", "url": "https://h.example/x", "events": ["started"]},
            "events: must be a list of pending",
        ),
        ({"name": "a", "url": "https://h.example/x", "max_attempts": 0}, "max_attempts: must be at least 1"),
        (
            {"name": "a", "url": "https://h.example/x", "token": "x"},
            "notifications[0].token: unknown setting",
        ),
    ],
)
def test_bad_notification_settings(tmp_path: Path, hook: dict[str, Any], message: str) -> None:
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"am": "long-enough-token-123"}))
    actions = {"enabled": True, "audit_log": "/tmp/a", "tokens_file": str(tmp_path / "t.yaml")}
    with pytest.raises(ConfigError) as err:
        build({**GOOD, "actions": {**actions, "notifications": [hook]}})
    assert message in str(err.value)
    assert "very-secret-path" not in str(err.value)  # a refused URL is never echoed


def test_readiness_defaults_and_a_plan_named_by_id() -> None:
    r = build(GOOD).readiness
    assert (r.enabled, r.rpo_seconds, r.interval_seconds, r.plan_rpo_seconds) == (True, 14400.0, 300.0, ())
    r = build({**GOOD, "readiness": {"rpo_seconds": 600, "plans": {"id-1": {"rpo_seconds": 120}}}}).readiness
    assert (r.rpo_for("Any", "id-1"), r.rpo_for("Any", "id-2")) == (120.0, 600.0)


@pytest.mark.parametrize(
    ("readiness", "message"),
    [
        ({"rpo_seconds": 10}, "readiness.rpo_seconds: must be at least 60"),
        ({"plans": {"P": {"rpo": 60}}}, "readiness.plans.P.rpo: unknown setting"),
        ({"plans": {"P": {}}}, "readiness.plans.P.rpo_seconds: required"),
        ({"plans": ["P"]}, "readiness.plans: must be a mapping"),
        ({"enabled": "no"}, "readiness.enabled: must be true or false"),
        ({"pages_per_read": 0.5}, "readiness.pages_per_read: must be an integer"),
    ],
)
def test_bad_readiness_settings(readiness: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        build({**GOOD, "readiness": readiness})
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("collect", "message"),
    [
        ({"interval_seconds": 10}, "poll.collect.interval_seconds: must be at least 30"),
        ({"enabled": "yes"}, "poll.collect.enabled: must be true or false"),
        ({"every": 60}, "poll.collect.every: unknown setting"),
    ],
)
def test_bad_collect_settings(collect: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        build({**GOOD, "poll": {"collect": collect}})
    assert message in str(err.value)
