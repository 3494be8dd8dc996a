"""Readiness benchmark: what reading every plan VM's newest replica point costs.

    python -m benchmarks.readiness                       # 200 plans x 50 VMs, a point every 15 min, ~5 min
    python -m benchmarks.readiness --plans 3 --vms 3 --reads 2 --interval 5    # smoke run

The simulator (EM, 50 ms a request) and the exporter run as separate processes; no failover runs. Every VM
makes a replica point every `--point-interval` seconds of wall time, their schedules spread evenly, so new
points arrive all the time; `--stopped` makes none (the cost when nothing is new). Prints a table: the first
read (time, requests), each later read's requests, requests a minute by the session polls and by the
readiness reads, and the exporter's peak RSS.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.scale import free_port, peak_rss_mb, process, simulator, table

SAMPLE = re.compile(rb"^([a-z_:]+)(\{[^}]*\})? ([0-9.e+-]+)$", re.MULTILINE)


def scenario(plans: int, vms: int, point_interval: float, retained: int, stopped: bool) -> dict[str, Any]:
    n = plans * vms
    return {
        "name": f"readiness-{plans}x{vms}",
        "point_interval_seconds": point_interval,
        "points_per_vm": retained,
        "plans": [
            {
                "name": f"Tenant {p:03d} failover",
                "tenant": f"tenant-{p:03d}",
                "backup_server": f"vbr{p % 4:02d}.example",
                "vms": [
                    {
                        "name": f"t{p:03d}-vm{v:02d}",
                        # schedules spread over the interval: points arrive evenly, as at a provider
                        "restore_point_age_seconds": round(point_interval * (p * vms + v) / n, 3),
                        **({"replication": "stopped"} if stopped else {}),
                    }
                    for v in range(vms)
                ],
            }
            for p in range(plans)
        ],
    }


def samples(url: str) -> dict[tuple[str, str], float]:
    body = httpx.get(url + "/metrics", timeout=30).content
    return {(m[0].decode(), (m[1] or b"").decode()): float(m[2]) for m in SAMPLE.findall(body)}


def total(s: dict[tuple[str, str], float], name: str, label_part: str = "") -> float:
    return sum(v for (n, labels), v in s.items() if n == name and label_part in labels)


def run(args: argparse.Namespace, sim_url: str, workdir: Path) -> dict[str, Any]:
    port = free_port()
    config = {
        "em": {"url": sim_url, "username": "admin", "timeout_seconds": 60, "page_size": args.page_size},
        "poll": {"active_interval_seconds": 5, "idle_interval_seconds": args.poll_interval},
        "readiness": {"interval_seconds": args.interval, "lag_margin_seconds": args.margin},
        "listen_address": f"127.0.0.1:{port}",
        "log_level": "warning",
    }
    (workdir / "exporter.yaml").write_text(yaml.safe_dump(config))
    url = f"http://127.0.0.1:{port}"
    out: dict[str, Any] = {"reads": []}
    with process(
        [sys.executable, "-m", "exporter", "run", "--config", str(workdir / "exporter.yaml")],
        url + "/healthz",
        {"VEEAM_EM_PASSWORD": "admin"},
    ) as proc:
        t0 = time.monotonic()
        while True:  # the first read: until every plan VM is covered
            s = samples(url)
            if total(s, "veeam_failover_readiness_complete") == 1:
                out["first_read_seconds"] = time.monotonic() - t0
                out["first_read_requests"] = total(s, "veeam_em_requests_total", "CloudVmReplicaPoint")
                break
            if time.monotonic() - t0 > 600:
                raise SystemExit("the first read did not finish in 10 minutes")
            time.sleep(0.2)
        out["vms_with_point"] = total(s, "veeam_failover_plan_vm_has_restore_point")
        start, last_read = time.monotonic(), total(s, "veeam_failover_readiness_last_read_timestamp_seconds")
        polls0 = total(s, "veeam_em_requests_total") - out["first_read_requests"]
        points0 = out["first_read_requests"]
        while len(out["reads"]) < args.reads:
            time.sleep(0.5)
            s = samples(url)
            read_at = total(s, "veeam_failover_readiness_last_read_timestamp_seconds")
            if read_at != last_read:
                last_read = read_at
                out["reads"].append(total(s, "veeam_failover_readiness_read_requests"))
        minutes = (time.monotonic() - start) / 60
        points = total(s, "veeam_em_requests_total", "CloudVmReplicaPoint") - points0
        out["readiness_per_minute"] = points / minutes
        out["polls_per_minute"] = (total(s, "veeam_em_requests_total") - points - points0 - polls0) / minutes
        out["newest"] = total(s, "veeam_failover_plan_oldest_restore_point_timestamp_seconds")
        out["rss"] = peak_rss_mb(proc.pid)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plans", type=int, default=200)
    ap.add_argument("--vms", type=int, default=50, help="VMs per plan")
    ap.add_argument("--latency", type=float, default=0.05, help="seconds EM adds to every answer")
    ap.add_argument("--point-interval", type=float, default=900, help="seconds between a VM's points")
    ap.add_argument("--retained", type=int, default=8, help="points EM keeps per VM")
    ap.add_argument("--interval", type=float, default=300, help="readiness.interval_seconds")
    ap.add_argument("--margin", type=float, default=0, help="readiness.lag_margin_seconds")
    ap.add_argument("--page-size", type=int, default=100, help="em.page_size")
    ap.add_argument("--poll-interval", type=float, default=60, help="poll.idle_interval_seconds")
    ap.add_argument("--reads", type=int, default=3, help="steady reads to watch after the first")
    ap.add_argument("--stopped", action="store_true", help="no new points (replication stopped)")
    args = ap.parse_args(argv)
    n = args.plans * args.vms
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "scenario.yaml").write_text(
            yaml.safe_dump(scenario(args.plans, args.vms, args.point_interval, args.retained, args.stopped))
        )
        with simulator(work / "scenario.yaml", args.latency) as sim_url:
            r = run(args, sim_url, work)
    reads = r["reads"]
    new_per_read = 0 if args.stopped else n * args.interval / args.point_interval
    rss = r["rss"]
    rate = "no new points" if args.stopped else f"a point every {args.point_interval:g} s a VM"
    print(
        f"readiness benchmark: {args.plans} plans x {args.vms} VMs = {n} VMs, "
        f"{n * args.retained} points in EM, {rate}, "
        f"EM latency {args.latency * 1000:g} ms, readiness.interval_seconds {args.interval:g}, "
        f"lag_margin_seconds {args.margin:g}, em.page_size {args.page_size}\n"
    )
    rows = [
        ("first read: time to cover every plan VM", f"{r['first_read_seconds']:.1f} s"),
        ("first read: requests", f"{r['first_read_requests']:.0f}"),
        ("plan VMs with a point after it", f"{r['vms_with_point']:.0f} of {n}"),
        (
            f"steady read: requests (about {new_per_read:.0f} new points a read)",
            f"median {statistics.median(reads):g}, max {max(reads):g} ({', '.join(f'{x:g}' for x in reads)})",
        ),
        ("requests a minute: readiness reads", f"{r['readiness_per_minute']:.1f}"),
        ("requests a minute: session polls", f"{r['polls_per_minute']:.1f}"),
        ("exporter peak RSS", f"{sum(rss):.0f} MB ({' + '.join(f'{x:.0f}' for x in rss)})"),
    ]
    print(table([(a, b, "") for a, b in rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
