"""Readiness before the disaster, over loopback HTTP against the simulator: each plan VM's newest replica
point and its State, read once in full and then only what is new, on a hand-moved clock."""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from exporter.config import PollSettings, ReadinessSettings
from exporter.em.replica_points import EP_POINT_NEWEST, EP_POINT_OF_VM, EP_POINT_QUERY
from exporter.simulator.profiles import VERSION_PROFILES
from exporter.simulator.scenario import scenario_from_dict
from tests import plain_http
from tests.helpers import (
    RunningExporter,
    RunningSim,
    Samples,
    exporter_config,
    running_exporter,
    running_sim,
    value,
)

ACME = {"backup_server": "vbr01", "plan": "ACME"}
RPO = 3600.0


def scenario(**extra: Any) -> dict[str, Any]:
    return {
        "point_interval_seconds": 900,
        "points_per_vm": 8,
        "plans": [
            {
                "name": "ACME",
                "backup_server": "vbr01",
                "vm_stagger_seconds": 0,
                "vms": [
                    {"name": "web", "restore_point_age_seconds": 300, "duration_seconds": 60},
                    {"name": "db", "restore_point_age_seconds": 600, "replication": "stopped"},
                    {"name": "legacy", "replication": "never"},
                ],
            },
            {
                "name": "Globex",
                "backup_server": "vbr02",
                "vms": [{"name": "app", "restore_point_age_seconds": 60}],
            },
            *extra.pop("extra_plans", []),
        ],
        **extra,
    }


@contextmanager
def exporter(sim: RunningSim, **settings: Any) -> Iterator[RunningExporter]:
    readiness = ReadinessSettings(**{"rpo_seconds": RPO, "lag_margin_seconds": 0, **settings})
    config = dataclasses.replace(exporter_config(sim.url, poll=PollSettings()), readiness=readiness)
    with running_exporter(config) as exp:
        exp.exporter.readiness.clock = sim.clock
        exp.exporter.poller.clock = sim.clock
        exp.poll()  # the plans
        yield exp


def requests(m: Samples, endpoint: str) -> float:
    return value(m, "veeam_em_requests_total", endpoint=endpoint, code="200") or 0.0


def newest(sim: RunningSim, plan: str, vm: str) -> float:
    plan_id = next(p.id for p in sim.world.plans.values() if p.name == plan)
    return sim.world.replication.by_vm[(plan_id, vm)][0].created


def latest(m: Samples, vm: str, plan: dict[str, str] = ACME) -> float | None:
    return value(m, "veeam_failover_plan_vm_latest_restore_point_timestamp_seconds", **plan, vm=vm)


def state(m: Samples, vm: str) -> str:
    on = [
        s
        for s in ("Unknown", "Ready", "Failover", "Failback", "PermanentFailover")
        if value(m, "veeam_failover_plan_vm_restore_point_state", **ACME, vm=vm, state=s) == 1
    ]
    assert len(on) == 1, on
    return on[0]


def test_every_plan_vm_has_its_newest_point_and_a_vm_never_replicated_is_shown_as_such() -> None:
    with running_sim(scenario()) as sim, exporter(sim) as exp:
        m = exp.scrape()
        # before the first read nothing is claimed: no "0 points" for a VM merely not read yet
        assert value(m, "veeam_failover_plan_vm_has_restore_point", **ACME, vm="legacy") is None
        assert value(m, "veeam_failover_readiness_complete") == 0
        assert value(m, "veeam_failover_plan_vm_info", **ACME, vm="legacy") == 1
        exp.read_points()
        m = exp.scrape()
    assert value(m, "veeam_failover_readiness_complete") == 1
    assert latest(m, "web") == newest(sim, "ACME", "web") == int(sim.world.born - 300)
    assert latest(m, "db") == int(sim.world.born - 600)
    assert latest(m, "app", {"backup_server": "vbr02", "plan": "Globex"}) == int(sim.world.born - 60)
    assert latest(m, "legacy") is None
    assert value(m, "veeam_failover_plan_vm_has_restore_point", **ACME, vm="legacy") == 0
    assert value(m, "veeam_failover_plan_vm_has_restore_point", **ACME, vm="web") == 1
    assert value(m, "veeam_failover_plan_vms_without_restore_point", **ACME) == 1
    assert value(m, "veeam_failover_plan_oldest_restore_point_timestamp_seconds", **ACME) == int(
        sim.world.born - 600
    )
    assert value(m, "veeam_failover_plan_rpo_seconds", **ACME) == RPO
    assert state(m, "web") == "Ready"
    # 25 points: one page newest first, then nothing else (the pages ended: legacy has none)
    assert requests(m, EP_POINT_NEWEST) == 1 and value(m, "veeam_failover_readiness_read_requests") == 1


