"""The simulator speaks EM's protocol: what the reference describes, checked over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.em import answers, parse, xmldoc
from exporter.simulator import ManualClock, World
from exporter.simulator.query import FilterError, compile_filter
from exporter.simulator.scenario import ScenarioError, scenario_from_dict
from tests import plain_http
from tests.helpers import RunningSim, running_sim

SEED_PLAN_ID = "e7ca6822-a87f-443d-8aae-8005970543bf"
SEED_SESSION_ID = "a986d473-0248-4884-9832-17ec982ee393"


@pytest.fixture
def sim() -> Iterator[RunningSim]:
    with running_sim("seed") as s:
        yield s


def logon(sim: RunningSim) -> str:
    r = plain_http.post(sim.url + "/api/sessionMngr/?v=latest", auth=("admin", "admin"))
    assert r.status_code == 201
    assert r.headers["set-cookie"].startswith("X-RestSvcSessionId=")
    return r.headers["X-RestSvcSessionId"]


def test_entry_point_needs_no_auth(sim: RunningSim) -> None:
    r = plain_http.get(sim.url + "/api/")
    assert r.status_code == 200
    assert b"<EnterpriseManager" in r.content and b'SupportedVersion Name="v1_7"' in r.content


def test_bad_logon_gets_401_with_challenge_and_error_body(sim: RunningSim) -> None:
    r = plain_http.post(sim.url + "/api/sessionMngr/?v=latest", auth=("admin", "nope"))
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Basic Realm=RestSvc"
    assert answers.parse_error_message(r.content) == "Login failed: wrong user name or password."


def test_missing_or_unknown_token_gets_401_error(sim: RunningSim) -> None:
    for headers in ({}, {"X-RestSvcSessionId": "bogus"}):
        r = plain_http.get(sim.url + "/api/cloud/cloudFailoverPlans", headers=headers)
        assert r.status_code == 401
        assert "expired" in answers.parse_error_message(r.content)


def test_cookie_wins_over_header(sim: RunningSim) -> None:
    token = logon(sim)
    url = sim.url + "/api/cloud/cloudFailoverPlans"
    ok = plain_http.get(url, headers={"X-RestSvcSessionId": "bogus", "Cookie": f"X-RestSvcSessionId={token}"})
    assert ok.status_code == 200
    bad = plain_http.get(url, headers={"X-RestSvcSessionId": token, "Cookie": "X-RestSvcSessionId=bogus"})
    assert bad.status_code == 401


def test_logout_then_the_token_is_dead(sim: RunningSim) -> None:
    token = logon(sim)
    h = {"X-RestSvcSessionId": token}
    sessions = plain_http.get(sim.url + "/api/logonSessions", headers=h)
    sid = xmldoc.parse_document(sessions.content)[0].findtext("{http://www.veeam.com/ent/v1.0}SessionId")
    assert plain_http.delete(f"{sim.url}/api/logonSessions/{sid}", headers=h).status_code == 204
    assert plain_http.get(sim.url + "/api/cloud/cloudFailoverPlans", headers=h).status_code == 401


def test_plans_as_refs_entities_and_json(sim: RunningSim) -> None:
    h = {"X-RestSvcSessionId": logon(sim)}
    refs = plain_http.get(sim.url + "/api/cloud/cloudFailoverPlans", headers=h)
    assert b"<EntityReferences" in refs.content and b'Type="FailoverPlanReference"' in refs.content
    plans, errors = parse.parse_plans(
        plain_http.get(sim.url + "/api/cloud/cloudFailoverPlans?format=Entity", headers=h).content
    )
    assert errors == ()
    assert [(p.id, p.name, p.tenant, p.backup_server, p.vms) for p in plans] == [
        (
            SEED_PLAN_ID,
            "ABC Company Failover Plan",
            "ABC Company",
            "srv13.tech.local",
            ("filesrv03", "filesrv04"),
        )
    ]
    js = plain_http.get(
        sim.url + "/api/cloud/cloudFailoverPlans?format=Entity", headers={**h, "Accept": "application/json"}
    )
    assert js.headers["content-type"].startswith("application/json")
    plan = js.json()["CloudFailoverPlans"][0]
    assert plan["Name"] == "ABC Company Failover Plan" and plan["UID"].endswith(SEED_PLAN_ID)
    assert {
        "Rel": "Start",
        "Href": f"{sim.url}/api/cloud/cloudFailoverPlans/{SEED_PLAN_ID}?action=start",
        "Name": None,
        "Type": None,
    } in plan["Links"]


def test_seed_session_served_as_documented(sim: RunningSim) -> None:
    h = {"X-RestSvcSessionId": logon(sim)}
    r = plain_http.get(f"{sim.url}/api/cloud/failoverSessions/{SEED_SESSION_ID}?format=Entity", headers=h)
    assert r.status_code == 200
    seed = (Path(__file__).parents[1] / "unit" / "fixtures" / "seed_session.xml").read_bytes()
    assert parse.parse_session(r.content) == parse.parse_session(seed)
    js = plain_http.get(
        f"{sim.url}/api/cloud/failoverSessions/{SEED_SESSION_ID}?format=Entity",
        headers={**h, "Accept": "application/json"},
    ).json()
    assert [t["VmName"] for t in js["CloudFailoverTasks"]["CloudFailoverTasks"]] == ["filesrv03", "filesrv04"]
    assert js["State"] == "Working" and js["Progress"] == 0


def test_start_task_lifecycle_with_related_session(sim: RunningSim) -> None:
    h = {"X-RestSvcSessionId": logon(sim), "Content-Type": "application/xml"}
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><CloudFailoverPlanManagementSpec '
        b'xmlns="http://www.veeam.com/ent/v1.0"><StartNow>true</StartNow></CloudFailoverPlanManagementSpec>'
    )
    r = plain_http.post(
        f"{sim.url}/api/cloud/cloudFailoverPlans/{SEED_PLAN_ID}?action=start", headers=h, content=body
    )
    assert r.status_code == 202
    task = parse.parse_task(r.content)
    assert (task.id, task.state, task.related_session_id) == ("task-1", "Running", None)
    running = parse.parse_task(plain_http.get(f"{sim.url}/api/tasks/task-1", headers=h).content)
    assert running.state == "Running"
    sim.clock.advance(5)
    done = parse.parse_task(plain_http.get(f"{sim.url}/api/tasks/task-1", headers=h).content)
    assert done.state == "Finished" and done.success is True and done.related_session_id
    s = parse.parse_session(
        plain_http.get(
            f"{sim.url}/api/cloud/failoverSessions/{done.related_session_id}?format=Entity", headers=h
        ).content
    )
    assert s.plan == "ABC Company Failover Plan" and s.state == "Working"
    # another logon session cannot see the task; delete removes it
    other = {"X-RestSvcSessionId": logon(sim)}
    assert plain_http.get(f"{sim.url}/api/tasks/task-1", headers=other).status_code == 404
    assert plain_http.delete(f"{sim.url}/api/tasks/task-1", headers=h).status_code == 204
    assert plain_http.get(f"{sim.url}/api/tasks/task-1", headers=h).status_code == 404


def test_a_test_failover_and_an_undo_as_em_documents_them() -> None:
    """?action=test (no body): 202 and a Task whose Operation is a start's, its session linked once done;
    the replicas' State stays (a test does not switch from a production VM). ?action=undo: 202 and a Task
    UndoCloudFailoverPlan with no Related link; the VMs running from their replicas switch back."""
    scenario = {
        "time_scale": 1,
        "task_delay_seconds": 1,
        "plans": [{"name": "ACME", "backup_server": "vbr01", "vms": ["web", "db"]}],
    }
    with running_sim(scenario) as sim:
        h = {"X-RestSvcSessionId": logon(sim)}
        plan = next(iter(sim.world.plans))

        def states() -> set[str]:
            return {state for _, state in sim.world.replica_points()}

        base = f"{sim.url}/api/cloud/cloudFailoverPlans/{plan}"
        tested = parse.parse_task(plain_http.post(f"{base}?action=test", headers=h).content)
        assert tested.operation == "StartCloudFailoverPlan" and tested.state == "Running"
        sim.clock.advance(2)
        done = parse.parse_task(plain_http.get(f"{sim.url}/api/tasks/{tested.id}", headers=h).content)
        assert done.state == "Finished" and done.related_session_id
        assert [s.id for s in sim.world.sessions()] == [done.related_session_id]
        sim.clock.advance(60)
        assert "Failover" not in states()  # a test leaves the replicas as they were
        assert [p for p, _ in sim.world.tests] == [plan]
        # a real failover puts them in Failover; an undo switches them back
        start = b'<CloudFailoverPlanManagementSpec xmlns="http://www.veeam.com/ent/v1.0"><StartNow>true</StartNow></CloudFailoverPlanManagementSpec>'
        r = plain_http.post(
            f"{base}?action=start", headers={**h, "Content-Type": "application/xml"}, content=start
        )
        assert r.status_code == 202
        sim.clock.advance(60)
        assert "Failover" in states()
        r = plain_http.post(f"{base}?action=undo", headers=h)
        assert r.status_code == 202
        undo = parse.parse_task(r.content)
        assert undo.operation == "UndoCloudFailoverPlan"
        sim.clock.advance(2)
        finished = parse.parse_task(plain_http.get(f"{sim.url}/api/tasks/{undo.id}", headers=h).content)
        assert finished.state == "Finished" and finished.related_session_id is None
        assert "Failover" not in states()
        assert plain_http.post(f"{base}?action=rewind", headers=h).status_code == 400


@pytest.mark.parametrize(
    ("ctype", "body", "message"),
    [
        ("application/xml", b"<Nope/>", "Node [root] does not exist."),
        (
            "application/xml",
            b"<CloudFailoverPlanManagementSpec/>",
            "Either StartNow or StartDate must be specified.",
        ),
        ("application/json", b'{"StartDate": "someday"}', "StartDate is not a valid date."),
        ("text/plain", b"start", "Content-Type must be application/xml or application/json."),
    ],
)
def test_bad_start_bodies_get_400(sim: RunningSim, ctype: str, body: bytes, message: str) -> None:
    h = {"X-RestSvcSessionId": logon(sim), "Content-Type": ctype}
    r = plain_http.post(
        f"{sim.url}/api/cloud/cloudFailoverPlans/{SEED_PLAN_ID}?action=start", headers=h, content=body
    )
    assert r.status_code == 400 and answers.parse_error_message(r.content) == message
    assert sim.world.starts == []


def test_query_filter_sort_and_paging() -> None:
    scenario = {
        "plans": [
            {
                "name": f"P{i}",
                "backup_server": "vbr",
                "vms": ["a"],
                "history": [{"ago_seconds": 1000 * (i + 1), "result": ("Success", "Failed")[i % 2]}],
            }
            for i in range(5)
        ]
    }
    with running_sim(scenario) as sim:
        h = {"X-RestSvcSessionId": logon(sim)}
        r = plain_http.get(
            sim.url + "/api/query",
            headers=h,
            params={
                "type": "CloudFailoverSession",
                "format": "Entities",
                "sortDesc": "CreationTime",
                "filter": "Result==failed",
                "pageSize": "1",
            },
        )
        page = parse.parse_session_query(r.content)
        assert (page.page_num, page.pages_count) == (1, 2)
        assert [s.plan for s in page.items] == ["P1"]
        assert page.next_path is not None and "page=2" in page.next_path and "filter=Result" in page.next_path
        r2 = plain_http.get(page.next_path, headers=h)
        assert [s.plan for s in parse.parse_session_query(r2.content).items] == ["P3"]
        js = plain_http.get(
            sim.url + "/api/query",
            headers={**h, "Accept": "application/json"},
            params={"type": "CloudFailoverSession", "format": "Entities"},
        ).json()
        assert js["PagingInfo"]["PageSize"] == 100  # the real default, whatever the docs say
        assert len(js["Entities"]["CloudFailoverSessions"]["CloudFailoverSessions"]) == 5
        bad = plain_http.get(
            sim.url + "/api/query", headers=h, params={"type": "CloudFailoverSession", "filter": "(("}
        )
        assert bad.status_code == 400


def test_filter_language() -> None:
    rec = {
        "name": "acme plan",
        "result": "Warning",
        "state": "Stopped",
        "creationtime": 1_700_000_000.0,
        "endtime": None,
    }
    assert compile_filter('Name=="ACME Plan"')(rec)
    assert compile_filter("Result>success;Result<failed")(rec)  # enums compare by ordinal
    assert compile_filter("Result==failed,State==stopped")(rec)  # OR
    assert not compile_filter("(Result==failed,State==working);Name==x")(rec)
    assert compile_filter('CreationTime>="2023-11-14T00:00:00"')(rec)
    assert compile_filter("EndTime!=2023-11-14T00:00:00")(rec)
    with pytest.raises(FilterError):
        compile_filter("Name==a)")


def test_camel_case_json_like_em13() -> None:
    with running_sim({"json_case": "camel", "plans": [{"name": "P", "vms": ["a"]}]}) as sim:
        h = {"X-RestSvcSessionId": logon(sim), "Accept": "application/json"}
        plan = plain_http.get(sim.url + "/api/cloud/cloudFailoverPlans?format=Entity", headers=h).json()
        first = plan["cloudFailoverPlans"][0]
        assert first["name"] == "P" and "uid" in first and "links" in first


def test_fault_switches_over_http(sim: RunningSim) -> None:
    h = {"X-RestSvcSessionId": logon(sim)}
    plain_http.post(sim.url + "/_sim/faults", content=json.dumps({"status": 503, "remaining": 1}))
    assert plain_http.get(sim.url + "/api/cloud/cloudFailoverPlans", headers=h).status_code == 503
    assert plain_http.get(sim.url + "/api/cloud/cloudFailoverPlans", headers=h).status_code == 200
    stats = plain_http.get(sim.url + "/_sim/stats").json()
    assert stats["requests"]["GET /api/cloud/cloudFailoverPlans"] == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"plans": [{"vms": []}]}, "plans[0]: missing 'name'"),
        (
            {"plans": [{"name": "x", "vms": [{"name": "a", "result": "Great"}]}]},
            "plans[0].vms[0].result: must be one of",
        ),
        ({"plans": [{"name": "x"}, {"name": "x"}]}, "one tenant has two plans of one name"),
        ({"profile": "em7"}, "profile: unknown EM profile 'em7'"),
        ({"roles": {"admin": "root"}}, "roles: must map user names to one of"),
        ({"time_scale": -2}, "time_scale: must be a non-negative number"),
        ({"sessions": [{"id": "s", "plan": "ghost"}]}, "unknown plan 'ghost'"),
        (
            {"plans": [{"name": "x", "vms": [{"name": "a", "replication": "paused"}]}]},
            "plans[0].vms[0].replication: must be one of running, stopped, never",
        ),
        (
            {"plans": [{"name": "x", "vms": [{"name": "a", "replication_interval_seconds": 0}]}]},
            "plans[0].vms[0].replication_interval_seconds: must be more than 0",
        ),
        (
            {"plans": [{"name": "x", "history": [{"ago_seconds": 5, "in_dr": "yes"}]}]},
            "plans[0].history[0].in_dr: must be true or false",
        ),
    ],
)
def test_bad_scenarios_are_explained(data: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        scenario_from_dict(data)
    assert message in str(err.value)


def test_replica_points_come_on_schedule_and_stop_while_in_dr() -> None:
    data = {
        "point_interval_seconds": 600,
        "points_per_vm": 3,
        "plans": [
            {
                "name": "P",
                "undo_after_seconds": 1000,
                "vm_stagger_seconds": 0,
                "vms": [
                    {"name": "a", "restore_point_age_seconds": 100},
                    {"name": "b", "replication": "never"},
                ],
            },
        ],
    }
    clock = ManualClock(now=1_000_000.0)
    world = World(scenario_from_dict(data), clock=clock)
    plan = world.scenario.plans[0]

    def times() -> list[float]:
        return [p.created for p in world.replication.by_vm[(plan.id, "a")]]

    assert times() == [999_900.0, 999_300.0, 998_700.0] and world.replication.by_vm[(plan.id, "b")] == []
    clock.advance(1100)  # two new points (at +500 and +1100), the oldest two dropped (3 kept)
    world.replica_points()
    assert times() == [1_001_100.0, 1_000_500.0, 999_900.0]
    clock.advance(5)
    with world.lock:
        world._new_session(plan, clock(), None)  # b has no point: its task fails, a's point is in DR
    clock.advance(10)
    [(point, state)] = [
        (p, s) for p, s in world.replica_points() if p.id == world.replication.by_vm[(plan.id, "a")][0].id
    ]
    assert state == "Failover" and point.created == 1_001_100.0
    clock.advance(600)  # in DR: no new point
    world.replica_points()
    b = next(t for t in world.sessions()[-1].tasks if t.vm == "b")
    assert (b.result, b.point_id) == ("Failed", None)  # nothing to fail over to
    assert times()[0] == 1_001_100.0
    clock.advance(600)  # undone 1000 s after the start: replication goes on
    states = dict((p.id, s) for p, s in world.replica_points())
    assert states[world.replication.by_vm[(plan.id, "a")][1].id] == "Ready" and times()[0] > 1_001_100.0
