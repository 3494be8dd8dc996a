"""Attacks on the start path and the listener that an adversarial review found to work (issue 13), each
shown to hold now: over loopback HTTP against the simulator."""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import resource
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from exporter.actions.audit import log as audit_module
from exporter.config.load import build_config
from exporter.http.server import ServerThread
from exporter.simulator.scenario import stable_id
from exporter.wiring import Exporter
from tests.helpers import RunningSim, exporter_config, running_exporter, running_sim, value
from tests.loopback.test_actions import (
    ACME,
    AM_TOKEN,
    GLOBEX,
    LIMITED_TOKEN,
    SCENARIO,
    TOKEN,
    alert,
    env,
    notification,
    settings,
)


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
        '{"request_id": "r0", "caller": "runbook", "outcome": "invalid", '
        '"reason": "\\ud800", "plan_ref": "\\udfff"}\n'
    )
    with env(tmp_path) as e:
        assert httpx.get(f"{e.exp.url}/status").status_code == 200
        recent = httpx.get(f"{e.exp.url}/api/v1/actions", headers={"Authorization": f"Bearer {TOKEN}"})
        assert recent.status_code == 200 and recent.json()["actions"][-1]["reason"] == "\ufffd"


def test_a_raw_non_ascii_authorization_header_is_a_401(tmp_path: Path) -> None:
    from dataclasses import replace

    from exporter.config import WebSettings
    from exporter.secret import Secret
    from exporter.wiring import Exporter

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
        e.sim.world.expire_tokens()
        r = e.start(ACME)
        assert r.status_code == 503 and "not sent" in r.json()["reason"]
        assert "admin" not in r.json()["reason"]
        assert e.starts() == 0


# -- the audit log on a full disk ------------------------------------------------------------------------

ACME_ID = stable_id("plan", "vbr01", ACME)


