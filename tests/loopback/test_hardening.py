"""Attacks on the start path and the listener that an adversarial review found to work (issue 13), each
shown to hold now: over loopback HTTP against the simulator."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from exporter.http.server import ServerThread
from tests.helpers import RunningSim, running_sim
from tests.loopback.test_actions import ACME, AM_TOKEN, SCENARIO, TOKEN, alert, env, notification


def post_start(url: str, body: bytes) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/plans/{ACME}/start",
        content=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        timeout=30,
    )


# -- duplicate keys, deep nesting, odd dates --------------------------------------------------------


def test_a_key_given_twice_is_refused_and_starts_nothing(tmp_path: Path) -> None:
    # json.loads keeps the last value: this body meant "dry run" to whoever read it first
    body = b'{"dry_run": true, "start_now": true, "dry_run": false}'
    with env(tmp_path) as e:
        r = post_start(e.exp.url, body)
        assert r.status_code == 400 and "'dry_run' given twice" in r.json()["reason"]
        assert e.starts() == 0


def test_a_webhook_with_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    payload = json.dumps(notification(alert(ACME)))
    twice = payload.replace('"version": "4"', '"version": "4", "version": "4"')
    with env(tmp_path) as e:
        r = httpx.post(
            f"{e.exp.url}/api/v1/alertmanager",
            content=twice.encode(),
            headers={"Authorization": f"Bearer {AM_TOKEN}", "Content-Type": "application/json"},
        )
        assert r.status_code == 400 and "given twice" in r.json()["reason"]
        assert e.starts() == 0


@pytest.mark.parametrize("depth", [40, 100_000])
def test_deeply_nested_json_is_a_400_not_a_500(tmp_path: Path, depth: int) -> None:
    body = b'{"start_now": true, "reason": ' + b"[" * depth + b"]" * depth + b"}"
    with env(tmp_path) as e:
        r = post_start(e.exp.url, body)
        assert r.status_code == 400 and "nested" in r.json()["reason"]
        assert e.lines()[-1]["outcome"] == "invalid"  # on record, so Alertmanager is not kept retrying


def test_a_start_date_outside_the_calendar_is_a_400(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        r = post_start(e.exp.url, b'{"start_date": "0001-01-01T00:00:00+05:00"}')
        assert r.status_code == 400 and "start_date" in r.json()["reason"]
        assert e.starts() == 0


# -- poisoned display data ----------------------------------------------------------------------------


def test_a_lone_surrogate_in_an_alert_never_breaks_a_view(tmp_path: Path) -> None:
    payload = json.dumps(notification(alert(None, fingerprint="dead")))
    poisoned = payload.replace('"severity": "critical"', '"severity": "critical", "note": "\\ud800x"')
    with env(tmp_path) as e:
        r = httpx.post(
            f"{e.exp.url}/api/v1/alertmanager",
            content=poisoned.encode(),
            headers={"Authorization": f"Bearer {AM_TOKEN}", "Content-Type": "application/json"},
        )
        assert r.status_code == 200
        e.audit.read_bytes().decode("utf-8")  # what is stored is valid UTF-8
        assert httpx.get(f"{e.exp.url}/status").status_code == 200
        recent = httpx.get(f"{e.exp.url}/api/v1/actions", headers={"Authorization": f"Bearer {TOKEN}"})
        assert recent.status_code == 200


def test_a_poisoned_audit_log_is_survived_after_a_restart(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    audit.write_text(
        '{"request_id": "r0", "outcome": "invalid", "reason": "\\ud800", "plan_ref": "\\udfff"}\n'
    )
    with env(tmp_path) as e:
        assert httpx.get(f"{e.exp.url}/status").status_code == 200
        recent = httpx.get(f"{e.exp.url}/api/v1/actions", headers={"Authorization": f"Bearer {TOKEN}"})
        assert recent.status_code == 200 and recent.json()["actions"][-1]["reason"] == "\ufffd"


def test_a_raw_non_ascii_authorization_header_is_a_401(tmp_path: Path) -> None:
    from dataclasses import replace

    from exporter.app import Exporter
    from exporter.config import WebSettings
    from exporter.http.server import ServerThread
    from exporter.secret import Secret
    from tests.helpers import exporter_config, running_sim

    web = WebSettings(basic_username="prometheus", basic_password=Secret("scrape-password-0123"))
    with running_sim("seed") as sim:
        server = ServerThread(Exporter(replace(exporter_config(sim.url), web=web), start_poller=False).app)
        server.start()
        try:
            with socket.create_connection((server.host, server.port), timeout=5) as s:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic \xff\xfe==\r\n\r\n")
                answer = s.recv(4096)
            assert answer.startswith(b"HTTP/1.1 401"), answer[:80]
            assert b"Traceback" not in answer
        finally:
            server.stop()


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
        e.sim.world.expire_tokens()
        r = e.start(ACME)
        assert r.status_code == 503 and "not sent" in r.json()["reason"]
        assert "admin" not in r.json()["reason"]
        assert e.starts() == 0
