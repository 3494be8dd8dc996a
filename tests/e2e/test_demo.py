"""The README's run command: `veeam-failover-exporter demo`, as a real process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import httpx

from tests import plain_http
from tests.helpers import Samples, page_form_fields, parse_samples, series, value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, check: Callable[[Samples], bool], timeout: float) -> Samples:
    deadline = time.monotonic() + timeout
    last: Samples = {}
    while time.monotonic() < deadline:
        try:
            last = parse_samples(plain_http.get(url, timeout=2).text)
            if check(last):
                return last
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout}s; last scrape had {len(last)} samples")


def test_demo_shows_a_failover_progressing_to_its_results() -> None:
    port = free_port()
    # 600x: the demo's 20-minute failovers take about 2.5 s of wall time
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "demo",
            "--listen-address",
            f"127.0.0.1:{port}",
            "--time-scale",
            "600",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        acme = {"backup_server": "vbr01.example.local", "plan": "ACME full site failover"}
        globex = {"backup_server": "vbr02.example.local", "plan": "Globex DR plan"}
        first = wait_for(url, lambda m: value(m, "veeam_em_up") == 1, 20)
        working = wait_for(
            url,
            lambda m: (
                value(m, "veeam_failover_session_state", **acme, state="Working") == 1
                and any(0 < v < 1 for v in series(m, "veeam_failover_vm_progress_ratio").values())
            ),
            20,
        )
        done = wait_for(
            url,
            lambda m: (
                value(m, "veeam_failover_session_result", **acme, result="Warning") == 1
                and value(m, "veeam_failover_session_result", **globex, result="Failed") == 1
            ),
            30,
        )
        assert value(done, "veeam_failover_vm_result", **globex, vm="globex-app02", result="Failed") == 1
        assert value(done, "veeam_failover_vm_result", **acme, vm="acme-web01", result="Warning") == 1
        assert len(series(working, "veeam_failover_vm_state")) >= 4
        polls = "veeam_em_requests_total"
        ep = {"endpoint": "/api/query?type=CloudFailoverSession", "code": "200"}
        assert (value(done, polls, **ep) or 0) > (value(first, polls, **ep) or 0)  # the counters move
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert f"Metrics:                      http://127.0.0.1:{port}/metrics" in out
    assert "logged out of EM" in out


def test_demo_with_actions_walks_the_approval_flow_as_a_dry_run() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "demo", "--actions", "--listen-address", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        printed: dict[str, str] = {}
        printed_lines: list[str] = []
        for line in proc.stdout:
            printed_lines.append(line)
            for who in ("requester", "approver"):
                if line.strip().startswith(f"{who} token:"):
                    printed[who] = line.split(":", 1)[1].split()[0]
            if "Press Ctrl-C" in line:
                break
        url = f"http://127.0.0.1:{port}"
        wait_for(url + "/metrics", lambda m: value(m, "veeam_em_up") == 1, 20)
        asked = plain_http.post(
            f"{url}/api/v1/plans/Initech failover/start",  # the plan the demo does not start itself
            json={"start_now": True},
            headers={"Authorization": f"Bearer {printed['requester']}"},
            timeout=10,
        )
        assert asked.status_code == 202 and asked.json()["outcome"] == "pending", asked.text
        did = asked.json()["request_id"]
        assert f"/status/decisions/{did}" in plain_http.get(url + "/status", timeout=10).text
        page = plain_http.get(f"{url}/status/decisions/{did}", timeout=10).text
        assert "Approving it now: <b class=''>a dry run" in page  # what approving does now, said plainly
        approved = plain_http.post(
            f"{url}/api/v1/decisions/{did}/approve",
            content=f"token={printed['approver']}&{page_form_fields(page)}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=10,
        )
        assert approved.status_code == 200 and "dry run, nothing was sent to EM" in approved.text
        # /metrics serves the last finished rendering (at most one behind): the verdict shows within one
        approved_verdicts = {"plan": "Initech failover", "verdict": "approved"}
        m = wait_for(
            url + "/metrics",
            lambda m: value(m, "veeam_failover_decisions_total", **approved_verdicts) == 1,
            10,
        )
        assert value(m, "veeam_failover_dry_run") == 1
        assert value(m, "veeam_failover_decisions_total", **approved_verdicts) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert proc.returncode == 0
