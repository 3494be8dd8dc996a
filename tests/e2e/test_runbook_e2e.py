"""End to end with the real thing: Prometheus fires a rule, Alertmanager (routed by the example config)
posts to the exporter, the exporter starts the allowed plan exactly once and refuses the other."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from exporter.config import ActionSettings, Caller, PollSettings
from exporter.secret import Secret
from tests.helpers import exporter_config, running_exporter, running_sim, value
from tests.procs import alertmanager, binary, prometheus

EXAMPLES = Path(__file__).parents[2] / "examples"
AM_TOKEN = "alertmanager-e2e-token-0123456789"
ACME = "ACME full site failover"
GLOBEX = "Globex DR plan"
SCENARIO = {
    "time_scale": 1,
    "task_delay_seconds": 1,
    "plans": [
        {"name": ACME, "backup_server": "vbr01", "vms": ["web", "db"]},
        {"name": GLOBEX, "backup_server": "vbr01", "vms": ["app"]},
    ],
}
SITE_DOWN_EXPR = 'label_replace(veeam_failover_plan_info, "veeam_failover_plan", "$1", "plan", "(.*)")'
SITE_DOWN_RULE = {
    "groups": [
        {
            "name": "site",
            "rules": [
                {
                    # a stand-in for a real "site down" signal: every plan the exporter reports
                    "alert": "VeeamSiteDown",
                    "expr": SITE_DOWN_EXPR,
                    "labels": {"severity": "critical", "runbook": "veeam-failover"},
                    "annotations": {"summary": "The primary site is down."},
                }
            ],
        }
    ]
}


def test_example_alertmanager_config_passes_amtool() -> None:
    proc = subprocess.run(
        [binary("amtool"), "check-config", str(EXAMPLES / "alertmanager.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def am_config(exporter_url: str, token_file: Path) -> dict[str, Any]:
    """The example, pointed at this test's exporter, with test-sized waits."""
    cfg: dict[str, Any] = yaml.safe_load((EXAMPLES / "alertmanager.yml").read_text())
    runbook = next(r for r in cfg["receivers"] if r["name"] == "veeam-failover-runbook")["webhook_configs"][0]
    runbook["url"] = exporter_url + "/api/v1/alertmanager"
    runbook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    next(r for r in cfg["receivers"] if r["name"] == "on-call")["webhook_configs"][0]["url"] = (
        "http://127.0.0.1:9/"
    )
    route = cfg["route"]["routes"][0]
    route.update(group_wait="1s", group_interval="1s")
    return cfg


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_alert_to_alertmanager_to_exactly_one_start(tmp_path: Path) -> None:
    token_file = tmp_path / "am-token"
    token_file.write_text(AM_TOKEN)
    audit = tmp_path / "audit.jsonl"
    actions = ActionSettings(
        enabled=True,
        callers=(Caller("alertmanager", Secret(AM_TOKEN)),),
        allowed_plans=(ACME,),
        audit_log=str(audit),
        task_poll_interval_seconds=0.2,
    )
    poll = PollSettings(active_interval_seconds=1, idle_interval_seconds=1)
    with (
        running_sim(SCENARIO) as sim,
        running_exporter(exporter_config(sim.url, actions=actions, poll=poll)) as exp,
    ):
        exp.poll()
        with alertmanager(tmp_path / "am", am_config(exp.url, token_file)) as am_url:
            prom_cfg = {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(tmp_path / "prom" / "site.yml")],
                "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am_url.split("//")[1]]}]}]},
                "scrape_configs": [
                    {"job_name": "veeam", "static_configs": [{"targets": [exp.url.split("//")[1]]}]}
                ],
            }
            with prometheus(tmp_path / "prom", prom_cfg, {"site.yml": SITE_DOWN_RULE}):

                def lines() -> list[dict[str, Any]]:
                    return [json.loads(x) for x in audit.read_text().splitlines()] if audit.exists() else []

                def decided(plan: str, outcome: str) -> bool:
                    return any(
                        x.get("plan") == plan and x["outcome"] == outcome and x["source"] == "alertmanager"
                        for x in lines()
                    )

                wait_for(
                    lambda: decided(ACME, "accepted") and decided(GLOBEX, "forbidden"),
                    60,
                    "Alertmanager's deliveries",
                )
                sim.clock.advance(2)  # the EM task finishes
                wait_for(lambda: any(x["outcome"] == "task_finished" for x in lines()), 20, "the EM task")
                time.sleep(3)  # let Alertmanager re-deliver if it were going to
                exp.poll()
                m = exp.scrape()
    assert [s.plan_id for s in sim.world.starts] == [sim.world.scenario.plans[0].id]  # exactly one, ACME's
    finished = next(x for x in lines() if x["outcome"] == "task_finished")
    assert (
        value(
            m,
            "veeam_failover_session_info",
            backup_server="vbr01",
            plan=ACME,
            session_id=finished["em_session_id"],
        )
        == 1
    )
    assert value(m, "veeam_failover_session_state", backup_server="vbr01", plan=ACME, state="Starting") == 1
    refused = next(x for x in lines() if x["outcome"] == "forbidden")
    assert (refused["caller"], refused["status"], refused["alert_fingerprint"] is not None) == (
        "alertmanager",
        403,
        True,
    )
    assert (
        value(m, "veeam_failover_start_requests_total", plan=ACME, source="alertmanager", outcome="accepted")
        == 1
    )
    refusals = value(
        m, "veeam_failover_start_requests_total", plan=GLOBEX, source="alertmanager", outcome="forbidden"
    )
    assert refusals is not None and refusals >= 1  # Alertmanager does not retry a 403