def test_a_vm_whose_replication_stopped_ages_while_the_others_get_new_points() -> None:
    with running_sim(scenario()) as sim, exporter(sim) as exp:
        exp.read_points()
        born = sim.world.born
        sim.clock.advance(2 * 900)
        exp.read_points()
        m = exp.scrape()
        assert latest(m, "web") == newest(sim, "ACME", "web") == int(born - 300) + 1800
        assert latest(m, "db") == int(born - 600)  # replication stopped: no new point, it ages
        # past its RPO: db is asked for by name, once per recheck_seconds, in case a point was missed
        sim.clock.advance(RPO)
        exp.read_points()
        exp.read_points()
        m = exp.scrape()
    assert sim.clock.now - latest(m, "db") > RPO  # type: ignore[operator]
    assert latest(m, "web") == int(born - 300) + 1800 + 4 * 900
    by_name = requests(m, EP_POINT_OF_VM)
    # legacy (no point) again every recheck_seconds (900): at +1800 and +5400; db once it is past its
    # RPO; the read right after asks for neither
    assert by_name == 3, by_name


def test_steady_reads_ask_only_for_new_points() -> None:
    vms = [{"name": f"vm{i:03d}", "restore_point_age_seconds": 30} for i in range(120)]
    big = {
        "point_interval_seconds": 900,
        "points_per_vm": 24,
        "plans": [{"name": "Big", "backup_server": "vbr", "vms": vms}],
    }
    with running_sim(big) as sim, exporter(sim) as exp:
        exp.read_points()  # 2,880 points: the newest 120 cover every VM, on two pages
        m = exp.scrape()
        assert value(m, "veeam_failover_readiness_read_requests") == 2
        assert value(m, "veeam_failover_readiness_complete") == 1
        for _ in range(3):  # nothing new: one request, however many VMs
            sim.clock.advance(60)
            exp.read_points()
            assert value(exp.scrape(), "veeam_failover_readiness_read_requests") == 1
        sim.clock.advance(900)  # one new point a VM: 120 new, on ceil(120 / 100) pages
        exp.read_points()
        m = exp.scrape()
    assert value(m, "veeam_failover_readiness_read_requests") == math.ceil(120 / 100)
    got = {
        dict(k)["vm"]: v
        for (n, k), v in m.items()
        if n == "veeam_failover_plan_vm_latest_restore_point_timestamp_seconds"
    }
    assert len(got) == 120 and set(got.values()) == {int(sim.world.born - 30) + 900}


