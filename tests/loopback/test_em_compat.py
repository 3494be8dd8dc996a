"""What a real EM may do that our first simulator did not: each case here failed before the client
learnt to accept it (see docs/em-compatibility.md). Over loopback HTTP, against the simulator's profiles."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from exporter.config import ActionSettings, Caller, PollSettings
from exporter.em.client import EMClient
from exporter.em.timefmt import point_time_from_name
from exporter.http.server import ServerThread
from exporter.secret import Secret
from exporter.simulator import Simulator, World
from exporter.simulator.scenario import scenario_from_dict
from tests import plain_http
from tests.helpers import exporter_config, running_exporter, running_sim, series, utc, value

PLANS = [
    {"name": "ACME full site failover", "tenant": "ACME", "backup_server": "vbr01", "vms": ["web", "db"]},
    {"name": "Globex DR plan", "tenant": "Globex", "backup_server": "vbr02", "vms": ["app"]},
]
ACME = {"backup_server": "vbr01", "plan": "ACME full site failover"}


def scenario(profile: str, **extra: Any) -> dict[str, Any]:
    return {"profile": profile, "time_scale": 1, "plans": PLANS, **extra}


# -- empty results ------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["default", "em95", "em10", "em11", "em12", "em13"])
def test_an_em_without_sessions_is_up_and_every_plan_is_exported(profile: str) -> None:
    # em10 and em13 answer an empty query with PagesCount="0", em95 with no PagingInfo at all.
    with running_sim(scenario(profile)) as sim, running_exporter(exporter_config(sim.url)) as exp:
        for _ in range(3):  # the first poll, then quiet polls that count the (empty) window
            exp.poll()
            m = exp.scrape()
            assert value(m, "veeam_em_up") == 1
            assert len(series(m, "veeam_failover_plan_info")) == 2
        assert value(m, "veeam_em_poll_errors_total", reason="paging") in (None, 0)


def _fixed_em(query_body: bytes) -> Starlette:
    """An EM that answers every query with the same body: for paging shapes no profile has."""

    async def logon(request: Request) -> Response:
        return Response(
            b'<LogonSession xmlns="http://www.veeam.com/ent/v1.0"><SessionId>s</SessionId></LogonSession>',
            201,
            {"X-RestSvcSessionId": "t"},
            media_type="application/xml",
        )

    async def query(request: Request) -> Response:
        return Response(query_body, media_type="application/xml")

    return Starlette(
        routes=[
            Route("/api/sessionMngr/", logon, methods=["POST"]),
            Route("/api/query", query),
        ]
    )


EMPTY_WITH_NEXT = b"""<QueryResult xmlns="http://www.veeam.com/ent/v1.0"><Entities><CloudFailoverSessions />
</Entities><PagingInfo PageNum="1" PageSize="100" PagesCount="3"><Links>
<Link Rel="Next" Href="https://localhost:9398/api/query?type=CloudFailoverSession&amp;page=2" />
</Links></PagingInfo></QueryResult>"""


def test_an_empty_page_ends_the_result_even_with_a_next_link() -> None:
    server = ServerThread(_fixed_em(EMPTY_WITH_NEXT)).start()
    try:
        c = EMClient(server.url, "u", Secret("p"))
        pages = list(c.session_pages(0.0))
        assert [len(p.items) for p in pages] == [0]
        assert c.session_count(0.0) == 0
        c.close()
    finally:
        server.stop()


# -- DateTime filters ------------------------------------------------------------------------------

FILTER_VALUE = re.compile(r'CreationTime>="(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"')


@pytest.mark.parametrize("profile", ["default", "em95", "em10", "em13"])
def test_a_session_em_learns_late_is_seen_however_the_server_reads_the_time(profile: str) -> None:
    # em95 reads every DateTime value as its local time (UTC-5), em10 a value without a zone as
    # UTC-8: a filter of "30 minutes ago" then asks for sessions 5 or 8 hours in the future.
    with running_sim(scenario(profile)) as sim, running_exporter(exporter_config(sim.url)) as exp:
        exp.poll()
        assert series(exp.scrape(), "veeam_failover_session_info") == {}
        # EM collects from the backup server: a session that began 10 minutes ago appears now
        sid = sim.world.add_session(ACME["plan"], sim.clock.now - 600)
        exp.poll()  # a quiet poll: its count must see the new session, and read it
        m = exp.scrape()
        assert value(m, "veeam_failover_session_info", **ACME, session_id=sid) == 1
        assert value(m, "veeam_em_up") == 1
    filters = [FILTER_VALUE.search(q) for q in sim.world.queries if "CreationTime" in q]
    assert filters and all(filters), sim.world.queries  # the documented UTC form, quoted, with Z


def test_the_window_is_widened_but_filtered_exactly_on_our_side() -> None:
    with running_sim(scenario("default")) as sim:
        slack = PollSettings().filter_time_slack_seconds
        assert slack >= 14 * 3600  # the largest UTC offset
        with running_exporter(exporter_config(sim.url)) as exp:
            exp.poll()
            exp.poll()
            sent = [m for q in sim.world.queries if (m := FILTER_VALUE.search(q))]
        # the second poll asked from (first poll - lookback - slack)
        asked = utc(sent[-1].group(1))
        assert time.time() - asked == pytest.approx(1800 + slack, abs=30)


# -- replica points ------------------------------------------------------------------------------


def _points_scenario(profile: str) -> dict[str, Any]:
    # The point names carry local time (UTC+2); only reading the point gives its true CreationTimeUTC.
    return {
        "profile": profile,
        "plans": [{"name": "P", "backup_server": "vbr", "vms": ["vm1", "vm2"]}],
        "sessions": [
            {
                "id": "0d2b4a5e-0000-4000-8000-000000000001",
                "plan": "P",
                "creation_time": "2026-01-01T10:00:00Z",
                "state": "Working",
                "tasks": [
                    {
                        "vm": vm,
                        "point_id": f"0d2b4a5e-0000-4000-8000-00000000010{i}",
                        "point_name": f"{vm}@2026-01-01 0{8 + i}:00:00",
                        "point_time": f"2026-01-01T0{6 + i}:00:00Z",
                    }
                    for i, vm in enumerate(["vm1", "vm2"])
                ],
            }
        ],
    }


@pytest.mark.parametrize(
    ("profile", "form"), [("default", "urn"), ("em95", "guid"), ("em10", "urn"), ("em11", "entity")]
)
def test_replica_points_are_read_in_whichever_form_this_em_accepts(profile: str, form: str) -> None:
    poll = PollSettings(history_seconds=20 * 365 * 86400.0, point_queries_per_poll=3)
    with (
        running_sim(_points_scenario(profile)) as sim,
        running_exporter(exporter_config(sim.url, poll=poll)) as exp,
    ):
        for _ in range(3):  # forms are tried, and points read, within each poll's request budget
            exp.poll()
        m = exp.scrape()
        for i, vm in enumerate(["vm1", "vm2"]):
            got = value(
                m, "veeam_failover_vm_restore_point_timestamp_seconds", backup_server="vbr", plan="P", vm=vm
            )
            assert got == utc(f"2026-01-01T0{6 + i}:00:00Z"), (vm, got)
        assert exp.exporter.poller.points.form == form
        # remembered: a later session's points are asked for in that form only
        asked_before = len(sim.world.queries)
        sim.world.points.clear()
        exp.exporter.poller.points.times.clear()
        exp.poll()
        later = [q for q in list(sim.world.queries)[asked_before:] if "CloudVmReplicaPoint" in q]
        if form == "guid":
            assert later and all("urn:" not in q for q in later)
        if form == "urn":
            assert later and all("urn:veeam:CloudVmReplicaPoint:" in q for q in later)


def test_point_names_with_fractions_of_a_second_parse() -> None:
    assert point_time_from_name("vm@2025-08-15 20:00:24.003406") == pytest.approx(
        utc("2025-08-15T20:00:24Z") + 0.003406, abs=1e-6
    )
    assert point_time_from_name("db 01@2025-08-15 20:00:24") == utc("2025-08-15T20:00:24Z")


def test_point_queries_are_written_as_em_links_write_filters() -> None:
    poll = PollSettings(history_seconds=20 * 365 * 86400.0)
    with (
        running_sim(_points_scenario("default")) as sim,
        running_exporter(exporter_config(sim.url, poll=poll)) as exp,
    ):
        exp.poll()
    point_queries = [q for q in sim.world.queries if "type=CloudVmReplicaPoint" in q]
    flt = point_queries[0].split("filter=", 1)[1].split("&")[0]
    # `,` for OR, each value in double quotes
    assert re.fullmatch(r'UID=="urn:veeam:CloudVmReplicaPoint:[0-9a-f-]+"(,UID=="[^"]+")+', flt), flt


# -- logon session, links ------------------------------------------------------------------------


def test_the_exporter_keeps_no_em_cookies() -> None:
    # EM sets its token as a cookie too, and a cookie wins over the header: a kept one could send a
    # stale token after a new logon.
    with running_sim(scenario("default")) as sim, running_exporter(exporter_config(sim.url)) as exp:
        exp.poll()
        sim.world.logon_book.expire()
        exp.poll()
        assert value(exp.scrape(), "veeam_em_up") == 1
        assert sim.world.cookie_requests == 0


@contextmanager
def _behind_a_prefix(sim_app: Any) -> Iterator[str]:
    """EM behind a reverse proxy at /em: its links name neither the proxy's host nor the prefix."""
    server = ServerThread(Starlette(routes=[Mount("/em", app=sim_app)])).start()
    try:
        yield server.url + "/em"
    finally:
        server.stop()


