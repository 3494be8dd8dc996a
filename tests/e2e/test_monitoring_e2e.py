"""Dashboards and rules against a real Prometheus: it scrapes the exporter while the simulator runs a
failover with mixed results; every panel query, variable, annotation and rule expression is then
evaluated through Prometheus's HTTP API. Each must parse, and return data where it should."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import ActionSettings, Caller, PollSettings, ReadinessSettings
from exporter.secret import Secret
from tests import plain_http
from tests.helpers import (
    RunningExporter,
    RunningSim,
    exporter_config,
    parse_samples,
    running_exporter,
    running_sim,
    series,
)
from tests.procs import binary, prometheus

ROOT = Path(__file__).parents[2]
RULES = ROOT / "alerts" / "veeam-failover.rules.yml"
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
TOKEN = "monitoring-e2e-token-0123456789"
ACME, GLOBEX, INITECH = "ACME full site failover", "Globex DR plan", "Initech failover"
# the demo's plans, played once (no repeats) at 120x: both failovers end within about 12 s
SCENARIO = {
    "time_scale": 120,
    "task_delay_seconds": 3,
    "plans": [
        {
            "name": ACME,
            "tenant": "ACME",
            "backup_server": "vbr01.example.local",
            "vm_stagger_seconds": 60,
            "start_at_seconds": 0,
            "vms": [
                {"name": "acme-dc01", "duration_seconds": 300, "restore_point_age_seconds": 900},
                {"name": "acme-sql01", "duration_seconds": 900, "restore_point_age_seconds": 1800},
                {"name": "acme-web01", "duration_seconds": 600, "result": "Warning"},
                # past the plans' RPO (readiness.rpo_seconds, 4 h): VeeamFailoverRestorePointTooOld
                {"name": "acme-files01", "duration_seconds": 1200, "restore_point_age_seconds": 18000},
            ],
        },
        {
            "name": GLOBEX,
            "tenant": "Globex",
            "backup_server": "vbr02.example.local",
            "vm_stagger_seconds": 90,
            "start_at_seconds": 120,
            "vms": [
                {"name": "globex-app01", "duration_seconds": 480},
                {"name": "globex-app02", "duration_seconds": 480, "result": "Failed", "fail_at": 0.6},
                {"name": "globex-db01", "duration_seconds": 960, "restore_point_age_seconds": 14400},
            ],
        },
        {
            "name": INITECH,
            "tenant": "Initech",
            "backup_server": "vbr01.example.local",
            "history": [{"ago_seconds": 7200}],
            "vms": [{"name": "initech-erp01", "duration_seconds": 600}],
        },
        # readiness: failed over 14 hours ago and never undone; a VM whose replication stopped 5 hours
        # ago (past the default 4-hour RPO); a VM never replicated
        {
            "name": "Umbrella DR",
            "tenant": "Umbrella",
            "backup_server": "vbr02.example.local",
            "history": [{"ago_seconds": 14 * 3600, "in_dr": True}],
            "vms": ["umbrella-web01"],
        },
        {
            "name": "Hooli plan",
            "tenant": "Hooli",
            "backup_server": "vbr02.example.local",
            "vms": [
                {"name": "hooli-db01", "restore_point_age_seconds": 5 * 3600, "replication": "stopped"},
                {"name": "hooli-new01", "replication": "never"},
            ],
        },
    ],
}
# rules that must return data once the failovers above have ended, and those that must not
FIRING_AT_END = {
    "VeeamFailoverFailed",
    "VeeamFailoverVMFailed",
    "VeeamFailoverFinishedWithWarnings",
    "VeeamFailoverRestorePointTooOld",
    "VeeamFailoverStartRefused",
    "VeeamFailoverStartAccepted",
    "VeeamFailoverRPOAtRisk",  # pending (for: 10m) is enough: Prometheus evaluated it to true
    "VeeamFailoverPlanVMUnprotected",
    "VeeamFailoverVMInDR",
}
QUIET_AT_END = {
    "VeeamFailoverStalled",
    "VeeamFailoverProgressUnknown",
    "VeeamFailoverTooSlow",
    "VeeamEMUnreachable",
    "VeeamFailoverExporterDown",
    "VeeamFailoverExporterAbsent",
    "VeeamFailoverExporterDataStale",
    "VeeamFailoverStartFailed",
    "VeeamFailoverStartLimitReached",
    "VeeamFailoverStartDryRun",
    "VeeamFailoverApprovalPending",
    "VeeamFailoverNotificationsFailing",
    "VeeamFailoverKillSwitchOn",
    "VeeamFailoverEMDataOld",
}
# panel targets that are empty once nothing runs and nothing fails (checked mid-failover instead)
EMPTY_AT_END = {
    ("Failover duration: running vs. longest of the last 7 days", "A"),
    ("Data age", "B"),  # only while failovers run
    ("EM logons and poll errors", "B"),
    # per-VM lists cover running failovers only (at 200 plans, all of them is unreadable)
    ("Progress per VM: running failovers, the 50 least advanced", "A"),
    ("VM state over time: running failovers", "A"),
}


def substitute(expr: str) -> str:
    expr = expr.replace("$__rate_interval", "1m").replace("$__range", "5m")
    return re.sub(r"\$\{?(job|instance|backup_server|tenant|plan)\}?", ".*", expr)


def panel_targets() -> list[tuple[str, str, str, str]]:
    out = []
    for path in DASHBOARDS:
        d = json.loads(path.read_text())
        for p in d["panels"]:
            for t in p.get("targets", []):
                out.append((d["uid"], p["title"], t["refId"], t["expr"]))
        for a in d["annotations"]["list"]:
            out.append((d["uid"], f"annotation {a['name']}", "A", a["expr"]))
    return out


def query(prom: str, expr: str, at: float | None = None) -> list[dict[str, Any]]:
    params = {"query": substitute(expr)}
    if at is not None:
        params["time"] = f"{at:.3f}"
    r = plain_http.get(prom + "/api/v1/query", params=params, timeout=10)
    body = r.json()
    assert r.status_code == 200 and body["status"] == "success", f"{expr!r}: {body.get('error')}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_dashboards_are_importable_as_committed() -> None:
    assert (
        subprocess.run([".venv/bin/python", "-m", "monitoring", "check"], cwd=ROOT, check=False).returncode
        == 0
    ), "dashboards/*.json differ from what python -m monitoring generate makes"
    uids = set()
    for path in DASHBOARDS:
        text = path.read_text()
        d = json.loads(text)
        assert "__inputs" not in d and "${DS_" not in text
        assert d["schemaVersion"] == 39 and d["id"] is None and 8 <= len(d["uid"]) <= 40
        uids.add(d["uid"])
        variables = {v["name"]: v for v in d["templating"]["list"]}
        assert (
            variables["datasource"]["type"] == "datasource"
            and variables["datasource"]["query"] == "prometheus"
        )
        assert {"job", "instance", "backup_server", "tenant", "plan"} <= set(variables)
        for p in d["panels"]:
            if p["type"] != "row":
                assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
                assert all(t["datasource"] == p["datasource"] for t in p["targets"])
            for t in p.get("targets", []):
                assert "rate(" not in t["expr"] or "[$__rate_interval]" in t["expr"], p["title"]
    assert uids == {"veeam-failover-overview", "veeam-failover-session"}


def test_rules_are_generated_checked_and_unit_tested() -> None:
    assert (
        subprocess.run([".venv/bin/python", "-m", "monitoring", "check"], cwd=ROOT, check=False).returncode
        == 0
    ), "alerts/veeam-failover.rules.yml differs from what python -m monitoring generate makes"
    check = subprocess.run(
        [
            binary("promtool"),
            "check",
            "rules",
            str(RULES),
            str(ROOT / "alerts" / "examples" / "site-down.rules.yml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run(
        [binary("promtool"), "test", "rules", "alerts/tests/veeam-failover.test.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert unit.returncode == 0 and "SUCCESS" in unit.stdout, unit.stdout + unit.stderr
    groups = yaml.safe_load(RULES.read_text())["groups"]
    alerts = [r for g in groups for r in g["rules"] if "alert" in r]
    for r in alerts:
        assert re.fullmatch(r"(Veeam)([A-Z][a-z0-9]*)+", r["alert"]) and len(r["alert"]) <= 40, r["alert"]
        assert r["labels"]["severity"] in ("critical", "warning", "info")
        assert "{{" not in r["annotations"]["summary"] and r["annotations"]["summary"].endswith(".")
        assert "{{" in r["annotations"]["description"]
        anchor = r["annotations"]["runbook_url"].rsplit("#", 1)[1]
        assert (
            f"## {r['alert']}\n" in (ROOT / "docs" / "runbooks.md").read_text()
            and anchor == r["alert"].lower()
        )
    assert {r["alert"] for r in alerts} == FIRING_AT_END | QUIET_AT_END


def test_every_panel_and_rule_against_a_real_prometheus(tmp_path: Path) -> None:
    actions = ActionSettings(
        enabled=True,
        callers=(Caller("runbook", Secret(TOKEN)),),
        allowed_plans=(INITECH,),
        audit_log=str(tmp_path / "audit.jsonl"),
        task_poll_interval_seconds=0.2,
    )
    poll = PollSettings(active_interval_seconds=1, idle_interval_seconds=1)
    readiness = ReadinessSettings(interval_seconds=5)
    with running_sim(SCENARIO) as sim:
        config = dataclasses.replace(
            exporter_config(sim.url, actions=actions, poll=poll), readiness=readiness
        )
        with running_exporter(config, background_polling=True) as exp:
            _run(tmp_path, sim, exp)


def _run(tmp_path: Path, sim: RunningSim, exp: RunningExporter) -> None:
    sim.clock.now = time.time()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "veeam-failover-exporter",
                "static_configs": [{"targets": [exp.url.split("//")[1]]}],
            }
        ],
    }
    with prometheus(tmp_path / "prom", config) as prom:

        def start(plan: str) -> int:
            return plain_http.post(
                f"{exp.url}/api/v1/plans/{plan}/start",
                json={"start_now": True},
                headers={"Authorization": f"Bearer {TOKEN}"},
            ).status_code

        deadline = time.monotonic() + 30  # Prometheus applies new targets after about 5 s
        while not query(prom, 'up{job="veeam-failover-exporter"} == 1'):
            assert time.monotonic() < deadline, "Prometheus never scraped the exporter"
            time.sleep(0.2)
        sim.clock.now = time.time()
        sim.world.reschedule(sim.clock.now)  # the failovers begin now that Prometheus watches
        mid = None
        deadline = time.monotonic() + 60
        refused = 0
        while time.monotonic() < deadline:
            sim.clock.now = time.time()  # the simulated EM runs on real time here
            m = parse_samples(plain_http.get(exp.url + "/metrics").text)
            if not any(dict(k)["plan"] == ACME for k in series(m, "veeam_failover_session_info")):
                time.sleep(0.2)
                continue
            if refused == 0:
                assert start(INITECH) == 202 and start(GLOBEX) == 403
                refused = 1
            working = [v for k, v in series(m, "veeam_failover_vm_progress_ratio").items() if 0 < v < 1]
            if mid is None and working:
                mid = time.time() + 1.5  # a moment Prometheus has scraped by then
            stopped = [
                dict(k)["plan"]
                for k, v in series(m, "veeam_failover_session_state").items()
                if dict(k)["state"] == "Stopped" and v == 1
            ]
            if mid is not None and time.time() > mid + 3 and {ACME, GLOBEX, INITECH} <= set(stopped):
                break
            time.sleep(0.3)
        else:
            pytest.fail("the failovers did not finish in time")
        assert start(GLOBEX) == 403  # a second refusal: the counter increases, rate panels have data
        time.sleep(4)  # scrapes and rule evaluations of the end state
        assert mid is not None

        failures = []
        for uid, title, ref, expr in panel_targets():
            result = query(prom, expr)  # raises if Prometheus cannot parse it
            if not result and (title, ref) not in EMPTY_AT_END:
                failures.append(f"{uid} / {title} / {ref}: no data at the end")
        for title, ref in EMPTY_AT_END:
            expr = next(e for _, t, r, e in panel_targets() if (t, r) == (title, ref))
            if title.startswith(
                ("Failover duration", "Data age", "Progress per VM", "VM state")
            ) and not query(prom, expr, at=mid):
                failures.append(f"{title} / {ref}: no data mid-failover")
        at_mid = query(prom, "veeam_failover_vm_progress_ratio", at=mid)
        assert [r for r in at_mid if 0 < float(r["value"][1]) < 1], (
            f"no VM mid-way at {mid} (now {time.time()}): {at_mid}"
        )
        assert (
            float(
                query(
                    prom,
                    'count(max without (state) (veeam_failover_session_state{state!="Stopped"}) == 1)',
                    at=mid,
                )[0]["value"][1]
            )
            >= 1
        )
        for path in DASHBOARDS:
            for v in json.loads(path.read_text())["templating"]["list"]:
                if v["type"] == "query":
                    found = re.fullmatch(r"label_values\((.*), (\w+)\)", v["definition"])
                    assert found, v["definition"]
                    metric, label = found.groups()
                    if not query(prom, f"group by ({label}) ({metric})"):
                        failures.append(f"variable {v['name']}: no values")
        for group in yaml.safe_load(RULES.read_text())["groups"]:
            for rule in group["rules"]:
                result = query(prom, rule["expr"])
                name = rule.get("alert") or rule["record"]
                if name in QUIET_AT_END and result:
                    failures.append(f"{name}: should be quiet, returned {result}")
                elif name not in QUIET_AT_END and not result:
                    failures.append(f"{name}: returned no data")
                if "record" in rule and not query(prom, rule["record"]):
                    failures.append(f"{name}: not recorded by Prometheus")
        firing = {
            a["labels"]["alertname"] for a in plain_http.get(prom + "/api/v1/alerts").json()["data"]["alerts"]
        }
        assert firing >= FIRING_AT_END, f"not firing: {FIRING_AT_END - firing}; {failures}"
        assert not firing & QUIET_AT_END
    assert not failures, "\n".join(failures)
