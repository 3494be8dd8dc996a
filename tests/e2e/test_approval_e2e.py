"""End to end with real Prometheus and Alertmanager (the example routing): approval mode, announcements,
the hourly limit and the example inhibit rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from exporter.config import ActionSettings, Caller, NotificationTarget, PollSettings
from exporter.secret import Secret
from tests import plain_http
from tests.e2e.test_runbook_e2e import AM_TOKEN, SITE_DOWN_RULE, am_config, wait_for
from tests.helpers import exporter_config, running_exporter, running_sim, value, what_approving_does
from tests.procs import alertmanager, prometheus
from tests.receiver import running_receiver

ROOT = Path(__file__).parents[2]
APPROVER = "approver-e2e-token-0123456789"
ACME = "ACME full site failover"
GLOBEX = "Globex DR plan"
POLL = PollSettings(active_interval_seconds=1, idle_interval_seconds=1)


def prom_config(tmp: Path, exporter_url: str, am_url: str, rule_files: list[str]) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": rule_files,
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am_url.split("//")[1]]}]}]},
        "scrape_configs": [
            {
                "job_name": "veeam-failover-exporter",
                "static_configs": [{"targets": [exporter_url.split("//")[1]]}],
            }
        ],
    }


def audit_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_alert_waits_for_a_second_person_then_starts_once(tmp_path: Path) -> None:
    token_file = tmp_path / "am-token"
    token_file.write_text(AM_TOKEN)
    audit = tmp_path / "audit.jsonl"
    scenario = {
        "time_scale": 1,
        "task_delay_seconds": 1,
        "plans": [
            {"name": ACME, "backup_server": "vbr01", "vms": ["web", "db"]},
            {"name": GLOBEX, "backup_server": "vbr01", "vms": ["app"]},
        ],
    }
    with running_receiver() as chat, running_sim(scenario) as sim:
        actions = ActionSettings(
            enabled=True,
            callers=(
                Caller("alertmanager", Secret(AM_TOKEN)),
                Caller("oncall", Secret(APPROVER), roles=("approver",)),
            ),
            allowed_plans=(ACME, GLOBEX),
            audit_log=str(audit),
            task_poll_interval_seconds=0.2,
            approval="required",
            approval_timeout_seconds=15,
            notifications=(NotificationTarget("chat", Secret(chat.url), retry_base_seconds=0.1),),
        )
        with running_exporter(exporter_config(sim.url, actions=actions, poll=POLL)) as exp:
            exp.poll()
            with (
                alertmanager(tmp_path / "am", am_config(exp.url, token_file)) as am_url,
                prometheus(
                    tmp_path / "prom",
                    prom_config(tmp_path, exp.url, am_url, [str(tmp_path / "prom" / "site.yml")]),
                    {"site.yml": SITE_DOWN_RULE},
                ),
            ):

                def pending() -> dict[str, str]:
                    return {m["plan"]: m["request_id"] for m in chat.received if m["event"] == "pending"}

                # the alert reached the exporter through Alertmanager, and the webhook heard of it
                wait_for(lambda: set(pending()) == {ACME, GLOBEX}, 60, "both pending decisions announced")
                assert sim.world.starts == []
                decisions = pending()

                def approve(did: str, token: str) -> httpx.Response:
                    return plain_http.post(
                        f"{exp.url}/api/v1/decisions/{did}/approve",
                        headers={"Authorization": f"Bearer {token}"},
                        json=what_approving_does(exp.url, did, APPROVER) or None,
                        timeout=30,
                    )

                own = approve(decisions[ACME], AM_TOKEN)  # the requester's own approval
                assert own.status_code == 403 and "two-person rule" in own.json()["reason"]
                ok = approve(decisions[ACME], APPROVER)
                assert ok.status_code == 202 and ok.json()["outcome"] == "accepted", ok.text
                # Globex is left alone: it expires, and an approval after that starts nothing
                wait_for(lambda: "expired" in [x["outcome"] for x in audit_lines(audit)], 30, "the expiry")
                assert approve(decisions[GLOBEX], APPROVER).status_code in (404, 409)
                sim.clock.advance(2)  # the EM task finishes
                wait_for(
                    lambda: any(x["outcome"] == "task_finished" for x in audit_lines(audit)), 20, "EM task"
                )
                wait_for(
                    lambda: {"approved", "accepted", "expired"} <= {m["event"] for m in chat.received},
                    10,
                    "the announcements",
                )
                exp.poll()
                m = exp.scrape()
    assert [s.plan_id for s in sim.world.starts] == [sim.world.scenario.plans[0].id]  # once, ACME's
    finished = next(x for x in audit_lines(audit) if x["outcome"] == "task_finished")
    session = {"backup_server": "vbr01", "plan": ACME, "session_id": finished["em_session_id"]}
    assert value(m, "veeam_failover_session_info", **session) == 1
    assert value(m, "veeam_failover_decisions_total", plan=ACME, verdict="approved") == 1
    assert value(m, "veeam_failover_decisions_total", plan=GLOBEX, verdict="expired") == 1
    accepted = next(x for x in audit_lines(audit) if x["outcome"] == "accepted")
    assert (accepted["caller"], accepted["approver"], accepted["source"]) == (
        "alertmanager",
        "oncall",
        "alertmanager",
    )
    assert accepted["alert_fingerprint"] and accepted["request_id"] == decisions[ACME]


def test_ten_plans_alerting_at_once_start_three_and_the_limit_alert_fires(tmp_path: Path) -> None:
    token_file = tmp_path / "am-token"
    token_file.write_text(AM_TOKEN)
    audit = tmp_path / "audit.jsonl"
    names = [f"Tenant {i:02d} DR plan" for i in range(10)]
    scenario = {
        "time_scale": 1,
        "task_delay_seconds": 1,
        "plans": [{"name": n, "backup_server": f"vbr0{i % 2}", "vms": ["vm"]} for i, n in enumerate(names)],
    }
    actions = ActionSettings(
        enabled=True,
        callers=(Caller("alertmanager", Secret(AM_TOKEN)),),
        allowed_plans=tuple(names),
        audit_log=str(audit),
        task_poll_interval_seconds=0.2,
        max_starts_per_hour=3,
    )
    rules = [str(tmp_path / "prom" / "site.yml"), str(ROOT / "alerts" / "veeam-failover.rules.yml")]
    with (
        running_sim(scenario) as sim,
        running_exporter(exporter_config(sim.url, actions=actions, poll=POLL)) as exp,
    ):
        exp.poll()
        with (
            alertmanager(tmp_path / "am", am_config(exp.url, token_file)) as am_url,
            prometheus(
                tmp_path / "prom", prom_config(tmp_path, exp.url, am_url, rules), {"site.yml": SITE_DOWN_RULE}
            ) as prom,
        ):

            def decided() -> dict[str, set[str]]:
                """Plans by outcome. Alertmanager sends a refused (4xx) notification again at the next
                group_interval, so a refused plan may be refused more than once."""
                out: dict[str, set[str]] = {"accepted": set(), "conflict": set()}
                for x in audit_lines(audit):
                    if x.get("source") == "alertmanager" and x["outcome"] in out:
                        out[x["outcome"]].add(x["plan"])
                return out

            wait_for(lambda: sum(len(v) for v in decided().values()) >= 10, 60, "10 plans decided")

            def limit_alert() -> list[dict[str, Any]]:
                alerts = plain_http.get(prom + "/api/v1/alerts", timeout=10).json()["data"]["alerts"]
                return [
                    a
                    for a in alerts
                    if a["labels"]["alertname"] == "VeeamFailoverStartLimitReached" and a["state"] == "firing"
                ]

            wait_for(lambda: bool(limit_alert()), 60, "VeeamFailoverStartLimitReached firing")
            firing = limit_alert()
    plans = decided()
    assert len(plans["accepted"]) == 3 and plans["conflict"] == set(names) - plans["accepted"], plans
    assert len(sim.world.starts) == 3  # exactly three reached EM, however often the others were refused
    refused = [x for x in audit_lines(audit) if x["outcome"] == "conflict"]
    assert all("max_starts_per_hour (3)" in x["reason"] for x in refused)
    assert firing[0]["value"] in ("3", "3e+00")


def test_example_inhibit_rules_silence_what_follows_from_em_unreachable(tmp_path: Path) -> None:
    token_file = tmp_path / "am-token"
    token_file.write_text(AM_TOKEN)
    cfg = am_config("http://127.0.0.1:9", token_file)
    with alertmanager(tmp_path / "am", cfg) as am:
        labels = {"job": "veeam-failover-exporter", "instance": "exp:9849", "severity": "critical"}
        alerts = [
            {"labels": {**labels, "alertname": "VeeamEMUnreachable"}},
            {"labels": {**labels, "alertname": "VeeamFailoverExporterDataStale"}},
            {"labels": {**labels, "alertname": "VeeamFailoverStalled", "plan": "A", "backup_server": "b"}},
            {"labels": {**labels, "alertname": "VeeamFailoverFailed", "plan": "A", "backup_server": "b"}},
            {"labels": {**labels, "instance": "other:9849", "alertname": "VeeamFailoverExporterDataStale"}},
        ]
        assert plain_http.post(am + "/api/v2/alerts", json=alerts, timeout=10).status_code == 200

        def states() -> dict[tuple[str, str], str]:
            got = plain_http.get(am + "/api/v2/alerts", timeout=10).json()
            return {(a["labels"]["alertname"], a["labels"]["instance"]): a["status"]["state"] for a in got}

        wait_for(lambda: len(states()) == 5 and "unprocessed" not in states().values(), 20, "Alertmanager")
        assert states() == {
            ("VeeamEMUnreachable", "exp:9849"): "active",
            ("VeeamFailoverExporterDataStale", "exp:9849"): "suppressed",
            ("VeeamFailoverStalled", "exp:9849"): "suppressed",
            ("VeeamFailoverFailed", "exp:9849"): "active",  # a failed failover is news whatever EM's state
            ("VeeamFailoverExporterDataStale", "other:9849"): "active",  # another exporter: its own problem
        }