def test_a_failover_puts_the_points_in_failover_and_an_undo_takes_them_back() -> None:
    # 120 fresher VMs on vbr01 keep ACME's points off the newest pages: their State changes are seen
    # only because they are read again by ID
    filler = {
        "name": "Filler",
        "backup_server": "vbr01",
        "vms": [{"name": f"f{i:03d}", "restore_point_age_seconds": 10} for i in range(120)],
    }
    with running_sim(scenario(extra_plans=[filler])) as sim, exporter(sim) as exp:
        exp.read_points()
        before = latest(exp.scrape(), "web")
        plan = next(p for p in sim.world.plans.values() if p.name == "ACME")
        with sim.world.lock:
            sim.world._new_session(plan, sim.clock(), None)
        started = sim.clock()
        sim.clock.advance(5)
        exp.poll()  # the session, and the points it names
        by_id = requests(exp.scrape(), EP_POINT_QUERY)
        exp.read_points()  # the session's points read again by ID: their State changed
        m = exp.scrape()
        assert requests(m, EP_POINT_QUERY) == by_id + 1
        assert state(m, "web") == "Failover" and state(m, "db") == "Failover"
        assert value(m, "veeam_failover_plan_vms_in_failover", **ACME) == 2
        since = value(m, "veeam_failover_plan_vm_in_dr_since_timestamp_seconds", **ACME, vm="web")
        assert since == pytest.approx(started, abs=0.01)  # its task's start, not when it was first seen
        # while it runs from its replica, a VM gets no new point
        sim.clock.advance(2 * 900)
        exp.poll()
        exp.read_points()
        m = exp.scrape()
        assert latest(m, "web") == before and state(m, "web") == "Failover"
        # no session says so: a VM's newest point is read again while it is in a DR state
        r = plain_http.post(
            f"{sim.url}/_sim/replica-state", json={"plan": "ACME", "state": "PermanentFailover"}
        )
        assert r.status_code == 200
        exp.read_points()
        assert state(exp.scrape(), "web") == "PermanentFailover"
        plain_http.post(f"{sim.url}/_sim/replica-state", json={"plan": "ACME", "state": "Ready"})  # an undo
        exp.read_points()
        m = exp.scrape()
        assert state(m, "web") == "Ready" and value(m, "veeam_failover_plan_vms_in_failover", **ACME) == 0
        assert value(m, "veeam_failover_plan_vm_in_dr_since_timestamp_seconds", **ACME, vm="web") is None
        sim.clock.advance(900)  # replication goes on
        exp.read_points()
        m = exp.scrape()
    assert latest(m, "web") > before  # type: ignore[operator]
    assert latest(m, "db") == int(sim.world.born - 600)  # stopped before, stopped still


def test_points_a_late_collection_shows_are_still_found() -> None:
    lagged = scenario(collection_interval_seconds=900, collection_duration_seconds=20)
    with running_sim(lagged) as sim, exporter(sim) as exp:
        exp.read_points()
        born = sim.world.born
        m = exp.scrape()
        assert latest(m, "web") == int(born - 300)
        sim.clock.advance(700)  # web's next point is made at born + 600, EM has not collected it yet
        exp.read_points()
        assert latest(exp.scrape(), "web") == int(born - 300)
        sim.clock.advance(300)  # EM's collection at born + 900 finished at + 920: the point shows
        pages_before = requests(exp.scrape(), EP_POINT_NEWEST)
        exp.read_points()
        m = exp.scrape()
    assert latest(m, "web") == int(born - 300) + 900
    assert requests(m, EP_POINT_NEWEST) - pages_before == 1


def test_a_first_read_stops_at_the_rpo_and_asks_for_the_rest_by_name() -> None:
    vms = [{"name": f"vm{i:03d}", "restore_point_age_seconds": 30} for i in range(150)]
    vms.append({"name": "old", "restore_point_age_seconds": 3 * 86400, "replication": "stopped"})
    vms.append({"name": "none", "replication": "never"})
    big = {
        "point_interval_seconds": 900,
        "points_per_vm": 24,
        "plans": [{"name": "Big", "backup_server": "vbr", "vms": vms}],
    }
    with running_sim(big) as sim, exporter(sim) as exp:
        exp.read_points()
        m = exp.scrape()
    p = {"backup_server": "vbr", "plan": "Big"}
    # not all 3,624 points: pages until they were older than the RPO, then two questions by name
    assert requests(m, EP_POINT_NEWEST) < 10
    assert requests(m, EP_POINT_OF_VM) == 2
    assert latest(m, "old", p) == int(sim.world.born - 3 * 86400)
    assert value(m, "veeam_failover_plan_vm_has_restore_point", **p, vm="none") == 0


