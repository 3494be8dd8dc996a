"""The audit log kept durable (actions/audit/journal.py, log.py): a full disk before and after EM was
asked, torn lines, hand-edited times, rotation and capped lines; over loopback HTTP against the simulator."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.actions.audit import log as audit_module
from exporter.simulator.scenario import stable_id
from tests import plain_http
from tests.helpers import exporter_config, running_exporter, running_sim, value
from tests.loopback.test_actions import (
    ACME,
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
    return plain_http.post(
        f"{url}/api/v1/plans/{ACME}/start",
        content=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        timeout=30,
    )


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
            r2 = plain_http.post(
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
