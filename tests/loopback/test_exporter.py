"""The whole exporter over loopback: simulator -> EM client -> poller -> collector -> /metrics."""

from __future__ import annotations

import dataclasses
import gzip
import logging
import shutil
import subprocess
from typing import Any

import httpx
import pytest

from exporter.config import PollSettings
from exporter.em.model import SESSION_RESULTS, SESSION_STATES
from exporter.simulator.scenario import Scenario, scenario_from_dict
from tests import plain_http
from tests.helpers import (
    RunningSim,
    exporter_config,
    parse_samples,
    running_exporter,
    running_sim,
    series,
    utc,
    value,
)
from tests.seed_contract import LONG_HISTORY, assert_seed_contract, one_hot


def test_seed_session_every_metric_exact() -> None:
    with running_sim("seed") as sim, running_exporter(exporter_config(sim.url, poll=LONG_HISTORY)) as exp:
        exp.poll()
        m = exp.scrape()
    assert_seed_contract(m)
    # the first poll: logon, plans, one page of sessions, one batch of replica points
    assert value(m, "veeam_em_poll_requests") == 4
    assert (
        value(m, "veeam_em_requests_total", endpoint="/api/query?type=CloudVmReplicaPoint", code="200") == 1
    )


def test_restore_point_time_comes_from_the_point_not_its_name() -> None:
    scenario = {
        "plans": [{"name": "P", "backup_server": "vbr", "vms": ["vm1", "vm2"]}],
        "sessions": [
            {
                "id": "s1",
                "plan": "P",
                "creation_time": "2026-01-01T10:00:00Z",
                "state": "Working",
                "tasks": [
                    # the name carries local time (UTC+2); CreationTimeUTC is the truth
                    {
                        "vm": "vm1",
                        "point_id": "p1",
                        "point_name": "vm1@2026-01-01 09:00:00",
                        "point_time": "2026-01-01T07:00:00Z",
                        "creation_time": "2026-01-01T10:00:01Z",
                    },
                    {
                        "vm": "vm2",
                        "point_id": "p2",
                        "point_name": "vm2@2026-01-01 08:30:00",
                        "point_time": "2026-01-01T06:30:00Z",
                        "creation_time": "2026-01-01T10:00:01Z",
                    },
                ],
            }
        ],
    }
    with running_sim(scenario) as sim, running_exporter(exporter_config(sim.url, poll=LONG_HISTORY)) as exp:
        del sim.world.points["p2"]  # EM cannot read this point: fall back to the name
        exp.poll()
        m = exp.scrape()
        assert value(
            m, "veeam_failover_vm_restore_point_timestamp_seconds", backup_server="vbr", plan="P", vm="vm1"
        ) == utc("2026-01-01T07:00:00")
        assert value(
            m, "veeam_failover_vm_restore_point_timestamp_seconds", backup_server="vbr", plan="P", vm="vm2"
        ) == utc("2026-01-01T08:30:00")
        exp.poll()  # points never change: asked for once, not every poll
        assert sim.world.requests["GET /api/query?type=CloudVmReplicaPoint"] == 1


def mixed(result: str) -> dict[str, Any]:
    return {
        "time_scale": 1,
        "plans": [
            {
                "name": "Tenant plan",
                "backup_server": "vbr01",
                "vm_stagger_seconds": 10,
                "start_at_seconds": 0,
                "vms": [
                    {"name": "web", "duration_seconds": 100, "restore_point_age_seconds": 600},
                    {"name": "db", "duration_seconds": 200, "result": result, "fail_at": 0.6},
                ],
            }
        ],
    }


def session_entity_reads(sim: RunningSim) -> int:
    return sum(n for k, n in sim.world.requests.items() if k.startswith("GET /api/cloud/failoverSessions/"))


