"""Hostile request bodies at the start and webhook endpoints (http/request_body.py, http/strict_json.py):
keys given twice, deep nesting, dates outside the calendar; and poisoned display data: each a clear 4xx
or survived, over loopback HTTP against the simulator."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from exporter.http.server import ServerThread
from exporter.wiring import Exporter
from tests import plain_http
from tests.helpers import exporter_config, running_sim
from tests.loopback.test_actions import (
    ACME,
    AM_TOKEN,
    TOKEN,
    alert,
    env,
    notification,
)


def post_start(url: str, body: bytes) -> httpx.Response:
    return plain_http.post(
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
        r = plain_http.post(
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
        r = plain_http.post(
            f"{e.exp.url}/api/v1/alertmanager",
            content=poisoned.encode(),
            headers={"Authorization": f"Bearer {AM_TOKEN}", "Content-Type": "application/json"},
        )
        assert r.status_code == 200
        e.audit.read_bytes().decode("utf-8")  # what is stored is valid UTF-8
        assert plain_http.get(f"{e.exp.url}/status").status_code == 200
        recent = plain_http.get(f"{e.exp.url}/api/v1/actions", headers={"Authorization": f"Bearer {TOKEN}"})
        assert recent.status_code == 200


def test_a_poisoned_audit_log_is_survived_after_a_restart(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    audit.write_text(
        '{"request_id": "r0", "caller": "runbook", "outcome": "invalid", '
        '"reason": "\\ud800", "plan_ref": "\\udfff"}\n'
    )
    with env(tmp_path) as e:
        assert plain_http.get(f"{e.exp.url}/status").status_code == 200
        recent = plain_http.get(f"{e.exp.url}/api/v1/actions", headers={"Authorization": f"Bearer {TOKEN}"})
        assert recent.status_code == 200 and recent.json()["actions"][-1]["reason"] == "\ufffd"


def test_a_raw_non_ascii_authorization_header_is_a_401(tmp_path: Path) -> None:
    from dataclasses import replace

    from exporter.config import WebSettings
    from exporter.secret import Secret

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
