"""EM's collection lag, played by the simulator, and the collections the exporter asks for (poll.collect),
over loopback HTTP."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from exporter.config import ActionSettings, Caller, CollectSettings, PollSettings
from exporter.secret import Secret
from tests import plain_http
from tests.helpers import (
    RunningExporter,
    RunningSim,
    exporter_config,
    running_exporter,
    running_sim,
    series,
    value,
)

TOKEN = "collect-test-token-0123456789"
PLAN = "ACME full site failover"
SERVER = "vbr01"
VM = {"backup_server": SERVER, "plan": PLAN}


def scenario(**extra: Any) -> dict[str, Any]:
    return {
        "time_scale": 1,
        "task_delay_seconds": 1,
        "collection_interval_seconds": 900,  # EM's documented default
        "collection_duration_seconds": 20,
        "plans": [
            {
                "name": PLAN,
                "backup_server": SERVER,
                "vm_stagger_seconds": 0,
                "vms": [{"name": "web", "duration_seconds": 100}, {"name": "db", "duration_seconds": 400}],
            }
        ],
        **extra,
    }


@contextmanager
def exporter(tmp_path: Path, sim: RunningSim, collect: bool = True) -> Iterator[RunningExporter]:
    actions = ActionSettings(
        enabled=True,
        callers=(Caller("runbook", Secret(TOKEN)),),
        allowed_plans=(PLAN,),
        audit_log=str(tmp_path / "audit.jsonl"),
        task_poll_interval_seconds=3600,  # the start's task is not what these tests follow
    )
    poll = PollSettings(collect=CollectSettings(enabled=collect, interval_seconds=60, timeout_seconds=300))
    with running_exporter(exporter_config(sim.url, actions=actions, poll=poll)) as exp:
        exp.exporter.collections.clock = sim.clock  # the intervals on the simulated clock
        exp.poll()
        yield exp


def start(exp: RunningExporter) -> None:
    r = plain_http.post(
        f"{exp.url}/api/v1/plans/{PLAN}/start",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={"start_now": True},
        timeout=30,
    )
    assert r.status_code == 202, r.text


def web_result(exp: RunningExporter) -> float | None:
    exp.poll()
    return value(exp.scrape(), "veeam_failover_vm_result", **VM, vm="web", result="Success")


def test_without_collection_a_vm_end_shows_only_after_ems_next_collection(tmp_path: Path) -> None:
    with running_sim(scenario()) as sim, exporter(tmp_path, sim, collect=False) as exp:
        born = sim.world.born
        sim.clock.advance(60)  # a minute after EM's last collection
        start(exp)  # the failover starts on the backup server now
        sim.clock.advance(300)  # web ended 200 s ago on the backup server
        assert web_result(exp) is None  # EM has not collected since: no session at all
        assert series(exp.scrape(), "veeam_failover_session_info") == {}
        sim.clock.now = born + 900 + 20 + 1  # EM's own next collection has finished
        assert web_result(exp) == 1
        assert sim.world.collections.asked == {}  # nobody asked EM to collect


def test_asked_collections_bring_a_vm_end_within_interval_plus_collection_plus_poll(tmp_path: Path) -> None:
    with running_sim(scenario()) as sim, exporter(tmp_path, sim) as exp:
        collections = exp.exporter.collections
        sim.clock.advance(60)  # a minute after EM's last collection
        t0 = sim.clock.now
        start(exp)
        collections.step()  # right after the accepted start: one collection for the plan's server
        assert [c.started for c in sim.world.collections.asked[SERVER]] == [t0]
        web_end = t0 + 100
        seen = None
        while seen is None and sim.clock.now < t0 + 400:
            sim.clock.advance(10)  # the poll interval and the collector's tick, on the simulated clock
            collections.step()
            if web_result(exp) == 1:
                seen = sim.clock.now
        assert seen is not None
        assert seen - web_end <= 60 + 20 + 10  # interval + collection time + poll interval
        asked = [c.started for c in sim.world.collections.asked[SERVER]]
        assert all(b - a >= 60 for a, b in itertools.pairwise(asked))  # one per interval at most
        m = exp.scrape()
        finished = value(m, "veeam_em_collections_total", backup_server=SERVER, outcome="finished")
        assert finished is not None and finished >= 2
        # the newest event EM showed of the server (web's end), not when a collection was asked for
        assert value(m, "veeam_em_data_as_of_timestamp_seconds", backup_server=SERVER) == pytest.approx(
            web_end
        )
        assert value(m, "veeam_em_last_collection_timestamp_seconds", backup_server=SERVER) is not None
        page = plain_http.get(
            exp.url + "/status", timeout=10
        ).text  # db still fails over: its server's data age
        assert f"{SERVER} as of " in page and "ago at most" in page


def test_a_collect_task_ends_when_the_collection_starts_as_ems_example_says(tmp_path: Path) -> None:
    with running_sim(scenario(collection_duration_seconds=300)) as sim, exporter(tmp_path, sim) as exp:
        client = exp.exporter.client
        server_id = next(p.backup_server_id for p in exp.exporter.store.current().plans if p.name == PLAN)
        task = client.collect(server_id)
        assert task.operation == "CollectingBackupServer" and task.state == "Running"
        sim.clock.advance(2)
        done = client.task(task.id)
        assert done.state == "Finished" and done.success is True
        assert done.message == "Data collection started. To view results, go to Sessions."
        assert sim.world.collections.as_of(SERVER) == sim.world.born  # the collection itself runs on


def test_a_finished_collect_task_alone_never_makes_ems_data_look_newer(tmp_path: Path) -> None:
    """EM's task of a collection ends when the collection starts: while that collection runs (5 minutes
    here), EM's data of the server is as old as before, and the data age must say so."""
    with running_sim(scenario(collection_duration_seconds=300)) as sim, exporter(tmp_path, sim) as exp:
        collections = exp.exporter.collections
        sim.clock.advance(60)
        start(exp)  # on the backup server now; EM shows nothing of it until a collection is done
        collections.step()  # asks for a collection
        sim.clock.advance(5)
        collections.step()  # its task is Finished: the collection started
        exp.poll()
        m = exp.scrape()
        assert value(m, "veeam_em_collections_total", backup_server=SERVER, outcome="finished") == 1
        assert value(m, "veeam_em_data_as_of_timestamp_seconds", backup_server=SERVER) is None
        sim.clock.advance(300)  # now it is done: EM shows the session, and that is evidence
        exp.poll()
        m = exp.scrape()
        as_of = value(m, "veeam_em_data_as_of_timestamp_seconds", backup_server=SERVER)
        assert as_of is not None and as_of >= sim.clock.now - 400