class FullDisk:
    """os.write for the audit log: while `refuses(data)`, a short write of half, then ENOSPC."""

    def __init__(self, refuses: Callable[[bytes], bool]) -> None:
        self.refuses = refuses
        self._half_taken = False

    def write(self, fd: int, data: Any) -> int:
        data = bytes(data)
        if self._half_taken:  # the rest of a line the disk took half of
            self._half_taken = False
            raise OSError(errno.ENOSPC, "No space left on device")
        if not self.refuses(data):
            return REAL_WRITE(fd, data)
        self._half_taken = True
        return REAL_WRITE(fd, data[: len(data) // 2])


REAL_WRITE = os.write


def lines(path: Path) -> tuple[list[dict[str, Any]], list[bytes]]:
    good, torn = [], []
    for raw in path.read_bytes().splitlines():
        if raw.strip():
            try:
                good.append(json.loads(raw))
            except ValueError:
                torn.append(raw)
    return good, torn


def test_a_start_that_cannot_be_put_on_record_is_refused_before_em(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with env(tmp_path) as e:
        monkeypatch.setattr(audit_module, "_WRITE", FullDisk(lambda data: True).write)
        r = e.start(ACME)
        assert r.status_code == 503 and r.json()["outcome"] == "audit_error"
        assert "nothing was sent" in r.json()["reason"]
        assert e.starts() == 0
        m = e.exp.scrape()
        assert value(m, "veeam_failover_audit_write_errors_total") == 2  # the start, and its refusal


def test_a_record_refused_after_em_started_holds_the_plan_until_it_is_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FullDisk(lambda data: b'"outcome":"accepted"' in data)
    with env(tmp_path, cooldown_seconds=0) as e:
        monkeypatch.setattr(audit_module, "_WRITE", disk.write)
        r = e.start(ACME, **{"Idempotency-Key": "k1"})
        assert r.status_code == 202 and r.json()["outcome"] == "accepted"  # EM started it: say so
        assert e.starts() == 1
        again = e.start(ACME, **{"Idempotency-Key": "k2"})
        assert again.status_code == 409 and "not yet on the audit log" in again.json()["reason"]
        assert e.start(ACME, **{"Idempotency-Key": "k1"}).json()["outcome"] == "duplicate"
        disk.refuses = lambda data: False  # space again
        e.start(GLOBEX, token=LIMITED_TOKEN, body={"start_now": True, "dry_run": True})
        good, torn = lines(e.audit)
        # each refused try left a cut-short line, each on a line of its own: none swallowed another
        assert torn and all(t.startswith(b'{"outcome":"accepted"') for t in torn)
        accepted = [x for x in good if x["outcome"] == "accepted"]
        assert len(accepted) == 1 and accepted[0]["idempotency_key"].endswith("|api:k1")  # nothing swallowed
        assert e.starts() == 1
    # a restart with the disk full again before "accepted" was written: the "starting" line is on disk,
    # so the plan stays started
    lines_now = e.audit.read_bytes().splitlines(keepends=True)
    e.audit.write_bytes(b"".join(x for x in lines_now if b'"outcome":"accepted"' not in x))
    with running_sim(SCENARIO) as sim:
        cfg = exporter_config(sim.url, actions=settings(tmp_path, cooldown_seconds=0))
        with running_exporter(cfg) as second:
            second.poll()
            r2 = httpx.post(
                f"{second.url}/api/v1/plans/{ACME}/start",
                json={"start_now": True},
                headers={"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "k3"},
            )
            assert r2.status_code == 409


def test_a_torn_start_line_still_holds_its_plan_after_a_restart(tmp_path: Path) -> None:
    (tmp_path / "audit.jsonl").write_bytes(
        b'{"outcome":"starting","plan_id":"' + ACME_ID.encode() + b'","request_id":"r1","idempotency'
    )
    with env(tmp_path, cooldown_seconds=0) as e:
        r = e.start(ACME)
        assert r.status_code == 409 and e.starts() == 0


def test_a_torn_start_line_naming_no_plan_holds_every_plan(tmp_path: Path) -> None:
    (tmp_path / "audit.jsonl").write_bytes(b'{"outcome":"starting","pla')
    with env(tmp_path) as e:
        r = e.start(GLOBEX, token=LIMITED_TOKEN)
        assert r.status_code == 409 and "cut short" in r.json()["reason"]
        assert e.starts() == 0


def test_a_hand_edited_time_never_lifts_a_cooldown(tmp_path: Path) -> None:
    record = {"outcome": "accepted", "plan_id": ACME_ID, "request_id": "r1", "time": "last tuesday"}
    (tmp_path / "audit.jsonl").write_text(json.dumps(record) + "\n")
    with env(tmp_path) as e:  # cooldown 3600 s
        r = e.start(ACME)
        assert r.status_code == 409 and r.json()["outcome"] == "conflict"  # the start still counts
        assert e.starts() == 0


# -- the listener under slow, oversized and many clients -------------------------------------------------


def _raw(host: str, port: int, data: bytes, wait: float = 5.0) -> bytes:
    with socket.create_connection((host, port), timeout=wait) as s:
        s.sendall(data)
        try:
            return s.recv(4096)
        except TimeoutError:
            return b""


def test_slow_oversized_and_too_many_clients_cannot_take_the_listener_down(tmp_path: Path) -> None:
    from exporter.config import WebSettings

    web = WebSettings(header_timeout_seconds=1.0, max_header_bytes=8 * 1024, max_connections=40)
    with running_sim(SCENARIO) as sim:
        cfg = exporter_config(sim.url, actions=settings(tmp_path))
        exporter = Exporter(cfg, start_poller=False)
        server = ServerThread(exporter.app, web=web).start()
        host, port = server.host, server.port
        try:
            exporter.poller.poll_once()
            # 30 half-open clients: a head that never ends, and silent connections
            slow = []
            for i in range(30):
                s = socket.create_connection((host, port), timeout=5)
                if i % 2:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                slow.append(s)
            # the probe and a start still answer while they hang
            assert httpx.get(f"http://{host}:{port}/healthz", timeout=5).status_code == 200
            r = httpx.post(
                f"http://{host}:{port}/api/v1/plans/{ACME}/start",
                json={"start_now": True, "dry_run": True},
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=5,
            )
            assert r.status_code == 200 and r.json()["outcome"] == "dry_run"
            # ...and after the head time-out every slow client is answered 408 and closed
            for s in slow:
                got = s.recv(4096)
                assert got.startswith(b"HTTP/1.1 408") or got == b"", got[:40]
                s.close()
            # an unfinished giant header is cut off at the limit, not buffered
            big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1024 * 1024)
            assert _raw(host, port, big).startswith(b"HTTP/1.1 431")
            # eight clients each trying to send an 8 MB header cost no memory to speak of
            peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
            for _ in range(8):
                with (
                    socket.create_connection((host, port), timeout=5) as s,
                    contextlib.suppress(OSError),  # the listener closes it at 8 KiB
                ):
                    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Huge: " + b"b" * (8 * 1024 * 1024))
            grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
            assert grown_mb < 40, f"peak memory grew by {grown_mb:.0f} MB"
            many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(150))
            assert _raw(host, port, many + b"\r\n").startswith(b"HTTP/1.1 431")
            # past the connection cap a new client is served: the idlest connection of the address that
            # holds most makes room
            held = [
                socket.create_connection((host, port), timeout=5, source_address=("127.0.0.2", 0))
                for _ in range(40)
            ]
            try:
                assert _raw(host, port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").startswith(
                    b"HTTP/1.1 200"
                )
            finally:
                for s in held:
                    s.close()
            time.sleep(0.2)
            assert httpx.get(f"http://{host}:{port}/healthz", timeout=5).status_code == 200
        finally:
            server.stop()


def test_x_forwarded_for_is_believed_only_from_a_configured_proxy(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        r = httpx.post(
            f"{e.exp.url}/api/v1/plans/{ACME}/start",
            json={"start_now": True, "dry_run": True},
            headers={"Authorization": f"Bearer {TOKEN}", "X-Forwarded-For": "203.0.113.66"},
        )
        assert r.status_code == 200
        assert e.lines()[-1]["remote"] == "127.0.0.1"


# -- the smaller ones -------------------------------------------------------------------------------


def test_unauthenticated_requests_are_counted_not_each_fsynced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="exporter")
    with env(tmp_path) as e:
        for _ in range(200):
            assert e.start(ACME, token="wrong-token-0123456789").status_code == 401
        assert e.lines() == []
        m = e.exp.scrape()
        assert (
            value(m, "veeam_failover_start_requests_total", plan="", source="api", outcome="unauthorized")
            == 200
        )
    said = [r for r in caplog.records if "without a valid token" in r.getMessage()]
    assert len(said) == 1


def test_the_status_page_and_every_answer_forbid_sniffing_and_scripts(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        page = httpx.get(f"{e.exp.url}/status")
        csp = page.headers["content-security-policy"]
        assert csp.startswith("default-src 'none'")
        # one script runs: the page's own (its times in the reader's zone), allowed by its hash alone
        scripts = re.findall(r"<script>(.*?)</script>", page.text, re.S)
        assert len(scripts) == 1 and page.text.count("<script") == 1
        digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
        (script_src,) = [d.strip() for d in csp.split(";") if d.strip().startswith("script-src")]
        assert script_src == f"script-src 'sha256-{digest}'"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert httpx.get(f"{e.exp.url}/metrics").headers["x-content-type-options"] == "nosniff"


def test_a_trailing_slash_with_a_foreign_host_is_no_redirect(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        r = httpx.get(f"{e.exp.url}/metrics/", headers={"Host": "evil.example"})
        assert r.status_code == 404 and "location" not in r.headers


def test_a_refusal_tells_nothing_more_of_the_plan(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        r = e.start(GLOBEX)  # the runbook caller may start ACME only
        assert r.status_code == 403 and "plan_id" not in r.json()


def test_files_open_to_others_are_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    (tmp_path / "audit.jsonl").write_text("")
    (tmp_path / "audit.jsonl").chmod(0o644)
    with env(tmp_path):
        pass
    assert any("the audit log" in r.getMessage() and "chmod 600" in r.getMessage() for r in caplog.records)
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("runbook: runbook-token-0123456789\n")
    tokens.chmod(0o644)
    build_config(
        {
            "em": {"url": "https://em:9398", "username": "u"},
            "actions": {"enabled": True, "tokens_file": str(tokens), "audit_log": str(tmp_path / "a.jsonl")},
        },
        {},
        {"VEEAM_EM_PASSWORD": "x"},
    )
    assert any("tokens_file" in r.getMessage() and "chmod 600" in r.getMessage() for r in caplog.records)


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
                return httpx.post(
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
            r = httpx.get(f"{e.exp.url}/api/v1/actions", headers={"Authorization": f"Bearer {token}"})
            return {x["caller"] for x in r.json()["actions"]}

        assert seen(LIMITED_TOKEN) == {"limited"}
        assert seen(TOKEN) == {"runbook"}
    admin = Caller("ops", Secret(admin_token), roles=("admin",))
    with env(tmp_path, callers=(*settings(tmp_path).callers, admin)) as e:
        r = httpx.get(f"{e.exp.url}/api/v1/actions", headers={"Authorization": f"Bearer {admin_token}"})
        assert {x["caller"] for x in r.json()["actions"]} == {"runbook", "limited"}


# -- the audit log's size --------------------------------------------------------------------------------


def test_the_audit_log_rotates_and_the_new_one_still_holds_the_guards(tmp_path: Path) -> None:
    with env(tmp_path, audit_log_rotate_bytes=4096) as e:
        assert e.start(ACME, **{"Idempotency-Key": "k1"}).status_code == 202
        for i in range(20):  # rehearsals until the log passes 4 KiB
            e.start(GLOBEX, token=LIMITED_TOKEN, body={"start_now": True, "dry_run": True, "reason": f"n{i}"})
        old = tmp_path / "audit.jsonl.1"
        assert old.exists() and b'"outcome":"accepted"' in old.read_bytes()
        first = json.loads(e.audit.read_text().splitlines()[0])
        assert first["outcome"] == "state" and any(k.endswith("|api:k1") for k in first["used_keys"])
    # a restart reads only the new file, and still knows the key and the start
    with env(tmp_path, audit_log_rotate_bytes=4096) as e:
        assert e.start(ACME, **{"Idempotency-Key": "k1"}).json()["outcome"] == "duplicate"
        assert e.start(ACME, **{"Idempotency-Key": "k2"}).status_code == 409  # the cooldown holds
        assert e.starts() == 0


def test_an_audit_line_is_capped_whatever_an_alert_carries(tmp_path: Path) -> None:
    huge = "p" * 250_000  # a plan label of 250 KB on a resolved alert
    with env(tmp_path) as e:
        r = e.webhook(notification(alert(huge, status="resolved", fingerprint="feed")))
        assert r.status_code == 200
        assert max(len(x) for x in e.audit.read_bytes().splitlines()) < 8 * 1024


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
                return httpx.post(
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
            r = httpx.post(
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
                httpx.post(
                    f"{exp.url}/api/v1/plans/{n}/start",
                    json={"start_now": True},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                ).json()["outcome"]
                for n in names
            ]
            assert got == ["accepted", "accepted", "conflict", "conflict"]
            assert len(sim.world.starts) == 2