def with_tasks(scenario: dict[str, Any], in_query: str, when_ended: str = "kept") -> Scenario:
    """The scenario on an EM that writes VM tasks into its query answers `in_query` (always,
    while_running, never) and keeps them in finished sessions' entities or drops them (profiles.py)."""
    sc = scenario_from_dict(scenario)
    profile = dataclasses.replace(sc.profile, tasks_in_query=in_query, tasks_when_ended=when_ended)
    return dataclasses.replace(sc, profile=profile)


@pytest.mark.parametrize("tasks", ["always", "while_running", "never"])
@pytest.mark.parametrize("result", ["Success", "Warning", "Failed"])
def test_a_failover_progresses_vm_by_vm_to_its_result(result: str, tasks: str) -> None:
    """Whether EM's query answers carry VM tasks always, only while a session runs (its examples), or
    never: every VM's progress and result show, to the end (a finished session's entity is read once)."""
    p = {"backup_server": "vbr01", "plan": "Tenant plan"}
    with (
        running_sim(with_tasks(mixed(result), tasks)) as sim,
        running_exporter(exporter_config(sim.url)) as exp,
    ):
        t0 = sim.clock.now
        sim.clock.advance(60)  # web: Working (60 s in); db: Working (50 s in)
        exp.poll()
        m = exp.scrape()
        assert one_hot(m, "veeam_failover_session_state", "state", SESSION_STATES, **p) == {"Working": 1}
        assert one_hot(m, "veeam_failover_session_result", "result", SESSION_RESULTS, **p) == {"None": 1}
        assert value(m, "veeam_failover_vm_progress_ratio", **p, vm="web") == 0.55  # (60-10)/(100-10)
        assert value(m, "veeam_failover_vm_progress_ratio", **p, vm="db") == 0.21  # (50-10)/(200-10)
        assert value(m, "veeam_failover_session_progress_ratio", **p) == 0.38
        assert value(m, "veeam_failover_vm_restore_point_timestamp_seconds", **p, vm="web") == float(
            int(t0 - 600)
        )
        assert exp.exporter.poller.next_delay() == 10.0  # active: fast polling

        sim.clock.advance(50)  # web done at 100 s
        exp.poll()
        m = exp.scrape()
        assert one_hot(m, "veeam_failover_vm_state", "state", SESSION_STATES, **p, vm="web") == {"Stopped": 1}
        assert one_hot(m, "veeam_failover_vm_result", "result", SESSION_RESULTS, **p, vm="web") == {
            "Success": 1
        }
        assert value(m, "veeam_failover_vm_end_timestamp_seconds", **p, vm="web") == pytest.approx(t0 + 100)
        assert value(m, "veeam_failover_vm_progress_ratio", **p, vm="web") == 1
        assert one_hot(m, "veeam_failover_vm_state", "state", SESSION_STATES, **p, vm="db") == {"Working": 1}

        sim.clock.advance(200)
        exp.poll()
        m = exp.scrape()
        db_end = t0 + 10 + (120 if result == "Failed" else 200)
        assert one_hot(m, "veeam_failover_session_state", "state", SESSION_STATES, **p) == {"Stopped": 1}
        assert one_hot(m, "veeam_failover_session_result", "result", SESSION_RESULTS, **p) == {result: 1}
        assert one_hot(m, "veeam_failover_vm_result", "result", SESSION_RESULTS, **p, vm="db") == {result: 1}
        assert value(m, "veeam_failover_vm_end_timestamp_seconds", **p, vm="db") == pytest.approx(db_end)
        assert value(m, "veeam_failover_session_end_timestamp_seconds", **p) == pytest.approx(db_end)
        assert value(m, "veeam_failover_session_progress_ratio", **p) == 1
        assert value(m, "veeam_failover_vm_progress_ratio", **p, vm="db") == (
            0.6 if result == "Failed" else 1
        )
        assert exp.exporter.poller.next_delay() == 60.0  # all idle: slow polling
        entity_reads = session_entity_reads(sim)
        exp.poll()  # a finished session is read as an entity once at most, never again
        assert session_entity_reads(sim) == entity_reads
        assert entity_reads == {"always": 0, "while_running": 1, "never": 3}[tasks]