@pytest.mark.parametrize("profile", ["default", "em11"])
def test_links_are_followed_relative_to_the_configured_api(profile: str) -> None:
    plans = [
        {"name": f"Plan {i}", "backup_server": "vbr01", "vms": ["a"], "history": [{"ago_seconds": 60 + i}]}
        for i in range(5)
    ]
    world = World(scenario_from_dict({"profile": profile, "plans": plans}))
    with (
        _behind_a_prefix(Simulator(world).app) as url,
        running_exporter(exporter_config(url, page_size=2)) as exp,
    ):
        exp.poll()
        exp.poll()  # reads the whole window: three pages, through two Next links
        m = exp.scrape()
    assert value(m, "veeam_em_up") == 1
    assert len(series(m, "veeam_failover_session_info")) == 5
    assert world.requests["GET /api/query?type=CloudFailoverSession"] >= 4


# -- a start's task -------------------------------------------------------------------------------

TOKEN = "runbook-token-0123456789"


def _start(url: str) -> httpx.Response:
    return plain_http.post(
        f"{url}/api/v1/plans/{ACME['plan']}/start",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={"start_now": True},
        timeout=30,
    )


def _audit(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _wait_for(check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("collected", [True, False])
def test_operation_finished_is_done_but_not_collected_not_a_timeout(tmp_path: Path, collected: bool) -> None:
    audit = tmp_path / "audit.jsonl"
    actions = ActionSettings(
        enabled=True,
        callers=(Caller("runbook", Secret(TOKEN)),),
        allowed_plans=(ACME["plan"],),
        audit_log=str(audit),
        task_poll_interval_seconds=0.05,
        task_timeout_seconds=60 if collected else 1.5,
    )
    sc = scenario("default", task_delay_seconds=1, task_collect_delay_seconds=900)
    with running_sim(sc) as sim, running_exporter(exporter_config(sim.url, actions=actions)) as exp:
        exp.poll()
        assert _start(exp.url).status_code == 202
        sim.clock.advance(2)  # done on the backup server; EM collects it in 15 minutes
        _wait_for(lambda: any(x["outcome"] == "task_done_uncollected" for x in _audit(audit)))
        if collected:
            sim.clock.advance(900)
            _wait_for(lambda: any(x["outcome"] == "task_finished" for x in _audit(audit)))
            assert _audit(audit)[-1]["em_session_id"]
        else:
            _wait_for(lambda: any(x["outcome"] == "task_uncollected" for x in _audit(audit)))
        assert not any(x["outcome"] == "task_timeout" for x in _audit(audit))
    assert ActionSettings().task_timeout_seconds >= 900 + 60  # one collection interval, and some


# -- plans of one name ------------------------------------------------------------------------------


def test_two_tenants_plans_of_one_name_are_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    plans = [
        {"name": "Site DR", "tenant": "ACME", "backup_server": "vbr01", "vms": ["a1"]},
        {"name": "Site DR", "tenant": "Globex", "backup_server": "vbr01", "vms": ["g1", "g2"]},
        {"name": "Site DR", "tenant": "Initech", "backup_server": "vbr02", "vms": ["i1"]},
    ]
    caplog.set_level(logging.WARNING)
    with (
        running_sim({"plans": plans}) as sim,
        running_exporter(exporter_config(sim.url)) as exp,
    ):
        exp.poll()
        m = exp.scrape()
        exp.poll()
    assert value(m, "veeam_failover_plan_name_conflicts", backup_server="vbr01") == 1
    assert value(m, "veeam_failover_plan_name_conflicts", backup_server="vbr02") == 0
    # one series per (backup server, name): never two that a join would trip over
    assert len(series(m, "veeam_failover_plan_info")) == 2
    warnings = [r.getMessage() for r in caplog.records if "several cloud failover plans" in r.getMessage()]
    assert len(warnings) == 1 and "'Site DR'" in warnings[0] and "'vbr01'" in warnings[0]
