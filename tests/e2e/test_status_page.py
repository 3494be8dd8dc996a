"""/status in a real browser (Debian's headless Chromium) during a simulated failover."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from tests import plain_http
from tests.helpers import exporter_config, running_exporter, running_sim

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
HOSTILE = '<script>alert("pwned")</script>&amp;'
SCENARIO = {
    "time_scale": 1,
    "plans": [
        {
            "name": "ACME full site failover",
            "tenant": "ACME",
            "backup_server": "vbr01",
            "vm_stagger_seconds": 0,
            "start_at_seconds": 0,
            "vms": [
                {"name": "acme-web01", "duration_seconds": 100},
                {
                    "name": "acme-db01",
                    "duration_seconds": 40,
                    "result": "Failed",
                    "fail_at": 0.5,
                    "restore_point_age_seconds": 7200,
                },
            ],
        },
        {
            "name": f"Evil {HOSTILE} plan",
            "tenant": f"T{HOSTILE}",
            "backup_server": "vbr01",
            "start_at_seconds": 0,
            "vms": [{"name": f"vm-{HOSTILE}", "duration_seconds": 100}],
        },
    ],
}


def chromium(*args: str, tz: str | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("chromium")
    assert exe, "chromium is missing: scripts/setup --test installs Debian's chromium"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ]
    env = None if tz is None else {**os.environ, "TZ": tz}
    return subprocess.run(
        [exe, *flags, *args], capture_output=True, text=True, timeout=60, check=False, env=env
    )


def test_status_page_in_a_browser_during_a_failover(tmp_path: Path) -> None:
    with running_sim(SCENARIO) as sim, running_exporter(exporter_config(sim.url)) as exp:
        sim.clock.advance(50)  # web01 half way, db01 failed at 20 s
        exp.poll()
        raw = plain_http.get(exp.url + "/status").text
        profile = f"--user-data-dir={tmp_path / 'profile'}"
        dom = chromium(profile, "--dump-dom", exp.url + "/status", tz="Asia/Kolkata")
        start = next(s.start for s in exp.exporter.store.current().sessions if s.plan.startswith("ACME"))
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "status.png"
        shot.unlink(missing_ok=True)
        chromium(profile, f"--screenshot={shot}", "--window-size=1280,1100", exp.url + "/status")
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = dom.stdout
    assert "<title>Veeam cloud failover status</title>" in page
    assert 'http-equiv="refresh"' in page and raw.replace("&lt;script", "").count("<script") == 1  # ours
    # times in the browser's zone (UTC+5:30 here), UTC in their tooltips
    assert start is not None
    utc = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(start))
    local = time.gmtime(start + 5.5 * 3600)
    assert f'title="{utc}"' in page and "GMT+5:30" in page
    clock = f"{local.tm_min:02d}:{local.tm_sec:02d}"  # the hour as the browser's locale writes it: 21 or 9 PM
    assert f"{local.tm_hour}:{clock}" in page or f"{local.tm_hour % 12 or 12}:{clock}" in page
    # EM-supplied strings are shown as text, never as markup
    assert '&lt;script&gt;alert("pwned")&lt;/script&gt;&amp;amp;' in page
    assert "<script>alert" not in page
    for text in (
        "ACME full site failover",
        "acme-web01",
        "acme-db01",
        "Working",
        "Failed",
        "UP",
        "2 failovers running",
        "Data-loss window",
        "2h 0m",
    ):
        assert text in page, text
    assert (
        'style="width:44%"' in page and 'style="width:50%"' in page
    )  # web01 at (50-10)/(100-10), db01 failed at 50 %
    assert "http" not in raw.replace(exp.url, "").split("<body>")[0].replace(
        "http-equiv", ""
    )  # no external assets
    assert shot.exists() and shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