def test_vm_results_seen_while_running_are_kept_when_em_drops_every_task_at_the_end() -> None:
    """An EM that writes no VM tasks of a finished session anywhere (query answers nor entity, as its
    finished examples show): the VMs stay as last seen, never vanish; the session's own result shows."""
    p = {"backup_server": "vbr01", "plan": "Tenant plan"}
    with (
        running_sim(with_tasks(mixed("Failed"), "never", "dropped")) as sim,
        running_exporter(exporter_config(sim.url)) as exp,
    ):
        sim.clock.advance(110)  # web done, db still Working
        exp.poll()
        sim.clock.advance(200)  # db failed, the session ended: EM shows no VM task any more
        exp.poll()
        m = exp.scrape()
        assert one_hot(m, "veeam_failover_session_result", "result", SESSION_RESULTS, **p) == {"Failed": 1}
        assert one_hot(m, "veeam_failover_vm_result", "result", SESSION_RESULTS, **p, vm="web") == {
            "Success": 1
        }
        assert one_hot(m, "veeam_failover_vm_state", "state", SESSION_STATES, **p, vm="db") == {"Working": 1}
        assert value(m, "veeam_failover_vm_restore_point_timestamp_seconds", **p, vm="db") is not None


def test_an_empty_task_list() -> None:
    scenario = {"plans": [{"name": "Empty", "backup_server": "vbr", "vms": [], "start_at_seconds": 0}]}
    p = {"backup_server": "vbr", "plan": "Empty"}
    with running_sim(scenario) as sim, running_exporter(exporter_config(sim.url)) as exp:
        sim.clock.advance(30)
        exp.poll()
        m = exp.scrape()
    assert one_hot(m, "veeam_failover_session_result", "result", SESSION_RESULTS, **p) == {"Success": 1}
    assert value(m, "veeam_failover_plan_vms", **p) == 0
    assert series(m, "veeam_failover_vm_state") == {}
    assert value(m, "veeam_em_up") == 1


def test_a_newer_session_replaces_the_old_one_and_old_ones_stay_known() -> None:
    scenario = {
        "time_scale": 1,
        "plans": [
            {
                "name": "P",
                "backup_server": "vbr",
                "vms": ["a"],
                "history": [{"ago_seconds": 7 * 86400, "result": "Failed"}],
            }
        ],
    }
    p = {"backup_server": "vbr", "plan": "P"}
    with running_sim(scenario) as sim, running_exporter(exporter_config(sim.url)) as exp:
        exp.poll()
        old = exp.scrape()
        assert value(old, "veeam_failover_session_result", **p, result="Failed") == 1
        exp.poll()  # the week-old session is outside the window now, and must stay shown
        assert value(exp.scrape(), "veeam_failover_session_result", **p, result="Failed") == 1
        with httpx.Client() as http:
            logon = http.post(sim.url + "/api/sessionMngr/?v=latest", auth=("admin", "admin"))
            token = logon.headers["X-RestSvcSessionId"]
            plan_id = sim.world.scenario.plans[0].id
            r = http.post(
                f"{sim.url}/api/cloud/cloudFailoverPlans/{plan_id}?action=start",
                headers={"X-RestSvcSessionId": token, "Content-Type": "application/json"},
                content=b'{"StartNow": true}',
            )
            assert r.status_code == 202
        sim.clock.advance(1)
        exp.poll()
        new = exp.scrape()
    new_ids = {dict(k)["session_id"] for k in series(new, "veeam_failover_session_info")}
    old_ids = {dict(k)["session_id"] for k in series(old, "veeam_failover_session_info")}
    assert len(new_ids) == 1 and new_ids != old_ids
    assert value(new, "veeam_failover_session_state", **p, state="Starting") == 1


QUIET = {
    "time_scale": 1,
    "plans": [
        {
            "name": "P",
            "backup_server": "vbr",
            "vms": [{"name": "a", "duration_seconds": 60}],
            "history": [{"ago_seconds": 600, "result": "Success"}],
        },
        {"name": "Q", "backup_server": "vbr", "vms": ["b"], "history": [{"ago_seconds": 900}]},
    ],
}
COUNT = "/api/query?type=CloudFailoverSession&format=References"
QUERY = "/api/query?type=CloudFailoverSession"