@pytest.mark.parametrize("profile", VERSION_PROFILES)
def test_every_em_version_gives_each_vm_its_newest_point_and_state(profile: str) -> None:
    with running_sim(scenario(profile=profile)) as sim, exporter(sim) as exp:
        exp.read_points()
        m = exp.scrape()
    assert abs(latest(m, "web") - newest(sim, "ACME", "web")) < 1  # type: ignore[operator]
    assert state(m, "web") == "Ready"
    assert value(m, "veeam_failover_plan_vm_has_restore_point", **ACME, vm="legacy") == 0


def test_status_shows_readiness_and_escapes_what_em_names() -> None:
    evil = {
        "name": "Evil",
        "backup_server": "vbr02",
        "vms": [
            {"name": "<b>x</b>", "replication": "never"},
            {"name": "old", "restore_point_age_seconds": 2 * RPO, "replication": "stopped"},
        ],
    }
    with running_sim(scenario(extra_plans=[evil])) as sim, exporter(sim) as exp:
        before = plain_http.get(exp.url + "/status").text
        exp.read_points()
        page = plain_http.get(exp.url + "/status").text
    assert "replica points not read yet" in before
    section = page[page.index("<h2>Readiness</h2>") :]
    assert "&lt;b&gt;x&lt;/b&gt;" in section and "<b>x</b>" not in section
    rows = {row.split("</td>")[0].removeprefix("<td>"): row for row in section.split("<tr>")[1:]}
    assert "never replicated" in rows["legacy"] and "never replicated" in rows["&lt;b&gt;x&lt;/b&gt;"]
    assert "past its RPO" in rows["old"] and "web" not in section.split("VMs that need a look")[1]
    # the plan row: Evil has one VM past its RPO and one without any point
    assert rows["Evil"].endswith("<td class='warn'>1</td><td class='bad'>1</td><td class=''>0</td></tr>")


@pytest.mark.parametrize(("fault", "reason"), [({"status": 503}, "http_5xx"), ({"garbage": True}, "parse")])
def test_a_failed_read_is_counted_and_keeps_what_was_known(fault: dict[str, Any], reason: str) -> None:
    with running_sim(scenario()) as sim, exporter(sim) as exp:
        exp.read_points()
        known = latest(exp.scrape(), "web")
        plain_http.post(f"{sim.url}/_sim/faults", json={**fault, "remaining": 1})
        assert exp.exporter.readiness.read_once()  # a problem, logged by the loop
        exp.exporter.exposition.refresh()
        m = exp.scrape()
        assert value(m, "veeam_failover_readiness_read_errors_total", reason=reason) == 1
        assert value(m, "veeam_failover_readiness_read_errors_total", reason="timeout") == 0
        assert latest(m, "web") == known and value(m, "veeam_failover_readiness_complete") == 1
        exp.read_points()  # EM answers again
        assert value(exp.scrape(), "veeam_failover_readiness_read_errors_total", reason=reason) == 1


def test_a_read_beside_a_poll_is_not_counted_as_the_poll_requests() -> None:
    points_route = "GET /api/query?type=CloudVmReplicaPoint"
    with running_sim(scenario()) as sim, exporter(sim) as exp:
        exp.read_points()
        plain_http.post(f"{sim.url}/_sim/faults", json={"latency": 0.3})
        sim.clock.advance(3 * 900)  # new points: the read below takes a few requests, 0.3 s each
        before = dict(sim.world.requests)
        reader = threading.Thread(target=exp.exporter.readiness.read_once)
        reader.start()
        exp.poll()  # at the same time, on the same client
        reader.join()
        m = exp.scrape()
        seen = {k: v - before.get(k, 0) for k, v in sim.world.requests.items()}
    read = value(m, "veeam_failover_readiness_read_requests")
    # EM's token expired meanwhile: one of the two logged on again, and re-asked
    assert read is not None and read >= seen[points_route] >= 1
    # the poll's own requests: everything EM saw meanwhile but the read's
    assert value(m, "veeam_em_poll_requests") == sum(seen.values()) - read


