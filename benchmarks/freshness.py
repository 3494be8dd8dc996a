"""Freshness against EM's collection lag: how long after a VM's failover really ended (on the backup
server) its end reaches /metrics, without and with `poll.collect`.

    python -m benchmarks.freshness                  # 200 plans x 50 VMs, about 8 minutes
    python -m benchmarks.freshness --plans 3 --vms 3 --compress 60 --minutes 40   # smoke run

The simulated EM shows each backup server as it last collected it: every 15 minutes (its own schedule),
a collection taking 20 s, and at once when asked. Everything runs `--compress` times faster than real
time (the simulator's time scale, and the exporter's poll and collect intervals divided alike); the
figures are given back in real-time seconds (measured wall seconds x compress), so the exporter's own
work counts that many times over: the figures are pessimistic, never flattering.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.scale import END_RE, free_port, pct, process, scenario, simulator

REAL_COLLECTION_INTERVAL = 900.0  # EM's documented default
REAL_COLLECTION_SECONDS = 20.0
REAL_POLL_INTERVAL = 10.0
REAL_COLLECT_INTERVAL = 60.0


def serve_exporter(config_path: str, compress: float) -> None:
    """The exporter, its intervals compressed like the simulator's clock (below the loader's minimums,
    which guard real EMs)."""
    import uvicorn

    from exporter.config.load import load_config
    from exporter.http.listener import uvicorn_config
    from exporter.wiring import Exporter

    config = load_config(config_path, {})
    poll = dataclasses.replace(
        config.poll,
        active_interval_seconds=REAL_POLL_INTERVAL / compress,
        idle_interval_seconds=REAL_POLL_INTERVAL / compress,
        collect=dataclasses.replace(
            config.poll.collect,
            interval_seconds=REAL_COLLECT_INTERVAL / compress,
            timeout_seconds=600 / compress,
            after_start_seconds=1800 / compress,
        ),
    )
    config = dataclasses.replace(config, poll=poll)
    exporter = Exporter(config)
    host, port = config.listen_host_port
    uvicorn.Server(uvicorn_config(exporter.app, host, port, config.web)).run()


TOKEN = "freshness-benchmark-token-0123456789"  # noqa: S105 - a local benchmark


def measure(
    sim_url: str, workdir: Path, collect: bool, by_exporter: bool, args: argparse.Namespace
) -> dict[str, Any]:
    port = free_port()
    config: dict[str, Any] = {
        "em": {
            "url": sim_url,
            "username": "admin",
            "timeout_seconds": 60,
            "max_body_bytes": 512 * 1024 * 1024,
        },
        "poll": {"collect": {"enabled": collect}},
        "listen_address": f"127.0.0.1:{port}",
        "log_level": "warning",
    }
    plans = [f"Tenant {p:03d} failover" for p in range(args.plans)]
    if by_exporter:  # the runbook starts every plan through the guarded start
        (workdir / "tokens.yaml").write_text(yaml.safe_dump({"runbook": TOKEN}))
        config["actions"] = {
            "enabled": True,
            "tokens_file": str(workdir / "tokens.yaml"),
            "allowed_plans": plans,
            "audit_log": str(workdir / "audit.jsonl"),
            "max_starts_per_hour": len(plans),
            "task_poll_interval_seconds": 60,
        }
    path = workdir / f"exporter-{collect}.yaml"
    path.write_text(yaml.safe_dump(config))
    seen: dict[bytes, float] = {}
    lag: list[float] = []
    url = f"http://127.0.0.1:{port}"
    with process(
        [
            sys.executable,
            "-m",
            "benchmarks.freshness",
            "--serve",
            str(path),
            "--compress",
            str(args.compress),
        ],
        url + "/healthz",
        {"VEEAM_EM_PASSWORD": "admin"},
    ):
        stop = threading.Event()
        deadline = time.monotonic() + args.minutes * 60 / args.compress
        with httpx.Client(timeout=60) as http:
            if by_exporter:
                time.sleep(60 / args.compress)  # a minute in, as the scenario's own starts
                for name in plans:
                    r = http.post(
                        f"{url}/api/v1/plans/{name}/start",
                        json={"start_now": True},
                        headers={"Authorization": f"Bearer {TOKEN}"},
                    )
                    assert r.status_code == 202, r.text
            while time.monotonic() < deadline and not stop.is_set():
                body = http.get(url + "/metrics", headers={"Accept-Encoding": "gzip"}).content  # unpacked
                now = time.time()
                for labels, value in END_RE.findall(body):
                    if labels not in seen:
                        seen[labels] = float(value)
                        lag.append((now - float(value)) * args.compress)
                time.sleep(0.1)
            metrics = http.get(url + "/metrics").text
    collections = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("veeam_em_collections_total{") and 'outcome="finished"' in line
    ]
    return {"lag": lag, "ended": len(seen), "collections": sum(collections), "servers": len(collections)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plans", type=int, default=200)
    ap.add_argument("--vms", type=int, default=50, help="VMs per plan")
    ap.add_argument("--compress", type=float, default=10.0, help="run this many times faster than real time")
    ap.add_argument("--minutes", type=float, default=35.0, help="real-time minutes to watch each run")
    ap.add_argument("--failover-minutes", type=float, default=20.0, help="how long the failovers run")
    ap.add_argument("--latency", type=float, default=0.05, help="seconds EM adds to every answer")
    ap.add_argument(
        "--cases",
        default="off,outside,exporter",
        help="which runs: off (no poll.collect), outside (collect; failovers started outside the exporter), "
        "exporter (collect; failovers started through the exporter)",
    )
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve_exporter(args.serve, args.compress)
        return 0

    rows = []
    cases = {"off": (False, False), "outside": (True, False), "exporter": (True, True)}
    for collect, by_exporter in (cases[c] for c in args.cases.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            # scale.scenario() makes failovers of failover_seconds x its time scale (10) scenario seconds
            plan = scenario(args.plans, args.vms, args.failover_minutes * 60 / 10)
            plan.update(
                time_scale=args.compress,
                collection_interval_seconds=REAL_COLLECTION_INTERVAL,
                collection_duration_seconds=REAL_COLLECTION_SECONDS,
            )
            for p in plan["plans"]:  # the failovers start a minute in: after EM's first collection
                if by_exporter:
                    del p["start_at_seconds"]
                else:
                    p["start_at_seconds"] = 60
            (workdir / "scenario.yaml").write_text(yaml.safe_dump(plan))
            with simulator(workdir / "scenario.yaml", args.latency) as sim_url:
                result = measure(sim_url, workdir, collect, by_exporter, args)
        rows.append((collect, by_exporter, result))

    vms = args.plans * args.vms
    print(
        f"freshness benchmark: {args.plans} plans x {args.vms} VMs = {vms} VMs; EM collects every "
        f"{REAL_COLLECTION_INTERVAL / 60:.0f} min ({REAL_COLLECTION_SECONDS:.0f} s a collection); "
        f"poll every {REAL_POLL_INTERVAL:.0f} s; run {args.compress:g}x faster than real time"
    )
    print(
        "| failovers started | poll.collect | VMs whose end was seen | VM end -> /metrics p50 / p99 / max "
        "| collections asked |"
    )
    print("|---|---|---|---|---|")
    for collect, by_exporter, r in rows:
        lag = r["lag"]
        asked = "none"
        if collect and r["servers"]:
            most = args.minutes * 60 / REAL_COLLECT_INTERVAL  # one per interval for the whole run
            asked = (
                f"{r['collections']:.0f} finished on {r['servers']} servers "
                f"(one per server per interval would allow {most:.0f} each)"
            )
        label = f"on, every {REAL_COLLECT_INTERVAL:.0f} s" if collect else "off (EM's schedule only)"
        started = "through the exporter" if by_exporter else "outside it (EM, the tenant)"
        print(
            f"| {started} | {label} | {r['ended']} of {vms} | {pct(lag, 50):.0f} s / {pct(lag, 99):.0f} s / "
            f"{max(lag, default=float('nan')):.0f} s | {asked} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
