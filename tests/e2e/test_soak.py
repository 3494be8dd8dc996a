"""Soak and crash tests against the exporter as a real process.

The soak is short in CI (SOAK_SECONDS, default 40); run it longer with e.g. SOAK_SECONDS=1800.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests import plain_http
from tests.helpers import RunningSim, running_sim
from tests.procs import free_port, wait_ready

TOKEN = "soak-alertmanager-token-0123456789"
ALPHA, BETA = "Alpha failover", "Beta failover"
SCENARIO = {
    "time_scale": 60,
    "task_delay_seconds": 30,
    "plans": [
        {
            "name": ALPHA,
            "backup_server": "vbr",
            "vm_stagger_seconds": 30,
            "vms": [{"name": f"a{i}", "duration_seconds": 300} for i in range(5)],
        },
        {
            "name": BETA,
            "backup_server": "vbr",
            "start_at_seconds": 0,
            "repeat_every_seconds": 900,
            "vms": [
                {"name": f"b{i}", "duration_seconds": 240, "result": "Warning" if i == 2 else "Success"}
                for i in range(8)
            ],
        },
    ],
}


@contextmanager
def exporter_process(
    sim: RunningSim, tmp: Path, cooldown: float = 0
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    (tmp / "tokens.yaml").write_text(yaml.safe_dump({"alertmanager": TOKEN}))
    config = {
        "em": {"url": sim.url, "username": "admin", "timeout_seconds": 5},
        "poll": {"active_interval_seconds": 1, "idle_interval_seconds": 2, "max_backoff_seconds": 4},
        "listen_address": f"127.0.0.1:{port}",
        "log_level": "warning",
        "actions": {
            "enabled": True,
            "tokens_file": str(tmp / "tokens.yaml"),
            "allowed_plans": [ALPHA],
            "cooldown_seconds": cooldown,
            "audit_log": str(tmp / "audit.jsonl"),
            "task_poll_interval_seconds": 0.5,
        },
    }
    (tmp / "config.yaml").write_text(yaml.safe_dump(config))
    log = (tmp / "exporter.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "run", "--config", str(tmp / "config.yaml")],
        stdout=log,
        stderr=log,
        env={**os.environ, "VEEAM_EM_PASSWORD": "admin"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + "/readyz", proc, tmp / "exporter.log")
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
        log.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def audit(tmp: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp / "audit.jsonl").read_text().splitlines() if line.strip()]


def alert(plan: str, starts_at: str, status: str = "firing") -> dict[str, Any]:
    return {
        "version": "4",
        "status": status,
        "receiver": "runbook",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "",
        "groupKey": "x",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "SiteDown", "veeam_failover_plan": plan},
                "annotations": {},
                "startsAt": starts_at,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": f"fp-{plan[:5].lower()}",
            }
        ],
    }


def test_soak(tmp_path: Path) -> None:
    seconds = float(os.environ.get("SOAK_SECONDS", "40"))
    faults: list[dict[str, object]] = [
        {"status": 503, "remaining": 3},
        {"expire_tokens_in": 1},
        {"latency": 0.2, "jitter": 0.2},
        {"truncate": True, "remaining": 1},
        {"reset": True, "remaining": 1},
        {"unknown_enums": True, "remaining": 2},
        {},
    ]
    counts: Counter[str] = Counter()
    request_ids: list[str] = []
    rss: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()
    with running_sim(SCENARIO) as sim:
        sim.clock.now = time.time()
        sim.world.reschedule(sim.clock.now)
        with exporter_process(sim, tmp_path) as (proc, url):

            def scraper() -> None:
                with httpx.Client(timeout=10) as http:
                    while not stop.wait(0.2):
                        for path in ("/metrics", "/healthz", "/status"):
                            ok = http.get(url + path).status_code == 200
                            with lock:
                                counts["scrapes" if ok else "scrape_failures"] += 1

            def sender(seed: int) -> None:
                rnd = random.Random(seed)
                with httpx.Client(timeout=30) as http:
                    while not stop.wait(rnd.uniform(0.05, 0.3)):
                        plan = rnd.choice([ALPHA, ALPHA, BETA])
                        # the same alert again and again (retries, repeats, HA), now and then a new firing
                        starts_at = f"2026-11-26T10:{rnd.randrange(3):02d}:00Z"
                        token = TOKEN if rnd.random() > 0.1 else "wrong-token-0123456789"
                        r = http.post(
                            url + "/api/v1/alertmanager",
                            json=alert(plan, starts_at),
                            headers={"Authorization": f"Bearer {token}"},
                        )
                        body = r.json()
                        ids = [x["request_id"] for x in body.get("results", []) if "request_id" in x]
                        # requests without a valid token are counted, not written (anyone can send them)
                        if "request_id" in body and body.get("outcome") != "unauthorized":
                            ids.append(body["request_id"])
                        with lock:
                            counts["webhooks"] += 1
                            counts[f"http_{r.status_code}"] += 1
                            request_ids.extend(ids)

            threads = [threading.Thread(target=scraper, daemon=True) for _ in range(2)]
            threads += [threading.Thread(target=sender, args=(i,), daemon=True) for i in range(3)]
            for t in threads:
                t.start()
            deadline = time.monotonic() + seconds
            i = 0
            while time.monotonic() < deadline:
                sim.clock.now = time.time()
                sim.world.faults.update(faults[i % len(faults)])
                i += 1
                rss.append(rss_mb(proc.pid))
                time.sleep(1.0)
                assert proc.poll() is None, "the exporter died"
            sim.world.faults.update({})
            stop.set()
            for t in threads:
                t.join(timeout=30)
            time.sleep(1)
            m = plain_http.get(url + "/metrics").text
        # uvicorn shuts down gracefully on SIGTERM, then re-raises it: -15 is a clean stop
        assert proc.returncode in (0, -signal.SIGTERM), (tmp_path / "exporter.log").read_text()[-3000:]
        assert sim.world.logons == {}, "the exporter did not log out of EM on shutdown"
        starts = list(sim.world.starts)
    lines = audit(tmp_path)
    logged = {line.get("request_id") for line in lines}
    accepted = [line for line in lines if line["outcome"] == "accepted"]
    # a start whose answer EM lost (a reset fault) is recorded as em_unknown: it may or may not have run
    unknown = [line for line in lines if line["outcome"] == "em_unknown"]
    per_key = Counter(line["idempotency_key"] for line in accepted + unknown)
    third = max(1, len(rss) // 3)
    print(
        f"\nsoak {seconds:.0f}s: {counts['scrapes']} scrapes ({counts['scrape_failures']} failed), "
        f"{counts['webhooks']} webhook deliveries, {len(request_ids)} decisions answered, "
        f"{len(lines)} audit lines, {len(accepted)} accepted, {len(unknown)} unknown, "
        f"{len(starts)} starts at EM, "
        f"RSS {rss[0]:.0f} -> {max(rss[-third:]):.0f} MB, "
        f"statuses { {k: v for k, v in counts.items() if k.startswith('http_')} }"
    )
    assert counts["scrape_failures"] == 0 and counts["scrapes"] > 0
    assert counts["webhooks"] > 20
    assert set(request_ids) <= logged, "a decision answered over HTTP is missing from the audit log"
    assert len(accepted) <= len(starts) <= len(accepted) + len(unknown), (
        "EM got a start that the audit log does not record as accepted or possibly started"
    )
    assert all(n == 1 for n in per_key.values()), f"an alert was started twice: {per_key}"
    # one start at a time: a plan is started again only once the poller has seen the last start's session
    assert all(b.at - a.at > 1.0 for a, b in pairwise(starts)), [s.at for s in starts]
    assert {s.plan_id for s in starts} <= {sim.world.scenario.plans[0].id}  # Beta is never allowed
    assert max(rss[-third:]) <= max(rss[:third]) * 1.3 + 15, f"memory grew: {rss}"
    assert "veeam_em_up" in m


def test_kill_9_during_a_start_leaves_a_consistent_log_and_no_second_start(tmp_path: Path) -> None:
    with running_sim(SCENARIO) as sim:
        sim.clock.now = time.time()
        with exporter_process(sim, tmp_path, cooldown=3600) as (proc, url):
            sim.world.faults.update({"latency": 3.0})  # EM is slow: the start is in flight when we strike

            def deliver() -> None:
                with contextlib.suppress(httpx.HTTPError):  # the exporter dies under it: that is the point
                    plain_http.post(
                        url + "/api/v1/alertmanager",
                        json=alert(ALPHA, "2026-11-26T10:00:00Z"),
                        timeout=30,
                        headers={"Authorization": f"Bearer {TOKEN}"},
                    )

            sender = threading.Thread(target=deliver, daemon=True)
            sender.start()
            deadline = time.monotonic() + 20
            while not any(
                x["outcome"] == "starting" for x in audit(tmp_path) if (tmp_path / "audit.jsonl").exists()
            ):
                assert time.monotonic() < deadline, "no 'starting' line"
                time.sleep(0.05)
            # strike once EM has the request (the line is visible before its fsync returns and the
            # request goes out): the start is then in flight, as in the case this test is about
            while True:
                with sim.world.lock:
                    routes = list(sim.world.requests)
                if any(k.startswith("POST /api/cloud/cloudFailoverPlans/") for k in routes):
                    break
                assert time.monotonic() < deadline, "the start never reached EM"
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        time.sleep(3.5)  # EM finishes the start it was asked for
        sim.world.faults.update({})
        assert len(sim.world.starts) == 1
        with exporter_process(sim, tmp_path, cooldown=3600) as (_, url):
            again = plain_http.post(
                url + "/api/v1/alertmanager",
                json=alert(ALPHA, "2026-11-26T10:00:00Z"),
                headers={"Authorization": f"Bearer {TOKEN}"},
            ).json()
            other = plain_http.post(
                url + "/api/v1/alertmanager",
                json=alert(ALPHA, "2026-11-26T11:00:00Z"),
                headers={"Authorization": f"Bearer {TOKEN}"},
            ).json()
        assert again["results"][0]["outcome"] == "duplicate"
        assert other["results"][0]["outcome"] == "conflict"  # a start may have happened: cooldown holds
        assert len(sim.world.starts) == 1
    lines = audit(tmp_path)  # every line parses
    assert [x["outcome"] for x in lines] == ["starting", "duplicate", "conflict"]
