"""The benchmarks still run (small smoke runs; timing is the benchmarks' job, not a test's)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def run_benchmark(module: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_scale_benchmark_smoke_run() -> None:
    out = run_benchmark(
        "scale",
        "--plans",
        "3",
        "--vms",
        "3",
        "--failover-seconds",
        "6",
        "--idle-seconds",
        "3",
        "--active-interval",
        "1",
        "--idle-interval",
        "2",
        "--naive-scrapes",
        "1",
    )
    assert "scale benchmark: 3 plans x 3 VMs = 9 VMs" in out
    for row in (
        "EM requests per poll, active",
        "/metrics gzip p50 / p99",
        "freshness p50 / p99",
        "exporter peak RSS",
    ):
        assert row in out, out
    assert "n/a" not in out.split("EM requests per poll, active")[1].splitlines()[0], out


def test_freshness_benchmark_smoke_run() -> None:
    out = run_benchmark(
        "freshness",
        "--plans",
        "2",
        "--vms",
        "2",
        "--compress",
        "120",
        "--minutes",
        "30",
        "--failover-minutes",
        "10",
        "--cases",
        "off,exporter",
    )
    rows = [line for line in out.splitlines() if line.startswith("| ") and " of 4 |" in line]
    assert len(rows) == 2, out
    assert "| 4 of 4 |" in rows[0] and "none" in rows[0]
    assert "finished on 2 servers" in rows[1], rows[1]


def test_readiness_benchmark_smoke_run() -> None:
    out = run_benchmark(
        "readiness", "--plans", "3", "--vms", "3", "--reads", "2", "--interval", "5", "--poll-interval", "5"
    )
    assert "9 VMs, 72 points in EM" in out, out
    assert "plan VMs with a point after it" in out and "9 of 9" in out, out
    # nothing new between two reads five seconds apart (a point every 15 minutes a VM): one request
    assert "median 1, max 1" in out, out
