"""The scale benchmark still runs (a small smoke run; timing is the benchmark's job, not a test's)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_scale_benchmark_smoke_run() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.scale",
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
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
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
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.freshness",
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
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and " of 4 |" in line]
    assert len(rows) == 2, proc.stdout
    assert "| 4 of 4 |" in rows[0] and "none" in rows[0]
    assert "finished on 2 servers" in rows[1], rows[1]
