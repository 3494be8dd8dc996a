"""Approval mode, runtime switches and announcements, over loopback HTTP against the simulator."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.config import ActionSettings, Caller, NotificationTarget
from exporter.secret import Secret
from tests import plain_http
from tests.helpers import (
    RunningExporter,
    RunningSim,
    exporter_config,
    page_form_fields,
    running_exporter,
    running_sim,
    value,
    what_approving_does,
)
from tests.loopback.test_actions import ACME, AM_TOKEN, GLOBEX, SCENARIO, alert, notification, wait_until
from tests.receiver import running_receiver

STARTER = "starter-token-0123456789"
APPROVER = "approver-token-0123456789"
ADMIN = "admin-token-0123456789abc"
VIEWER = "viewer-token-0123456789ab"
BOTH = "both-roles-token-0123456789"


def settings(tmp: Path, **kw: Any) -> ActionSettings:
    base = ActionSettings(
        enabled=True,
        callers=(
            Caller("runbook", Secret(STARTER)),
            Caller("alertmanager", Secret(AM_TOKEN)),
            Caller("oncall", Secret(APPROVER), roles=("approver",)),
            Caller("lead", Secret(ADMIN), roles=("admin",)),
            Caller("ro", Secret(VIEWER), roles=("viewer",)),
            Caller("solo", Secret(BOTH), roles=("starter", "approver")),
        ),
        allowed_plans=(ACME, GLOBEX),
        audit_log=str(tmp / "audit.jsonl"),
        task_poll_interval_seconds=0.05,
        approval="required",
        cooldown_seconds=0,
    )
    return replace(base, **kw)


class Env:
    def __init__(self, sim: RunningSim, exp: RunningExporter, audit: Path) -> None:
        self.sim, self.exp, self.audit = sim, exp, audit

    def start(self, plan: str, token: str = STARTER, **body: Any) -> httpx.Response:
        return plain_http.post(
            f"{self.exp.url}/api/v1/plans/{plan}/start",
            headers={"Authorization": f"Bearer {token}"},
            json={"start_now": True, **body},
            timeout=30,
        )

    def verdict(self, did: str, verb: str, token: str, **body: Any) -> httpx.Response:
        """An approval names what the approver saw (unless the test gives it, or none)."""
        if verb == "approve" and not body:
            body = what_approving_does(self.exp.url, did, APPROVER)
        body = {k: v for k, v in body.items() if v is not None}
        return plain_http.post(
            f"{self.exp.url}/api/v1/decisions/{did}/{verb}",
            headers={"Authorization": f"Bearer {token}"},
            json=body or None,
            timeout=30,
        )

    def get(self, path: str, token: str) -> httpx.Response:
        return plain_http.get(
            f"{self.exp.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def switches(self, token: str, **body: Any) -> httpx.Response:
        return plain_http.put(
            f"{self.exp.url}/api/v1/switches",
            headers={"Authorization": f"Bearer {token}"},
            json=body,
            timeout=10,
        )

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.audit.read_text().splitlines()] if self.audit.exists() else []

    def outcomes(self) -> list[str]:
        return [x["outcome"] for x in self.lines()]

    def starts(self) -> list[str]:
        return [s.plan_id for s in self.sim.world.starts]


@contextmanager
def env(tmp_path: Path, sim: RunningSim | None = None, **kw: Any) -> Iterator[Env]:
    with running_sim(SCENARIO) if sim is None else _given(sim) as s:  # noqa: SIM117 - s names the sim
        with running_exporter(exporter_config(s.url, actions=settings(tmp_path, **kw))) as exp:
            exp.poll()
            yield Env(s, exp, tmp_path / "audit.jsonl")


@contextmanager
def _given(sim: RunningSim) -> Iterator[RunningSim]:
    yield sim


def test_a_start_waits_for_a_second_person_then_starts_once(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        r = e.start(ACME, reason="site down, confirmed by phone")
        assert r.status_code == 202, r.text
        did = r.json()["request_id"]
        assert r.json()["outcome"] == "pending" and r.json()["decision"] == f"/api/v1/decisions/{did}"
        assert e.starts() == []  # nothing reaches EM before an approver says yes
        listed = e.get("/api/v1/decisions", APPROVER).json()["decisions"]
        assert [(d["request_id"], d["plan"], d["caller"], d["reason_given"]) for d in listed] == [
            (did, ACME, "runbook", "site down, confirmed by phone")
        ]
        m = e.exp.scrape()
        assert value(m, "veeam_failover_decisions_pending", plan=ACME) == 1

        # the requester cannot approve its own request, even with the approver role
        solo = e.start(GLOBEX, token=BOTH)
        own = e.verdict(solo.json()["request_id"], "approve", BOTH)
        assert own.status_code == 403 and "two-person rule" in own.json()["reason"]
        # a starter is no approver; a viewer neither
        assert e.verdict(did, "approve", STARTER).status_code == 403
        assert e.verdict(did, "approve", VIEWER).status_code == 403
        assert e.starts() == []

        ok = e.verdict(did, "approve", APPROVER)
        assert ok.status_code == 202, ok.text
        assert (ok.json()["outcome"], ok.json()["approver"]) == ("accepted", "oncall")
        assert e.starts() == [e.sim.world.scenario.plans[0].id]  # exactly one start, ACME's
        # approving again (or another approver racing) starts nothing more
        again = e.verdict(did, "approve", APPROVER)
        assert again.status_code == 404 and e.starts() == [e.sim.world.scenario.plans[0].id]
        e.sim.clock.advance(2)  # the EM task finishes
        wait_until(lambda: "task_finished" in e.outcomes(), 15)
        accepted = next(x for x in e.lines() if x["outcome"] == "accepted")
        assert (accepted["request_id"], accepted["caller"], accepted["approver"]) == (
            did,
            "runbook",
            "oncall",
        )
        assert (
            e.outcomes().index("approved") < e.outcomes().index("starting") < e.outcomes().index("accepted")
        )
        m = e.exp.scrape()
        assert value(m, "veeam_failover_decisions_total", plan=ACME, verdict="approved") == 1
        assert value(m, "veeam_failover_decisions_pending", plan=ACME) is None
        assert value(m, "veeam_failover_decisions_pending", plan=GLOBEX) == 1  # solo's still waits
        assert (
            value(m, "veeam_failover_start_requests_total", plan=ACME, source="api", outcome="accepted") == 1
        )


def test_a_waiting_plan_takes_no_second_request_and_a_resent_alert_is_a_duplicate(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        first = e.start(ACME)
        assert first.status_code == 202
        second = e.start(ACME, token=BOTH)
        assert second.status_code == 409 and first.json()["request_id"] in second.json()["reason"]
        payload = notification(alert(GLOBEX))

        def hook() -> httpx.Response:
            auth = {"Authorization": f"Bearer {AM_TOKEN}"}
            return plain_http.post(f"{e.exp.url}/api/v1/alertmanager", json=payload, headers=auth)

        assert hook().json()["results"][0]["outcome"] == "pending"
        assert hook().json()["results"][0]["outcome"] == "duplicate"  # Alertmanager's re-send
        pending = e.get("/api/v1/decisions", VIEWER).json()["decisions"]
        assert sorted(d["plan"] for d in pending) == [ACME, GLOBEX]
        am = next(d for d in pending if d["plan"] == GLOBEX)
        assert am["alert"]["alertname"] == "VeeamSiteDown" and am["source"] == "alertmanager"
        # a starter sees only its own
        assert [d["plan"] for d in e.get("/api/v1/decisions", STARTER).json()["decisions"]] == [ACME]
        assert e.starts() == []


def test_rejected_and_expired_decisions_start_nothing(tmp_path: Path) -> None:
    with env(tmp_path, approval_timeout_seconds=1.5) as e:
        rejected = e.start(ACME).json()["request_id"]
        r = e.verdict(rejected, "reject", APPROVER, reason="site is back")
        assert r.status_code == 200 and r.json()["outcome"] == "rejected"
        expiring = e.start(GLOBEX).json()["request_id"]
        wait_until(lambda: "expired" in e.outcomes(), 10)
        late = e.verdict(expiring, "approve", APPROVER)
        assert late.status_code in (404, 409) and e.starts() == []
        assert e.verdict(rejected, "approve", APPROVER).status_code == 404
        by_outcome = {x["outcome"]: x for x in e.lines()}
        assert (by_outcome["rejected"]["approver"], by_outcome["rejected"]["reason"]) == (
            "oncall",
            "site is back",
        )
        assert by_outcome["expired"]["request_id"] == expiring and by_outcome["expired"]["plan"] == GLOBEX
        m = e.exp.scrape()
        assert value(m, "veeam_failover_decisions_total", plan=ACME, verdict="rejected") == 1
        assert value(m, "veeam_failover_decisions_total", plan=GLOBEX, verdict="expired") == 1
        # once decided, the plan takes a new request again
        assert e.start(ACME).status_code == 202


def test_pending_decisions_survive_a_restart_and_the_guards_are_checked_again(tmp_path: Path) -> None:
    with running_sim(SCENARIO) as sim:
        with env(tmp_path, sim) as e:
            did = e.start(ACME).json()["request_id"]
            # the kill switch, flipped on meanwhile, refuses the approval and the decision waits on
            assert e.switches(ADMIN, kill_switch=True, reason="drill").status_code == 200
            refused = e.verdict(did, "approve", APPROVER)
            assert refused.status_code == 403 and "kill switch" in refused.json()["reason"]
        with env(tmp_path, sim) as e:  # a restart: the decision and the switch are both still there
            assert [d["request_id"] for d in e.get("/api/v1/decisions", APPROVER).json()["decisions"]] == [
                did
            ]
            assert e.get("/api/v1/switches", VIEWER).json()["kill_switch"] is True
            assert e.switches(ADMIN, kill_switch=False).status_code == 200
            ok = e.verdict(did, "approve", APPROVER)
            assert ok.status_code == 202 and ok.json()["outcome"] == "accepted"
            assert e.starts() == [sim.world.scenario.plans[0].id]


def test_runtime_kill_switch_admin_only_survives_restart_and_config_change_wins(tmp_path: Path) -> None:
    with running_sim(SCENARIO) as sim:
        with env(tmp_path, sim, approval="none") as e:
            for token in (STARTER, APPROVER, VIEWER):
                assert e.switches(token, kill_switch=True).status_code == 403
            assert e.switches(ADMIN, kill_swich=True).status_code == 400  # a typo changes nothing
            assert e.switches(ADMIN, kill_switch="yes").status_code == 400
            on = e.switches(ADMIN, kill_switch=True, reason="provider uplink flapping")
            assert on.json() | {"set_at": None} == {
                "kill_switch": True,
                "dry_run": False,
                "source": "runtime",
                "set_by": "lead",
                "set_at": None,
                "reason": "provider uplink flapping",
            }
            assert e.start(ACME).status_code == 403 and e.starts() == []
            assert value(e.exp.scrape(), "veeam_failover_kill_switch") == 1
        with env(tmp_path, sim, approval="none") as e:
            assert e.start(ACME).status_code == 403  # still on after a restart
            assert value(e.exp.scrape(), "veeam_failover_kill_switch") == 1
            assert e.switches(ADMIN, kill_switch=False).status_code == 200
            assert e.start(ACME).status_code == 202 and len(e.starts()) == 1
            assert e.switches(ADMIN, dry_run=True).json()["dry_run"] is True
            assert e.start(GLOBEX).json()["outcome"] == "dry_run" and len(e.starts()) == 1
        # the config changed the kill switch since: for that key the config is newer, it wins; the runtime
        # dry run (a key the config did not change) still holds
        with env(tmp_path, sim, approval="none", kill_switch=True) as e:
            now = e.get("/api/v1/switches", VIEWER).json()
            assert (now["kill_switch"], now["dry_run"], now["set_by"]) == (True, True, "lead")
            assert e.start(GLOBEX).status_code == 403
        # three set at run time, one written at the start that says the config changed the kill switch
        assert [x["outcome"] for x in e.lines()].count("switches") == 4
        assert len(sim.world.starts) == 1


def test_approval_from_the_decision_page_form(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        did = e.start(ACME).json()["request_id"]
        status = plain_http.get(f"{e.exp.url}/status", timeout=10).text
        assert f"/status/decisions/{did}" in status and "Waiting for approval" in status
        page = plain_http.get(f"{e.exp.url}/status/decisions/{did}", timeout=10)
        assert page.status_code == 200 and "form-action 'self'" in page.headers["content-security-policy"]
        assert f"action='/api/v1/decisions/{did}/approve'" in page.text and "type='password'" in page.text
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        url = f"{e.exp.url}/api/v1/decisions/{did}/approve"
        # another site's page posting the form for a logged-in approver: refused, whatever it sends
        evil = plain_http.post(
            url, content=f"token={APPROVER}", headers={**form, "Origin": "https://evil.example"}
        )
        assert evil.status_code == 403 and e.starts() == []
        wrong = plain_http.post(url, content="token=guess", headers=form)
        assert wrong.status_code == 401 and "text/html" in wrong.headers["content-type"]
        own = plain_http.post(url, content=f"token={STARTER}", headers=form)
        assert own.status_code == 403 and "two-person rule" in own.text
        host = e.exp.url.split("//")[1]
        seen = page_form_fields(page.text)
        ok = plain_http.post(
            url, content=f"token={APPROVER}&reason=ok&{seen}", headers={**form, "Origin": f"http://{host}"}
        )
        assert ok.status_code == 202 and "Enterprise Manager accepted the start" in ok.text
        assert len(e.starts()) == 1 and APPROVER not in ok.text
        approved = next(x for x in e.lines() if x["outcome"] == "approved")
        assert (approved["approver"], approved["reason"], approved["caller"]) == ("oncall", "ok", "runbook")
        # the guessed token is counted like any request without a valid token
        m = e.exp.scrape()
        assert (
            value(m, "veeam_failover_start_requests_total", plan="", source="api", outcome="unauthorized")
            == 1
        )


def test_every_decision_is_announced_with_retries(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """(That a webhook's URL never reaches a log line is shown with the real process, in
    test_listener.py's test_no_secret_in_any_output.)"""
    with (
        running_receiver(fail_first=2) as generic,
        running_receiver(path="/services/T000/B000/slack-secret-part") as slack,
        running_receiver(fail_first=1000, fail_status=400) as broken,
    ):
        targets = (
            NotificationTarget("generic", Secret(generic.url), retry_base_seconds=0.05),
            NotificationTarget("slack", Secret(slack.url), format="slack", events=("pending", "accepted")),
            NotificationTarget("broken", Secret(broken.url), retry_base_seconds=0.05),
        )
        caplog.set_level(logging.DEBUG)
        with env(tmp_path, notifications=targets, external_url="https://veeam.example") as e:
            did = e.start(ACME).json()["request_id"]
            e.verdict(did, "approve", APPROVER)
            rehearsal = e.start(GLOBEX, dry_run=True).json()["request_id"]  # a rehearsal waits too
            assert e.verdict(rehearsal, "approve", APPROVER).json()["outcome"] == "dry_run"
            e.verdict(e.start(GLOBEX).json()["request_id"], "reject", APPROVER)
            wait_until(lambda: len(generic.received) >= 8 and len(slack.received) >= 4, 15)
            wait_until(
                lambda: (
                    value(
                        e.exp.scrape(),
                        "veeam_failover_notifications_total",
                        receiver="broken",
                        result="failed",
                    )
                    == 8
                ),
                15,
            )
            m = e.exp.scrape()
        events = ["pending", "approved", "accepted", "pending", "approved", "dry_run", "pending", "rejected"]
        assert generic.events() == events
        assert generic.attempts == len(generic.received) + 2  # the first two failed, and were retried
        first = generic.received[0]
        assert (first["plan"], first["caller"], first["links"]["decision"]) == (
            ACME,
            "runbook",
            f"https://veeam.example/status/decisions/{did}",
        )
        assert "idempotency_key" not in first and "remote" not in first
        texts = [m["text"] for m in slack.received]
        assert "waits for approval" in texts[0] and ACME in texts[0] and "approve or reject" in texts[0]
        assert any("EM accepted the start" in t for t in texts)
        assert len(slack.received) == 4  # only the events it asked for: three pending, one accepted
        assert broken.attempts == 8  # a 400 is final: one attempt an event, not five
        assert value(m, "veeam_failover_notifications_total", receiver="generic", result="sent") == len(
            generic.received
        )
        assert value(m, "veeam_failover_notifications_total", receiver="generic", result="failed") == 0
    ours = [r.getMessage() for r in caplog.records if r.name == "exporter.actions.announce"]
    assert any("to broken failed (HTTP 400" in line and "not retried" in line for line in ours)
    assert not any("slack-secret-part" in line or "127.0.0.1" in line for line in ours)


def test_a_runtime_switch_holds_until_the_config_changes_that_same_key(tmp_path: Path) -> None:
    """One rule across restarts: a config change of another key leaves the runtime kill switch on; a
    config change of the kill switch itself wins, and an older config coming back later does not bring
    the old runtime value back. Before the fix the first restart dropped it and the last revived it."""
    with running_sim(SCENARIO) as sim:
        with env(tmp_path, sim, approval="none") as e:
            assert e.switches(ADMIN, kill_switch=True, reason="uplink flapping").status_code == 200
        with env(tmp_path, sim, approval="none", dry_run=True) as e:  # the config changes dry_run only
            now = e.get("/api/v1/switches", VIEWER).json()
            assert (now["kill_switch"], now["dry_run"], now["set_by"]) == (True, True, "lead")
            assert e.start(ACME).status_code == 403
        with env(tmp_path, sim, approval="none", dry_run=True, kill_switch=True) as e:  # ...and the switch
            now = e.get("/api/v1/switches", VIEWER).json()
            assert (now["kill_switch"], now["source"]) == (True, "config")
        with env(tmp_path, sim, approval="none") as e:  # the older config comes back
            now = e.get("/api/v1/switches", VIEWER).json()
            assert (now["kill_switch"], now["dry_run"], now["source"]) == (False, False, "config")
            assert e.start(ACME).status_code == 202 and len(e.starts()) == 1
        with env(tmp_path, sim, approval="none") as e:  # and it stays so
            assert e.get("/api/v1/switches", VIEWER).json()["kill_switch"] is False


def test_a_caller_has_at_most_so_many_decisions_waiting(tmp_path: Path) -> None:
    with env(tmp_path, max_pending_per_caller=1) as e:
        assert e.start(ACME).json()["outcome"] == "pending"
        second = e.start(GLOBEX)
        assert second.status_code == 409 and "max_pending_per_caller" in second.json()["reason"]
        assert e.start(GLOBEX, token=AM_TOKEN).json()["outcome"] == "pending"  # another caller's own
