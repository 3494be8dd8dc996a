"""The audit log (exporter/actions/audit.py) on a real small, full disk, and held by one process only."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from exporter.wiring import Exporter
from tests import plain_http
from tests.helpers import exporter_config, running_exporter, running_sim
from tests.loopback.test_actions import ACME, SCENARIO, TOKEN, settings
from tests.procs import missing

PAGE = 4096


def start_acme(base_url: str) -> httpx.Response:
    return plain_http.post(
        f"{base_url}/api/v1/plans/{ACME}/start",
        json={"start_now": True},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )


@contextmanager
def small_disk(where: Path, size_kb: int = 256) -> Iterator[Path]:
    """A real tmpfs of `size_kb` (root only, as the whole suite runs)."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        missing(f"cannot mount a small tmpfs (not root?): {mounted.stderr.decode()[-300:]}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Take every free byte of the disk; the file that does, to free it again."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * PAGE)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def test_a_restart_on_a_full_disk_after_a_torn_write_starts_and_fails_closed(tmp_path: Path) -> None:
    """The log ends in a line cut short on a page boundary and the disk is full: ending that line needs
    a new page the disk does not have. Before the fix the exporter exited with a traceback; now it
    serves, refuses starts (503 audit_error), and starts once the disk has room."""
    with small_disk(tmp_path / "disk") as disk:
        log = disk / "audit.jsonl"
        whole = json.dumps({"outcome": "dry_run", "request_id": "r1", "plan_id": "p"}) + "\n"
        torn_start = '{"outcome":"ignored","request_id":"r2","reason":"'
        pad = 2 * PAGE - len(whole) - len(torn_start)
        log.write_text(whole + torn_start + "x" * pad)  # cut short, and exactly two pages long
        assert log.stat().st_size == 2 * PAGE
        filler = fill(disk)
        with running_sim(SCENARIO) as sim:
            config = exporter_config(sim.url, actions=settings(disk, cooldown_seconds=0))
            with running_exporter(config) as exp:  # before the fix: OSError (ENOSPC) right here
                exp.poll()
                assert plain_http.get(exp.url + "/metrics", timeout=10).status_code == 200
                h = {"Authorization": f"Bearer {TOKEN}"}
                url = f"{exp.url}/api/v1/plans/{ACME}/start"
                refused = plain_http.post(url, json={"start_now": True}, headers=h, timeout=30)
                assert refused.status_code == 503 and refused.json()["outcome"] == "audit_error"
                assert sim.world.starts == []
                filler.unlink()
                ok = plain_http.post(url, json={"start_now": True}, headers=h, timeout=30)
                assert ok.status_code == 202 and len(sim.world.starts) == 1
        lines = log.read_text().splitlines()
        assert lines[1].startswith(torn_start)  # the torn line, ended: the next record has its own
        assert [json.loads(x)["outcome"] for x in lines[2:]][:2] == ["starting", "accepted"]


def test_a_second_process_on_the_same_audit_log_does_not_enable_actions(tmp_path: Path) -> None:
    """Two exporters on one audit log could each accept the same request: the second refuses actions
    (503, saying why) and still serves its metrics."""
    with running_sim(SCENARIO) as sim:
        config = exporter_config(sim.url, actions=settings(tmp_path, cooldown_seconds=0))
        with running_exporter(config) as first:
            first.poll()
            second = Exporter(config, start_poller=False)
            try:
                assert second.actions is None
                from exporter.http.server import ServerThread

                server = ServerThread(second.app).start()
                try:
                    r = start_acme(server.url)
                    assert r.status_code == 503 and f"pid {os.getpid()}" in r.json()["error"]
                    assert "in use by another exporter process" in r.json()["error"]
                    assert plain_http.get(f"{server.url}/metrics", timeout=10).status_code == 200
                finally:
                    server.stop()
            finally:
                second.shutdown()
            # the first still starts, once
            r = start_acme(first.url)
            assert r.status_code == 202 and len(sim.world.starts) == 1
    # once the first is gone, the log is free
    again = Exporter(config, start_poller=False)
    try:
        assert again.actions is not None
    finally:
        again.shutdown()


def test_an_audit_log_that_cannot_be_opened_leaves_actions_off_and_says_why(tmp_path: Path) -> None:
    (tmp_path / "not-a-directory").write_text("")
    with running_sim(SCENARIO) as sim:
        actions = settings(tmp_path, audit_log=str(tmp_path / "not-a-directory" / "audit.jsonl"))
        with running_exporter(exporter_config(sim.url, actions=actions)) as exp:  # before: a traceback
            exp.poll()
            r = start_acme(exp.url)
            assert r.status_code == 503 and "cannot be opened" in r.json()["error"]
            assert plain_http.get(f"{exp.url}/metrics", timeout=10).status_code == 200
