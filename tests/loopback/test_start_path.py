"""The start path (actions/start_path.py, actions/guards.py) against hostile and unlucky cases: an EM answer
that is no refusal counts as started, the guards' scope (keys per caller and plan, allowlists by server),
the global hourly limits; over loopback HTTP against the simulator."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from exporter.http.server import ServerThread
from exporter.simulator.scenario import stable_id
from tests import plain_http
from tests.helpers import RunningSim, exporter_config, running_exporter, running_sim, value
from tests.loopback.test_actions import (
    ACME,
    GLOBEX,
    LIMITED_TOKEN,
    SCENARIO,
    TOKEN,
    env,
    settings,
)

ACME_ID = stable_id("plan", "vbr01", ACME)


def post_start(url: str, body: bytes) -> httpx.Response:
    return plain_http.post(
        f"{url}/api/v1/plans/{ACME}/start",
        content=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        timeout=30,
    )


# -- a start whose answer is not EM's refusal -----------------------------------------------------------


def _proxy(upstream: str, status: int, body: bytes, media: str) -> Starlette:
    """A reverse proxy in front of EM that passes everything on, but answers a start itself, after EM
    got it (a gateway timing out, or failing, while EM acted)."""

    async def forward(request: Request) -> Response:
        async with httpx.AsyncClient(base_url=upstream) as client:
            up = await client.request(
                request.method,
                request.url.path + ("?" + request.url.query if request.url.query else ""),
                headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
                content=await request.body(),
            )
        if request.query_params.get("action") == "start":
            return Response(body, status_code=status, media_type=media)
        return Response(up.content, status_code=up.status_code, headers=dict(up.headers))

    return Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST", "DELETE"])])


@pytest.mark.parametrize(
    ("status", "body", "media"),
    [
        (504, b"<html><body>504 Gateway Time-out</body></html>", "text/html"),
        (502, b"<html><body>502 Bad Gateway</body></html>", "text/html"),
        (
            500,
            b'<Error xmlns="http://www.veeam.com/ent/v1.0" Message="Object reference not set." '
            b'StatusCode="500"/>',
            "application/xml",
        ),
        # a 401 after EM acted (a gateway's own auth in front of EM): never logged on again and re-sent
        (
            401,
            b'<Error xmlns="http://www.veeam.com/ent/v1.0" Message="Unauthorized." StatusCode="401"/>',
            "application/xml",
        ),
    ],
)
def test_an_answer_that_is_no_em_refusal_counts_as_started(
    tmp_path: Path, status: int, body: bytes, media: str
) -> None:
    with running_sim(SCENARIO) as sim:
        proxy = ServerThread(_proxy(sim.url, status, body, media)).start()
        try:
            via = RunningSim(sim.world, proxy, sim.clock)
            with env(tmp_path, sim=via, cooldown_seconds=0) as e:
                r = e.start(ACME, **{"Idempotency-Key": "k1"})
                assert r.status_code == 504 and "may have happened" in r.json()["reason"]
                assert e.starts() == 1  # EM did start it
                assert e.lines()[-1]["outcome"] == "em_unknown"
                # Alertmanager retries a 5xx; a runbook may try with a new key: neither starts it again
                assert e.start(ACME, **{"Idempotency-Key": "k1"}).json()["outcome"] == "duplicate"
                again = e.start(ACME, **{"Idempotency-Key": "k2"})
                assert again.status_code == 409 and again.json()["outcome"] == "conflict"
                assert e.starts() == 1
        finally:
            proxy.stop()


def test_ems_own_refusal_of_the_start_is_a_4xx_and_frees_the_key(tmp_path: Path) -> None:
    refusal = b'<Error xmlns="http://www.veeam.com/ent/v1.0" Message="Access denied." StatusCode="403"/>'
    with running_sim(SCENARIO) as sim:
        proxy = ServerThread(_proxy(sim.url, 403, refusal, "application/xml")).start()
        try:
            via = RunningSim(sim.world, proxy, sim.clock)
            with env(tmp_path, sim=via) as e:
                r = e.start(ACME, **{"Idempotency-Key": "k1"})
                assert r.status_code == 422 and "EM refused the start" in r.json()["reason"]
        finally:
            proxy.stop()


def test_a_logon_refused_during_a_start_is_a_503_that_names_no_account(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        e.sim.world.faults.update({"refuse_logon": True})
        e.sim.world.logon_book.expire()
        r = e.start(ACME)
        assert r.status_code == 503 and "not sent" in r.json()["reason"]
        assert "admin" not in r.json()["reason"]
        assert e.starts() == 0


# -- the guards' scope ------------------------------------------------------------------------------------


def test_an_idempotency_key_is_one_callers_for_one_plan(tmp_path: Path) -> None:
    # the runbook may start ACME, the limited caller GLOBEX; both happen to use the key "k1"
    with env(tmp_path) as e:
        first = e.start(ACME, **{"Idempotency-Key": "k1"})
        assert first.status_code == 202
        other = e.start(GLOBEX, token=LIMITED_TOKEN, **{"Idempotency-Key": "k1"})
        assert other.status_code == 202 and other.json()["outcome"] == "accepted"  # not a "duplicate"
        assert first.json()["request_id"] not in other.text  # nor does it learn of the other's request
        assert e.starts() == 2


def test_a_key_from_a_log_before_keys_were_scoped_still_counts(tmp_path: Path) -> None:
    record = {
        "outcome": "accepted",
        "plan_id": ACME_ID,
        "request_id": "r-old",
        "idempotency_key": "api:k1",
        "time": "2020-01-01T00:00:00Z",
    }
    (tmp_path / "audit.jsonl").write_text(json.dumps(record) + "\n")
    with env(tmp_path, cooldown_seconds=0) as e:
        r = e.start(ACME, **{"Idempotency-Key": "k1"})
        assert r.json()["outcome"] == "duplicate" and e.starts() == 0


def test_an_allowlist_entry_can_name_a_backup_server(tmp_path: Path) -> None:
    from dataclasses import replace

    from exporter.config import Caller
    from exporter.secret import Secret

    twins = {
        "time_scale": 1,
        "task_delay_seconds": 1,
        "plans": [
            {"name": "Site DR", "tenant": "A", "backup_server": "vbr01", "vms": ["a"]},
            {"name": "Site DR", "tenant": "B", "backup_server": "vbr02", "vms": ["b"]},
        ],
    }
    callers = (Caller("runbook", Secret(TOKEN), plans=(("vbr02", "Site DR"),)),)
    with running_sim(twins) as sim:
        cfg = exporter_config(sim.url, actions=replace(settings(tmp_path), callers=callers))
        with running_exporter(cfg) as exp:
            exp.poll()
            ids = {p.backup_server: p.id for p in sim.world.plans.values()}

            def start(ref: str) -> httpx.Response:
                return plain_http.post(
                    f"{exp.url}/api/v1/plans/{ref}/start",
                    json={"start_now": True, "dry_run": True},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )

            assert start(ids["vbr01"]).status_code == 403  # the same name on another server
            assert start(ids["vbr02"]).status_code == 200
            # a bare name two plans have: a caller restricted to some plans hears the one refusal it hears
            # for any plan not its own (it must use the ID); it learns nothing of the other plan
            assert start("Site DR").status_code == 403


def test_a_caller_sees_only_its_own_decisions_unless_admin(tmp_path: Path) -> None:
    from exporter.config import Caller
    from exporter.secret import Secret

    admin_token = "admin-token-0123456789"
    with env(tmp_path) as e:
        e.start(ACME, body={"start_now": True, "dry_run": True})
        e.start(GLOBEX, token=LIMITED_TOKEN, body={"start_now": True, "dry_run": True})

        def seen(token: str) -> set[str]:
            r = plain_http.get(f"{e.exp.url}/api/v1/actions", headers={"Authorization": f"Bearer {token}"})
            return {x["caller"] for x in r.json()["actions"]}

        assert seen(LIMITED_TOKEN) == {"limited"}
        assert seen(TOKEN) == {"runbook"}
    admin = Caller("ops", Secret(admin_token), roles=("admin",))
    with env(tmp_path, callers=(*settings(tmp_path).callers, admin)) as e:
        r = plain_http.get(f"{e.exp.url}/api/v1/actions", headers={"Authorization": f"Bearer {admin_token}"})
        assert {x["caller"] for x in r.json()["actions"]} == {"runbook", "limited"}


# -- global limits (issue 14, part 3) ----------------------------------------------------------------------


def _many_plans(n: int, servers: int = 1) -> dict[str, Any]:
    return {
        "time_scale": 1,
        "task_delay_seconds": 1,
        "plans": [
            {"name": f"Tenant {i:02d} DR", "backup_server": f"vbr{i % servers:02d}", "vms": ["a"]}
            for i in range(n)
        ],
    }


def test_ten_plans_at_once_start_only_as_many_as_the_hourly_limit(tmp_path: Path) -> None:
    names = tuple(f"Tenant {i:02d} DR" for i in range(10))
    with running_sim(_many_plans(10)) as sim:
        cfg = exporter_config(sim.url, actions=settings(tmp_path, allowed_plans=names, max_starts_per_hour=3))
        with running_exporter(cfg) as exp:
            exp.poll()

            def start(name: str) -> httpx.Response:
                return plain_http.post(
                    f"{exp.url}/api/v1/plans/{name}/start",
                    json={"start_now": True},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    timeout=30,
                )

            with ThreadPoolExecutor(max_workers=10) as pool:
                answers = list(pool.map(start, names))
            outcomes = sorted(r.json()["outcome"] for r in answers)
            assert outcomes == ["accepted"] * 3 + ["conflict"] * 7
            assert len(sim.world.starts) == 3
            refused = [r.json()["reason"] for r in answers if r.status_code == 409]
            assert all("max_starts_per_hour (3)" in why for why in refused)
            m = exp.scrape()
            assert value(m, "veeam_failover_starts_last_hour") == 3
            assert value(m, "veeam_failover_start_limit_per_hour") == 3
        # a restart remembers the hour's starts
        with running_exporter(cfg) as again:
            again.poll()
            r = plain_http.post(
                f"{again.url}/api/v1/plans/{names[9]}/start",
                json={"start_now": True},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert r.status_code == 409 and "max_starts_per_hour" in r.json()["reason"]
            assert len(sim.world.starts) == 3


def test_a_limit_per_backup_server(tmp_path: Path) -> None:
    names = tuple(f"Tenant {i:02d} DR" for i in range(4))  # vbr00: 0, 2; vbr01: 1, 3
    with running_sim(_many_plans(4, servers=2)) as sim:
        actions = settings(
            tmp_path, allowed_plans=names, max_starts_per_hour=10, max_starts_per_hour_per_backup_server=1
        )
        with running_exporter(exporter_config(sim.url, actions=actions)) as exp:
            exp.poll()
            got = [
                plain_http.post(
                    f"{exp.url}/api/v1/plans/{n}/start",
                    json={"start_now": True},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                ).json()["outcome"]
                for n in names
            ]
            assert got == ["accepted", "accepted", "conflict", "conflict"]
            assert len(sim.world.starts) == 2