def _fail_over(sim: RunningSim, exp: RunningExporter) -> None:
    """ACME fails over now, and the exporter sees its session and the points in Failover."""
    plan = next(p for p in sim.world.plans.values() if p.name == "ACME")
    with sim.world.lock:
        sim.world._new_session(plan, sim.clock(), None)
    sim.clock.advance(120)  # the VMs' tasks are done
    exp.poll()
    exp.read_points()


def test_a_failback_makes_a_new_point_the_newest() -> None:
    """EM: failback's "protective snapshot" "acts as a new restore point"."""
    with running_sim(scenario()) as sim, exporter(sim) as exp:
        exp.read_points()
        _fail_over(sim, exp)
        assert state(exp.scrape(), "web") == "Failover"
        before = latest(exp.scrape(), "web")
        sim.clock.advance(600)
        at = sim.clock()
        r = plain_http.post(f"{sim.url}/_sim/replica-state", json={"plan": "ACME", "state": "Failback"})
        assert r.status_code == 200
        sim.clock.advance(1)
        exp.read_points()
        m = exp.scrape()
        assert state(m, "web") == "Failback"
        assert latest(m, "web") == int(at) and before is not None and int(at) > before


@pytest.mark.parametrize("restart", [False, True])
def test_points_removed_after_a_permanent_failover_are_not_never_replicated(restart: bool) -> None:
    """A permanent failover of snapshot replicas removes their points: the VM runs at the provider for
    good. Seen going (or, after a restart, known failed over by its plan's latest session), it is reported
    so, never as never replicated, and no alert of a VM without points fires."""
    with running_sim(scenario()) as sim:
        with exporter(sim) as exp:
            exp.read_points()
            _fail_over(sim, exp)
            body = {"plan": "ACME", "state": "PermanentFailover", "remove_points": True}
            assert plain_http.post(f"{sim.url}/_sim/replica-state", json=body).status_code == 200
            sim.clock.advance(1)
            exp.read_points()
            m = exp.scrape()
        if restart:
            with exporter(sim) as exp:  # a new exporter knows nothing of before
                exp.poll()
                exp.read_points()
                sim.clock.advance(1000)  # the checks by name, after recheck_seconds
                exp.read_points()
                m = exp.scrape()
    for vm in ("web", "db"):
        assert value(m, "veeam_failover_plan_vm_points_removed", **ACME, vm=vm) == 1, vm
        assert value(m, "veeam_failover_plan_vm_has_restore_point", **ACME, vm=vm) is None, vm
    assert value(m, "veeam_failover_plan_vms_without_restore_point", **ACME) == 1  # legacy: never had one
    assert value(m, "veeam_failover_plan_vm_has_restore_point", **ACME, vm="legacy") == 0


def test_points_that_name_their_vm_only_by_display_name_are_read() -> None:
    """13.1's examples: a point carries the VmDisplayName attribute and no VmName element."""
    sc = scenario_from_dict(scenario())
    sc = dataclasses.replace(sc, profile=dataclasses.replace(sc.profile, point_vm_name=False))
    with running_sim(sc) as sim, exporter(sim) as exp:
        exp.read_points()
        m = exp.scrape()
        assert latest(m, "web") == newest(sim, "ACME", "web")
        assert latest(m, "app", {"backup_server": "vbr02", "plan": "Globex"}) == newest(sim, "Globex", "app")