def test_no_collection_while_nothing_runs(tmp_path: Path) -> None:
    with running_sim(scenario()) as sim, exporter(tmp_path, sim) as exp:
        for _ in range(10):
            sim.clock.advance(120)
            exp.poll()
            exp.exporter.collections.step()
        assert sim.world.collections.asked == {}
        assert (
            value(exp.scrape(), "veeam_em_collections_total", backup_server=SERVER, outcome="finished") == 0
        )


def test_never_two_collections_in_flight_for_one_server(tmp_path: Path) -> None:
    with running_sim(scenario(faults={"collect_hangs": True})) as sim, exporter(tmp_path, sim) as exp:
        start(exp)
        for _ in range(4):  # 240 s: four intervals, but the first collection never finishes
            exp.exporter.collections.step()
            sim.clock.advance(60)
        assert len(sim.world.collections.asked[SERVER]) == 1
        sim.clock.advance(300)  # past poll.collect.timeout_seconds: given up, counted, the next may go
        exp.exporter.collections.step()
        exp.exporter.collections.step()
        assert len(sim.world.collections.asked[SERVER]) == 2
        m = exp.scrape()
        assert value(m, "veeam_em_collections_total", backup_server=SERVER, outcome="timeout") == 1


def test_a_refusal_stops_collection_for_that_server_with_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="exporter.polling.collections")
    with running_sim(scenario(faults={"collect_status": 403})) as sim, exporter(tmp_path, sim) as exp:
        start(exp)
        for _ in range(5):
            exp.exporter.collections.step()
            sim.clock.advance(120)
        m = exp.scrape()
        assert value(m, "veeam_em_collections_total", backup_server=SERVER, outcome="refused") == 1
        asks = sum(n for k, n in sim.world.requests.items() if k.startswith("POST /api/backupServers/"))
        assert asks == 1  # not asked again
        refusals = [r for r in caplog.records if "refused to collect" in r.getMessage()]
        assert len(refusals) == 1 and "Portal Administrator" in refusals[0].getMessage()
