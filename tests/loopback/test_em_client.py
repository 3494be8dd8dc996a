"""The EM client against the simulator over loopback HTTP: logon, reuse, re-logon, logout, paging, errors."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from exporter.em.address import normalize_base_url
from exporter.em.client import EMClient
from exporter.em.errors import EMError
from exporter.secret import Secret
from tests.helpers import running_sim

TWO_PLANS = {
    "time_scale": 1,
    "plans": [
        {
            "name": "Plan A",
            "backup_server": "vbr01",
            "vms": ["a1", "a2"],
            "history": [{"ago_seconds": 100}, {"ago_seconds": 300}, {"ago_seconds": 500}],
        },
        {
            "name": "Plan B",
            "backup_server": "vbr01",
            "vms": ["b1"],
            "history": [{"ago_seconds": 200}, {"ago_seconds": 400}, {"ago_seconds": 600}],
        },
    ],
}


def client(url: str, password: str = "admin", **kw: object) -> EMClient:
    return EMClient(url, "admin", Secret(password), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "given",
    [
        "https://em.example:9398",
        "https://em.example:9398/",
        "https://em.example:9398/api",
        "https://em.example:9398/api/",
    ],
)
def test_base_url_with_or_without_api(given: str) -> None:
    assert normalize_base_url(given) == "https://em.example:9398/api"


@pytest.mark.parametrize("bad", ["em.example:9398", "ftp://em.example", "https://user:pw@em.example"])
def test_bad_base_urls(bad: str) -> None:
    with pytest.raises(ValueError, match="must"):
        normalize_base_url(bad)


def test_logon_once_and_reuse_the_token() -> None:
    with running_sim(TWO_PLANS) as sim:
        c = client(sim.url)
        for _ in range(3):
            plans, errors = c.plans()
        assert sorted(p.name for p in plans) == ["Plan A", "Plan B"] and errors == ()
        assert sim.world.requests["POST /api/sessionMngr/"] == 1
        assert c.stats.logons == 1
        assert c.stats.requests[("/api/cloud/cloudFailoverPlans", "200")] == 3
        c.close()


def test_relogon_once_after_expiry_and_the_call_still_succeeds() -> None:
    with running_sim(TWO_PLANS) as sim:
        c = client(sim.url)
        c.plans()
        sim.world.logon_book.expire()
        plans, _ = c.plans()
        assert len(plans) == 2
        assert c.stats.logons == 2
        assert c.stats.requests[("/api/cloud/cloudFailoverPlans", "401")] == 1
        c.close()


def test_idle_timeout_on_the_em_side_is_survived() -> None:
    with running_sim(TWO_PLANS) as sim:
        c = client(sim.url)
        c.plans()
        sim.clock.advance(16 * 60)  # EM forgets a token after 15 idle minutes
        assert len(c.plans()[0]) == 2
        assert c.stats.logons == 2
        c.close()


def test_logout_ends_the_em_session() -> None:
    with running_sim(TWO_PLANS) as sim:
        c = client(sim.url)
        c.plans()
        assert len(sim.world.logons) == 1
        c.close()
        assert sim.world.logouts == 1
        assert len(sim.world.logons) == 0


def test_wrong_password_is_a_clear_error_without_the_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with running_sim(TWO_PLANS) as sim:
        c = client(sim.url, password="hunter2-secret")
        with pytest.raises(EMError) as err:
            c.plans()
        assert err.value.reason == "logon"
        assert "EM refused the logon as 'admin': HTTP 401" in str(err.value)
        assert "role" in str(err.value)
        assert "hunter2-secret" not in str(err.value) + caplog.text
        c.close()


def test_paging_follows_next_until_the_end() -> None:
    with running_sim(TWO_PLANS) as sim:
        c = client(sim.url, page_size=2)
        pages = list(c.session_pages(since=None))
        assert [p.page_num for p in pages] == [1, 2, 3]
        ids = [s.id for p in pages for s in p.items]
        assert len(ids) == 6 == len(set(ids))
        starts = [s.start or 0.0 for p in pages for s in p.items]
        assert starts == sorted(starts, reverse=True)  # newest first, as asked
        assert sim.world.requests["GET /api/query?type=CloudFailoverSession"] == 3
        c.close()


def test_since_filter_limits_the_window() -> None:
    with running_sim(TWO_PLANS) as sim:
        c = client(sim.url)
        sessions = [s for p in c.session_pages(since=sim.clock.now - 250) for s in p.items]
        assert sorted(s.plan for s in sessions) == ["Plan A", "Plan B"]  # 100 s and 200 s ago
        c.close()


def test_a_paging_loop_is_cut_off() -> None:
    with running_sim(TWO_PLANS) as sim:
        c = client(sim.url, page_size=1, max_pages=3)
        with pytest.raises(EMError, match="more than 3 pages") as err:
            list(c.session_pages(since=None))
        assert err.value.reason == "paging"
        c.close()


def test_5xx_is_an_error_with_ems_message() -> None:
    with running_sim(TWO_PLANS) as sim:
        c = client(sim.url)
        c.plans()
        sim.world.faults.status = 503
        with pytest.raises(EMError, match="HTTP 503: The service is temporarily overloaded") as err:
            c.plans()
        assert err.value.reason == "http_5xx"
        c.close()


def test_garbage_is_a_parse_error() -> None:
    with running_sim(TWO_PLANS) as sim:
        c = client(sim.url)
        c.plans()
        sim.world.faults.garbage = True
        with pytest.raises(EMError, match="malformed XML") as err:
            c.plans()
        assert err.value.reason == "parse"
        c.close()


def test_slow_answers_time_out() -> None:
    with running_sim(TWO_PLANS) as sim:
        c = client(sim.url, timeout=0.3)
        sim.world.faults.latency = 1.0
        with pytest.raises(EMError, match=r"no answer within 0\.3s") as err:
            c.plans()
        assert err.value.reason == "timeout"
        assert c.stats.errors[("/api/sessionMngr", "timeout")] == 1
        sim.world.faults.latency = 0.0
        c.close()


def test_oversized_answers_are_refused() -> None:
    with running_sim(TWO_PLANS) as sim:
        c = client(sim.url, max_body_bytes=1024)
        with pytest.raises(EMError, match="larger than 1024 bytes") as err:
            c.plans()
        assert err.value.reason == "too_large"
        c.close()


def test_nobody_listening_is_a_connect_error() -> None:
    c = client("http://127.0.0.1:9")
    with pytest.raises(EMError, match=r"cannot connect to http://127\.0\.0\.1:9") as err:
        c.plans()
    assert err.value.reason == "connect"
    c.close()


def test_start_now_round_trips_the_seed_example() -> None:
    with running_sim("seed") as sim:
        c = client(sim.url)
        task = c.start_plan("e7ca6822-a87f-443d-8aae-8005970543bf")
        assert (task.id, task.state, task.operation, task.success) == (
            "task-1",
            "Running",
            "StartCloudFailoverPlan",
            None,
        )
        assert sim.world.starts[0].start_now is True
        sim.clock.advance(10)
        done = c.task("task-1")
        assert (done.state, done.success, done.message) == ("Finished", True, "Ok")
        assert done.related_session_id is not None
        assert sim.world.session(done.related_session_id) is not None
        c.close()


def test_start_date_picks_an_older_point() -> None:
    with running_sim("seed") as sim:
        c = client(sim.url)
        when = datetime.fromtimestamp(sim.clock.now - 5 * 3600, UTC)
        c.start_plan("e7ca6822-a87f-443d-8aae-8005970543bf", start_date=when)
        rec = sim.world.starts[0]
        assert rec.start_now is False and rec.start_date == pytest.approx(when.timestamp(), abs=0.001)
        c.close()


def test_starting_an_unknown_plan_is_a_4xx() -> None:
    with running_sim("seed") as sim:
        c = client(sim.url)
        with pytest.raises(EMError, match="HTTP 404: Cloud failover plan not found") as err:
            c.start_plan("no-such-plan")
        assert err.value.reason == "http_4xx" and err.value.status == 404
        c.close()
