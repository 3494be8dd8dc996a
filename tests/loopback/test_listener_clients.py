"""The listener (http/listener.py) under slow, oversized and many clients, trusted proxies, and the
smaller holes of the answers themselves (headers, redirects, refusals, warnings); over loopback HTTP."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import re
import resource
import socket
import time
from pathlib import Path

import httpx
import pytest

from exporter.config.load import build_config
from exporter.http.server import ServerThread
from exporter.wiring import Exporter
from tests import plain_http
from tests.helpers import exporter_config, running_sim, value
from tests.loopback.test_actions import (
    ACME,
    GLOBEX,
    SCENARIO,
    TOKEN,
    env,
    settings,
)


def post_start(url: str, body: bytes) -> httpx.Response:
    return plain_http.post(
        f"{url}/api/v1/plans/{ACME}/start",
        content=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        timeout=30,
    )


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
            assert plain_http.get(f"http://{host}:{port}/healthz", timeout=5).status_code == 200
            r = plain_http.post(
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
            assert plain_http.get(f"http://{host}:{port}/healthz", timeout=5).status_code == 200
        finally:
            server.stop()


def test_x_forwarded_for_is_believed_only_from_a_configured_proxy(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        r = plain_http.post(
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
        page = plain_http.get(f"{e.exp.url}/status")
        csp = page.headers["content-security-policy"]
        assert csp.startswith("default-src 'none'")
        # one script runs: the page's own (its times in the reader's zone), allowed by its hash alone
        scripts = re.findall(r"<script>(.*?)</script>", page.text, re.S)
        assert len(scripts) == 1 and page.text.count("<script") == 1
        digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
        (script_src,) = [d.strip() for d in csp.split(";") if d.strip().startswith("script-src")]
        assert script_src == f"script-src 'sha256-{digest}'"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert plain_http.get(f"{e.exp.url}/metrics").headers["x-content-type-options"] == "nosniff"


def test_a_trailing_slash_with_a_foreign_host_is_no_redirect(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        r = plain_http.get(f"{e.exp.url}/metrics/", headers={"Host": "evil.example"})
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
