"""Every fault the simulator can inject, and what the exporter does about it: keep serving, say what it
does not know (veeam_em_up 0 within one poll, the error counted by reason), keep the last known data
for a while, back off, and recover by itself."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import pytest

from exporter.config import PollSettings
from exporter.simulator.scenario import stable_id
from tests import plain_http
from tests.helpers import exporter_config, running_exporter, running_sim, series, value

PLAN = {"backup_server": "vbr", "plan": "P"}
SCENARIO = {
    "time_scale": 1,
    "plans": [
        {
            "name": "P",
            "backup_server": "vbr",
            "start_at_seconds": 0,
            "vms": [{"name": "a", "duration_seconds": 100}, "b"],
        }
    ],
}


# fault -> (reason counted, client settings that make it bite)
BREAKING: list[tuple[dict[str, Any], str, dict[str, Any]]] = [
    ({"status": 503}, "http_5xx", {}),
    ({"status": 500, "remaining": 1}, "http_5xx", {}),
    ({"latency": 1.0}, "timeout", {"timeout_seconds": 0.3}),
    ({"reset": True}, "protocol", {}),
    ({"truncate": True}, "parse", {}),
    ({"garbage": True}, "parse", {}),
    ({"content_type": "text/html; charset=utf-8"}, "content_type", {}),
    ({"huge_bytes": 3_000_000}, "too_large", {"max_body_bytes": 1_000_000}),
    ({"trickle": 0.05}, "timeout", {"timeout_seconds": 0.5}),
    ({"page_forever": True}, "paging", {"page_size": 1}),
]


@pytest.mark.parametrize(("fault", "reason", "em"), BREAKING, ids=[r for _, r, _ in BREAKING])
def test_breaking_faults(fault: dict[str, Any], reason: str, em: dict[str, Any]) -> None:
    with running_sim(SCENARIO) as sim, running_exporter(exporter_config(sim.url, **em)) as exp:
        sim.clock.advance(30)
        exp.poll()
        good = exp.scrape()
        assert value(good, "veeam_em_up") == 1
        sim.world.faults.update(fault)
        exp.poll()
        bad = exp.scrape()  # /metrics still answers
        assert plain_http.get(exp.url + "/healthz").status_code == 200
        assert value(bad, "veeam_em_up") == 0
        assert value(bad, "veeam_em_poll_errors_total", reason=reason) == 1
        # the last known picture stays, with its age in the last-success timestamp
        assert series(bad, "veeam_failover_vm_progress_ratio") == series(
            good, "veeam_failover_vm_progress_ratio"
        )
        assert value(bad, "veeam_em_last_successful_poll_timestamp_seconds") == value(
            good, "veeam_em_last_successful_poll_timestamp_seconds"
        )
        sim.world.faults.update({})
        sim.clock.advance(10)
        exp.poll()
        healed = exp.scrape()
        assert value(healed, "veeam_em_up") == 1
        assert value(healed, "veeam_failover_vm_progress_ratio", **PLAN, vm="a") == pytest.approx(0.33)


def test_logons_refused() -> None:
    with running_sim(SCENARIO) as sim, running_exporter(exporter_config(sim.url)) as exp:
        exp.poll()
        sim.world.logon_book.expire()
        sim.world.faults.update({"refuse_logon": True})
        exp.poll()
        m = exp.scrape()
        assert value(m, "veeam_em_up") == 0 and value(m, "veeam_em_poll_errors_total", reason="logon") == 1
        sim.world.faults.update({})
        exp.poll()
        assert value(exp.scrape(), "veeam_em_up") == 1


@pytest.mark.parametrize(
    "fault",
    [{"expire_tokens_in": 1}, {"jitter": 0.05}, {"latency": 0.05}],
    ids=["token-expiry-mid-poll", "jitter", "latency"],
)
def test_benign_faults_do_not_fail_a_poll(fault: dict[str, Any]) -> None:
    with running_sim(SCENARIO) as sim, running_exporter(exporter_config(sim.url)) as exp:
        exp.poll()
        sim.world.faults.update(fault)
        sim.clock.advance(30)
        exp.poll()
        m = exp.scrape()
    assert value(m, "veeam_em_up") == 1
    assert value(m, "veeam_failover_vm_progress_ratio", **PLAN, vm="a") == pytest.approx(0.22)
    if "expire_tokens_in" in fault:
        assert value(m, "veeam_em_logons_total") == 2


def test_unknown_enum_values_are_shown_not_dropped() -> None:
    with running_sim(SCENARIO) as sim, running_exporter(exporter_config(sim.url)) as exp:
        sim.clock.advance(30)
        sim.world.faults.update({"unknown_enums": True})
        exp.poll()
        m = exp.scrape()
    assert value(m, "veeam_em_up") == 1
    assert value(m, "veeam_failover_session_state", **PLAN, state="Hibernating") == 1
    assert value(m, "veeam_failover_session_state", **PLAN, state="Working") == 0
    assert value(m, "veeam_failover_vm_result", **PLAN, vm="a", result="Hibernating") == 1


def test_duplicated_and_out_of_order_sessions_still_give_each_plans_latest() -> None:
    scenario = {
        "plans": [
            {
                "name": "A",
                "backup_server": "vbr",
                "vms": ["a"],
                "history": [{"ago_seconds": 3 * 86400}, {"ago_seconds": 10 * 86400, "result": "Failed"}],
            },
            {
                "name": "B",
                "backup_server": "vbr",
                "vms": ["b"],
                "history": [{"ago_seconds": 4 * 86400}, {"ago_seconds": 11 * 86400, "result": "Failed"}],
            },
        ]
    }
    with running_sim(scenario) as sim, running_exporter(exporter_config(sim.url, page_size=1)) as exp:
        sim.world.faults.update({"duplicate_sessions": True})
        exp.poll()
        m = exp.scrape()
        ids = {p.name: p.id for p in sim.world.scenario.plans}
    assert value(m, "veeam_em_up") == 1
    for plan in ("A", "B"):
        newest = stable_id("history", ids[plan], "0")
        assert value(m, "veeam_failover_session_info", backup_server="vbr", plan=plan, session_id=newest) == 1
        assert (
            value(m, "veeam_failover_session_result", backup_server="vbr", plan=plan, result="Success") == 1
        )


def test_stale_data_is_dropped_after_the_configured_time() -> None:
    poll = PollSettings(stale_after_seconds=1)
    with running_sim(SCENARIO) as sim, running_exporter(exporter_config(sim.url, poll=poll)) as exp:
        exp.poll()
        sim.world.faults.update({"status": 503})
        exp.poll()
        assert series(exp.scrape(), "veeam_failover_session_info")  # still within the second
        time.sleep(1.2)
        exp.poll()
        m = exp.scrape()
        assert series(m, "veeam_failover_session_info") == {}
        assert series(m, "veeam_failover_vm_state") == {}
        assert value(m, "veeam_em_up") == 0 and value(m, "veeam_em_last_successful_poll_timestamp_seconds")
        sim.world.faults.update({})
        exp.poll()
        assert series(exp.scrape(), "veeam_failover_session_info")  # back once EM answers


@pytest.mark.parametrize(("stale_after", "kept"), [(0, True), (900, False)])
def test_an_outage_keeps_the_last_known_data_unless_told_otherwise(stale_after: float, kept: bool) -> None:
    """By default the last known sessions stay through an EM outage of any length (20 minutes here),
    on /metrics and /status alike; with poll.stale_after_seconds they go, from both, past it."""
    poll = PollSettings(stale_after_seconds=stale_after)
    with running_sim(SCENARIO) as sim, running_exporter(exporter_config(sim.url, poll=poll)) as exp:
        exp.poll()
        sim.world.faults.update({"status": 503})
        exp.poll()
        exp.exporter.clock = lambda: time.time() + 20 * 60
        m = exp.scrape()
        page = plain_http.get(exp.url + "/status").text
        assert value(m, "veeam_em_up") == 0
        assert bool(series(m, "veeam_failover_session_info")) is kept
        assert bool(series(m, "veeam_failover_plan_info")) is kept
        assert ("<h2>Plans</h2>" in page and "no failover session" not in page) or not kept
        assert ("not shown" in page) is not kept
        assert "Enterprise Manager cannot be read now" in page and "(20m" in page


def test_backoff_grows_with_jitter_and_resets_on_success() -> None:
    poll = replace(PollSettings(), active_interval_seconds=10, max_backoff_seconds=300)
    with running_sim(SCENARIO) as sim, running_exporter(exporter_config(sim.url, poll=poll)) as exp:
        sim.world.faults.update({"status": 503})
        delays = []
        for _ in range(4):
            exp.exporter.poller.poll_once()
            delays.append(exp.exporter.poller.next_delay())
        for n, d in enumerate(delays):
            assert 0.8 * 10 * 2**n <= d <= 1.2 * 10 * 2**n
        sim.world.faults.update({})
        exp.exporter.poller.poll_once()
        assert exp.exporter.poller.next_delay() == 10  # the session runs: the active interval


def test_repeated_failures_do_not_flood_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="exporter")
    with running_sim(SCENARIO) as sim, running_exporter(exporter_config(sim.url)) as exp:
        sim.world.faults.update({"status": 503})
        for _ in range(10):
            exp.exporter.poller.poll_once()
        m = exp.scrape()
    assert value(m, "veeam_em_poll_errors_total", reason="http_5xx") == 10
    assert len([r for r in caplog.records if "EM poll failed" in r.getMessage()]) == 1


def test_faults_from_the_scenario_and_over_http() -> None:
    with running_sim({**SCENARIO, "faults": {"status": 503, "remaining": 2}}) as sim:
        h = {"X-RestSvcSessionId": "x"}
        assert [
            plain_http.get(sim.url + "/api/cloud/cloudFailoverPlans", headers=h).status_code for _ in range(3)
        ] == [503, 503, 401]
        r = plain_http.post(sim.url + "/_sim/faults", json={"truncat": True})
        assert r.status_code == 400 and "unknown fault 'truncat'" in r.json()["error"]
        assert plain_http.post(sim.url + "/_sim/faults", json={"truncate": True}).status_code == 200
        assert sim.world.faults.truncate is True