def requests_to(m: Any, endpoint: str) -> float:
    return value(m, "veeam_em_requests_total", endpoint=endpoint, code="200") or 0.0


def test_a_quiet_poll_costs_one_count_and_still_sees_a_late_session() -> None:
    p = {"backup_server": "vbr", "plan": "P"}
    with running_sim(QUIET) as sim, running_exporter(exporter_config(sim.url)) as exp:
        exp.poll()  # the first poll stops paging early: it has not seen the whole window
        exp.poll()  # a full read of the window (two finished sessions); the plans are fresh
        m = exp.scrape()
        assert requests_to(m, COUNT) == 0
        assert value(m, "veeam_em_poll_requests") == 1
        old_id = {dict(k)["session_id"] for k in series(m, "veeam_failover_session_info")}
        exp.poll()  # nothing runs, nothing new: one count, plans are fresh, every point is read
        m = exp.scrape()
        assert value(m, "veeam_em_poll_requests") == 1
        assert requests_to(m, COUNT) == 1
        assert requests_to(m, QUERY) == 2
        assert requests_to(m, "/api/cloud/cloudFailoverPlans") == 1
        assert value(m, "veeam_em_up") == 1
        assert value(m, "veeam_failover_session_result", **p, result="Success") == 1
        # EM learns of a session late (collection lag): created 5 minutes ago and already finished.
        with sim.world.lock:
            late = sim.world._new_session(sim.world.scenario.plans[0], sim.clock() - 300, None)
        exp.poll()  # the count differs: a full read (the count and a page), within ceil(3/100) + 2
        m = exp.scrape()
        assert value(m, "veeam_em_poll_requests") == 2
        assert requests_to(m, COUNT) == 2
        assert requests_to(m, QUERY) == 3
        ids = {dict(k)["session_id"] for k in series(m, "veeam_failover_session_info") if ("plan", "P") in k}
        assert ids == {late.id} and late.id not in old_id
        assert value(m, "veeam_failover_session_state", **p, state="Stopped") == 1
        exp.poll()  # quiet again
        assert value(exp.scrape(), "veeam_em_poll_requests") == 1


def test_a_new_session_of_a_plan_not_known_yet_reads_the_plans_at_once() -> None:
    with running_sim(QUIET) as sim, running_exporter(exporter_config(sim.url)) as exp:
        exp.poll()
        exp.poll()
        plan = sim.world.scenario.plans[0]
        new_plan = dataclasses.replace(plan, id="new-plan", name="R")
        with sim.world.lock:
            sim.world.plans[new_plan.id] = new_plan
            sim.world.replication.by_vm[(new_plan.id, "a")] = sim.world.replication.by_vm[(plan.id, "a")]
            sim.world._new_session(new_plan, sim.clock(), None)
        exp.poll()  # the count, a page of sessions, the plans (one of them is new)
        m = exp.scrape()
    r = {"backup_server": "vbr", "plan": "R"}
    assert value(m, "veeam_em_poll_requests") == 3
    assert requests_to(m, "/api/cloud/cloudFailoverPlans") == 2
    assert value(m, "veeam_failover_plan_vms", **r) == 1
    assert value(m, "veeam_failover_session_state", **r, state="Starting") == 1


