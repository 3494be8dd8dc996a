"""What approving a pending decision does now (exporter/actions/decision_preview.py): the page and the API
say it, an approval names it, and a changed mode, plan or answer refuses the approval."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from exporter.actions.audit import log as audit
from tests import plain_http
from tests.helpers import page_form_fields
from tests.loopback.test_actions import ACME, GLOBEX
from tests.loopback.test_approval import ADMIN, APPROVER, env


def test_an_approval_for_a_dry_run_never_starts_a_real_failover(tmp_path: Path) -> None:
    """Dry run on at the request, off at the approval: the page says what approving does now, and an
    approval of what the approver saw before (a dry run) is refused; nothing reaches EM."""
    with env(tmp_path) as e:
        assert e.switches(ADMIN, dry_run=True, reason="rehearsal").status_code == 200
        did = e.start(ACME).json()["request_id"]
        before = e.get("/api/v1/decisions", APPROVER).json()["decisions"][0]["now"]
        page = plain_http.get(f"{e.exp.url}/status/decisions/{did}", timeout=10).text
        assert before["mode"] == "dry_run" and "Approve: dry run only" in page
        seen = page_form_fields(page)

        assert e.switches(ADMIN, dry_run=False, reason="rehearsal over").status_code == 200
        now = e.get("/api/v1/decisions", APPROVER).json()["decisions"][0]["now"]
        assert now["mode"] == "start" and now["fingerprint"] != before["fingerprint"]
        page = plain_http.get(f"{e.exp.url}/status/decisions/{did}", timeout=10).text
        assert "a real failover start" in page and "dry run (nothing" not in page
        assert "Approve: start the failover" in page

        # the approver approves what it saw: a dry run. Refused, with the new facts; nothing started
        stale = e.verdict(did, "approve", APPROVER, mode=before["mode"], fingerprint=before["fingerprint"])
        assert stale.status_code == 409 and stale.json()["now"]["mode"] == "start", stale.text
        assert "changed since you looked" in stale.json()["reason"] and e.starts() == []
        # the same from the page's form
        form = plain_http.post(
            f"{e.exp.url}/api/v1/decisions/{did}/approve",
            content=f"token={APPROVER}&{seen}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=10,
        )
        assert form.status_code == 409 and "a real failover start" in form.text and e.starts() == []
        # an approval that names nothing is refused too
        bare = e.verdict(did, "approve", APPROVER, mode=None, fingerprint=None, reason="yes")
        assert bare.status_code == 400 and "names what it approves" in bare.json()["reason"]
        # approving what holds now starts it, once
        ok = e.verdict(did, "approve", APPROVER, mode=now["mode"], fingerprint=now["fingerprint"])
        assert ok.status_code == 202 and ok.json()["outcome"] == "accepted"
        assert len(e.starts()) == 1


def test_a_decision_for_a_plan_that_ran_meanwhile_cannot_be_approved(tmp_path: Path) -> None:
    """A session of the plan began after the request (started in the VBR console, say): approving would
    start it again. The checks say so, the approval is refused, EM hears nothing from us."""
    with env(tmp_path) as e:
        did = e.start(ACME).json()["request_id"]
        e.sim.clock.advance(5)
        e.sim.world.add_session(ACME, e.sim.clock() - 1)  # started by another path
        e.sim.clock.advance(600)  # ...and finished: no session is running
        e.exp.poll()
        now = e.get("/api/v1/decisions", APPROVER).json()["decisions"][0]["now"]
        assert "began after this request" in now["checks"]
        refused = e.verdict(did, "approve", APPROVER, mode=now["mode"], fingerprint=now["fingerprint"])
        assert refused.status_code == 409 and "began after this request" in refused.json()["reason"]
        assert e.starts() == []


def test_no_verdict_is_answered_before_it_is_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rejection on a full disk is a 503 and the decision still waits (and still blocks its plan);
    after a restart it is still pending, not silently gone. Before the fix: 200, and lost."""

    def full(fd: int, data: memoryview) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    with env(tmp_path) as e:
        did = e.start(ACME).json()["request_id"]
        monkeypatch.setattr(audit, "_WRITE", full)
        rejected = e.verdict(did, "reject", APPROVER, reason="not today")
        assert rejected.status_code == 503 and rejected.json()["outcome"] == "audit_error"
        assert [d["request_id"] for d in e.get("/api/v1/decisions", APPROVER).json()["decisions"]] == [did]
        assert e.start(ACME).status_code == 409 and e.starts() == []  # the decision blocks its plan
        # a new pending decision is not answered either while it cannot be put on record
        assert e.start(GLOBEX).status_code == 503
        monkeypatch.undo()
    with env(tmp_path) as e:  # a restart on the same audit log
        listed = e.get("/api/v1/decisions", APPROVER).json()["decisions"]
        assert [d["request_id"] for d in listed] == [did]  # ACME's still waits; GLOBEX's was never made
        assert e.verdict(did, "reject", APPROVER, reason="not today").status_code == 200
