"""An EM outage of 20 minutes in the middle of a failover, with a real Prometheus evaluating the shipped
rules: the last known sessions and VMs stay on /metrics, no failover alert resolves, /status and
/metrics say the same, and the data's age shows in both."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from exporter.config import PollSettings
from tests import plain_http
from tests.helpers import (
    exporter_config,
    parse_samples,
    running_exporter,
    running_sim,
    series,
    value,
)
from tests.procs import prometheus

ROOT = Path(__file__).parents[2]
RULES = ROOT / "alerts" / "veeam-failover.rules.yml"
PLAN = "ACME full site failover"
SCENARIO: dict[str, Any] = {
    "time_scale": 1,
    "plans": [
        {
            "name": PLAN,
            "tenant": "ACME",
            "backup_server": "vbr01",
            "vm_stagger_seconds": 0,
            "start_at_seconds": 0,
            "vms": [
                {"name": "web", "duration_seconds": 4, "result": "Failed", "fail_at": 0.5},
                {"name": "db", "duration_seconds": 100_000},  # still failing over all along
            ],
        }
    ],
}
OUTAGE_SECONDS = 20 * 60


def firing(prom: str) -> set[str]:
    alerts = plain_http.get(prom + "/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}


def wait(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.25)


def test_a_20_minute_em_outage_resolves_no_failover_alert(tmp_path: Path) -> None:
    poll = PollSettings(active_interval_seconds=1, idle_interval_seconds=1)
    with (
        running_sim(SCENARIO) as sim,
        running_exporter(exporter_config(sim.url, poll=poll), background_polling=True) as exp,
    ):
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
            sim.clock.advance(10)  # web has failed, db fails over
            wait(lambda: {"VeeamFailoverVMFailed"} <= firing(prom), 40, "VMFailed never fired")
            before = firing(prom)
            # EM goes down; the exporter lives the next 20 minutes of it (its clock, which /metrics and
            # /status judge the data's age by), while Prometheus keeps scraping and evaluating
            sim.world.faults.update({"status": 503})
            wait(lambda: value(exp.scrape(), "veeam_em_up") == 0, 10, "the exporter never saw EM down")
            exp.exporter.clock = lambda: time.time() + OUTAGE_SECONDS
            time.sleep(6)  # six scrapes and evaluations into the outage

            after = firing(prom)
            failover_alerts = {a for a in before if a.startswith("VeeamFailover") and "Exporter" not in a}
            assert failover_alerts and failover_alerts <= after, f"resolved: {failover_alerts - after}"
            m = parse_samples(plain_http.get(exp.url + "/metrics", timeout=10).text)
            assert value(m, "veeam_em_up") == 0
            sessions = series(m, "veeam_failover_session_info")
            assert [dict(k)["plan"] for k in sessions] == [PLAN]  # the last known session, still shown
            db = {"backup_server": "vbr01", "plan": PLAN, "vm": "db"}
            assert value(m, "veeam_failover_vm_state", **db, state="Working") == 1
            last_good = value(m, "veeam_em_last_successful_poll_timestamp_seconds")
            assert last_good is not None and time.time() - last_good < 30

            page = plain_http.get(exp.url + "/status", timeout=10).text
            assert "Enterprise Manager cannot be read now" in page
            assert "(20m" in page  # the data's age, as the exporter's clock has it
            assert PLAN in page and "Working" in page and "1 failovers running" in page