def test_a_quiet_poll_refreshes_the_plans_and_drops_a_deleted_one() -> None:
    poll = PollSettings(plans_refresh_seconds=0)
    with running_sim(QUIET) as sim, running_exporter(exporter_config(sim.url, poll=poll)) as exp:
        exp.poll()
        exp.poll()
        q = {"backup_server": "vbr", "plan": "Q"}
        assert value(exp.scrape(), "veeam_failover_plan_vms", **q) == 1
        plan_q = sim.world.scenario.plans[1]
        with sim.world.lock:
            del sim.world.plans[plan_q.id]
        exp.poll()
        m = exp.scrape()
    assert value(m, "veeam_em_poll_requests") == 2  # the count and the plans
    assert requests_to(m, COUNT) == 1
    assert value(m, "veeam_failover_plan_vms", **q) is None
    assert not [k for k in series(m, "veeam_failover_session_info") if ("plan", "Q") in k]
    assert value(m, "veeam_failover_plan_vms", backup_server="vbr", plan="P") == 1


def test_relogon_after_expiry_does_not_fail_a_poll() -> None:
    with running_sim(mixed("Success")) as sim, running_exporter(exporter_config(sim.url)) as exp:
        exp.poll()
        sim.world.logon_book.expire()
        exp.poll()
        m = exp.scrape()
    assert value(m, "veeam_em_up") == 1
    assert value(m, "veeam_em_logons_total") == 2
    # the second poll's first request (the plans are fresh: the session query) met the expired token
    assert value(m, "veeam_em_requests_total", endpoint=QUERY, code="401") == 1
    assert sum(series(m, "veeam_em_poll_errors_total").values()) == 0


def test_token_is_reused_across_polls_and_logged_out_on_shutdown() -> None:
    with running_sim(mixed("Success")) as sim:
        with running_exporter(exporter_config(sim.url)) as exp:
            for _ in range(3):
                exp.poll()
            assert value(exp.scrape(), "veeam_em_logons_total") == 1
            assert sim.world.requests["POST /api/sessionMngr/"] == 1
            assert len(sim.world.logons) == 1
        assert sim.world.logouts == 1
        assert len(sim.world.logons) == 0


@pytest.mark.parametrize(
    ("fault", "reason"),
    [({"status": 503}, "http_5xx"), ({"status": 500}, "http_5xx"), ({"garbage": True}, "parse")],
)
def test_em_failure_sets_up_to_0_keeps_serving_and_recovers(fault: dict[str, Any], reason: str) -> None:
    p = {"backup_server": "vbr01", "plan": "Tenant plan"}
    with running_sim(mixed("Success")) as sim, running_exporter(exporter_config(sim.url)) as exp:
        sim.clock.advance(60)
        exp.poll()
        good = exp.scrape()
        for k, v in fault.items():
            setattr(sim.world.faults, k, v)
        exp.poll()
        bad = exp.scrape()
        assert value(bad, "veeam_em_up") == 0
        assert value(bad, "veeam_em_poll_errors_total", reason=reason) == 1
        # last known data stays, with its time of reading
        assert value(bad, "veeam_failover_vm_progress_ratio", **p, vm="web") == 0.55
        assert value(bad, "veeam_em_last_successful_poll_timestamp_seconds") == value(
            good, "veeam_em_last_successful_poll_timestamp_seconds"
        )
        assert plain_http.get(exp.url + "/healthz").status_code == 200
        assert 8.0 <= exp.exporter.poller.next_delay() <= 12.0  # backing off, with jitter
        sim.world.faults.status, sim.world.faults.garbage = None, False
        sim.clock.advance(10)
        exp.poll()
        healed = exp.scrape()
        assert value(healed, "veeam_em_up") == 1
        assert value(healed, "veeam_failover_vm_progress_ratio", **p, vm="web") == pytest.approx(0.66)
        assert value(healed, "veeam_em_poll_errors_total", reason=reason) == 1  # counters keep their count


def test_unreachable_em(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with running_exporter(exporter_config("http://127.0.0.1:9", password="s3cret-pw")) as exp:
        assert plain_http.get(exp.url + "/readyz").status_code == 503
        exp.poll()
        m = exp.scrape()
        assert (
            plain_http.get(exp.url + "/readyz").status_code == 200
        )  # ready: it answers, and says EM is down
    assert value(m, "veeam_em_up") == 0
    assert value(m, "veeam_em_poll_errors_total", reason="connect") == 1
    assert value(m, "veeam_em_last_successful_poll_timestamp_seconds") == 0
    assert "cannot connect to http://127.0.0.1:9" in caplog.text
    assert "s3cret-pw" not in caplog.text


def test_bad_credentials_are_counted_and_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with (
        running_sim("seed") as sim,
        running_exporter(exporter_config(sim.url, password="wrong-pw-123")) as exp,
    ):
        exp.poll()
        text = plain_http.get(exp.url + "/metrics").text
    m = parse_samples(text)
    assert value(m, "veeam_em_up") == 0
    assert value(m, "veeam_em_poll_errors_total", reason="logon") == 1
    assert value(m, "veeam_em_requests_total", endpoint="/api/sessionMngr", code="401") == 1
    assert "wrong-pw-123" not in text + caplog.text


def test_a_bad_session_is_counted_and_the_others_still_shown() -> None:
    scenario = {
        "plans": [
            {"name": "Good", "backup_server": "vbr", "vms": ["a"], "start_at_seconds": 0},
            {"name": "Odd", "backup_server": "vbr", "vms": ["b"]},
        ],
        "sessions": [
            {
                "id": "odd",
                "plan": "Odd",
                "creation_time": "2026-11-20T10:00:00Z",
                "state": "Pausing",
                "result": "Unknown",
                "tasks": [
                    {
                        "vm": "b",
                        "point_id": "pb",
                        "point_name": "b@2026-11-20 09:00:00",
                        "point_time": "2026-11-20T09:00:00Z",
                        "state": "Idle",
                    }
                ],
            }
        ],
    }
    with running_sim(scenario) as sim, running_exporter(exporter_config(sim.url)) as exp:
        sim.clock.advance(5)
        exp.poll()
        m = exp.scrape()
    odd = {"backup_server": "vbr", "plan": "Odd"}
    # undocumented values are exported next to the documented ones, not dropped
    assert value(m, "veeam_failover_session_state", **odd, state="Pausing") == 1
    assert value(m, "veeam_failover_session_state", **odd, state="Working") == 0
    assert value(m, "veeam_failover_session_result", **odd, result="Unknown") == 1
    assert value(m, "veeam_failover_vm_state", **odd, vm="b", state="Idle") == 1
    assert value(m, "veeam_em_up") == 1


def test_promtool_accepts_the_exposition() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's prometheus package (scripts/setup does)"
    with running_sim("demo") as sim, running_exporter(exporter_config(sim.url)) as exp:
        sim.clock.advance(200)
        exp.poll()
        text = plain_http.get(exp.url + "/metrics").text
    assert "veeam_failover_vm_state" in text
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_openmetrics_gzip_and_caching() -> None:
    with running_sim("demo") as sim, running_exporter(exporter_config(sim.url)) as exp:
        exp.poll()
        with httpx.Client(headers={"Accept-Encoding": "identity"}) as http:
            plain1 = http.get(exp.url + "/metrics").content
            plain2 = http.get(exp.url + "/metrics").content
            om = http.get(
                exp.url + "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
            )
            with http.stream("GET", exp.url + "/metrics", headers={"Accept-Encoding": "gzip"}) as gz:
                raw = b"".join(gz.iter_raw())
            assert plain1 == plain2  # same snapshot, same bytes
            assert om.headers["content-type"].startswith("application/openmetrics-text")
            assert om.text.endswith("# EOF\n")
            assert gz.headers["content-encoding"] == "gzip"
            assert gzip.decompress(raw) == plain1 and len(raw) < len(plain1) / 3
            exp.poll()
            plain3 = http.get(exp.url + "/metrics").content
        assert plain3 != plain1  # a new poll, a new rendering
        assert "veeam_em_poll_duration_seconds" in plain3.decode()


def test_landing_page_links() -> None:
    with running_exporter(exporter_config("http://127.0.0.1:9")) as exp:
        r = plain_http.get(exp.url + "/")
    assert r.status_code == 200 and 'href="metrics"' in r.text and "http://127.0.0.1:9/api" in r.text
