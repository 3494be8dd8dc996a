"""The guarded start, over loopback HTTP against the simulator. Each guard has a test that shows it holds."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.config import ActionSettings, Caller
from exporter.secret import Secret
from tests import plain_http
from tests.helpers import RunningExporter, RunningSim, exporter_config, running_exporter, running_sim, value

TOKEN = "runbook-token-0123456789"
AM_TOKEN = "alertmanager-token-0123456789"
LIMITED_TOKEN = "limited-token-0123456789"
SCENARIO = {
    "time_scale": 1,
    "task_delay_seconds": 1,
    "plans": [
        {"name": "ACME full site failover", "backup_server": "vbr01", "vms": ["web", "db"]},
        {"name": "Globex DR plan", "backup_server": "vbr01", "vms": ["app"]},
    ],
}
ACME = "ACME full site failover"
GLOBEX = "Globex DR plan"


def settings(tmp: Path, **kw: Any) -> ActionSettings:
    base = ActionSettings(
        enabled=True,
        callers=(
            Caller("runbook", Secret(TOKEN)),
            Caller("alertmanager", Secret(AM_TOKEN)),
            Caller("limited", Secret(LIMITED_TOKEN), plans=(GLOBEX,)),
        ),
        allowed_plans=(ACME,),
        audit_log=str(tmp / "audit.jsonl"),
        task_poll_interval_seconds=0.05,
    )
    return replace(base, **kw)


@dataclass
class Env:
    sim: RunningSim
    exp: RunningExporter
    audit: Path

    def start(self, plan: str, body: Any = None, token: str | None = TOKEN, **headers: str) -> httpx.Response:
        h = {"Content-Type": "application/json", **headers}
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        content = (
            body if isinstance(body, bytes) else json.dumps({"start_now": True} if body is None else body)
        )
        return plain_http.post(
            f"{self.exp.url}/api/v1/plans/{plan}/start", headers=h, content=content, timeout=30
        )

    def webhook(self, payload: dict[str, Any], token: str = AM_TOKEN) -> httpx.Response:
        return plain_http.post(
            f"{self.exp.url}/api/v1/alertmanager",
            json=payload,
            timeout=30,
            headers={"Authorization": f"Bearer {token}"},
        )

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.audit.read_text().splitlines()] if self.audit.exists() else []

    def starts(self) -> int:
        return len(self.sim.world.starts)


@contextmanager
def env(tmp_path: Path, sim: RunningSim | None = None, **kw: Any) -> Iterator[Env]:
    with running_sim(SCENARIO) if sim is None else _given(sim) as s:
        cfg = exporter_config(s.url, actions=settings(tmp_path, **kw))
        with running_exporter(cfg) as exp:
            exp.poll()
            yield Env(s, exp, tmp_path / "audit.jsonl")


@contextmanager
def _given(sim: RunningSim) -> Iterator[RunningSim]:
    yield sim


def alert(
    plan: str | None,
    status: str = "firing",
    fingerprint: str = "4f3c2a1b0d9e8f7a",
    starts_at: str = "2026-11-26T10:00:00.000Z",
) -> dict[str, Any]:
    labels = {"alertname": "VeeamSiteDown", "severity": "critical"}
    if plan is not None:
        labels["veeam_failover_plan"] = plan
    return {
        "status": status,
        "labels": labels,
        "annotations": {},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prom/graph",
        "fingerprint": fingerprint,
    }


def notification(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="VeeamSiteDown"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "veeam-runbook",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://am",
        "alerts": list(alerts),
        "notification_reason": "from a newer Alertmanager: ignored",
    }


def wait_until(check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# -- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789", TOKEN[:-1]])
def test_missing_or_wrong_token_is_401_and_nothing_happens(tmp_path: Path, token: str | None) -> None:
    with env(tmp_path) as e:
        r = e.start(ACME, token=token)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["outcome"] == "unauthorized"
        assert e.starts() == 0
        # counted and logged at most once a minute, never an fsync'd audit line each (anyone can send them)
        assert e.lines() == []
        m = e.exp.scrape()
        # the plan an unauthenticated caller names is not trusted, not even as a label value
        assert (
            value(m, "veeam_failover_start_requests_total", plan="", source="api", outcome="unauthorized")
            == 1
        )


def test_an_unauthenticated_caller_cannot_mint_label_values(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        for i in range(5):
            e.start(f"made-up-plan-{i}", token=None)
        m = e.exp.scrape()
    assert value(m, "veeam_failover_start_requests_total", plan="", source="api", outcome="unauthorized") == 5
    assert not any("made-up" in str(labels) for _, labels in m)


def test_webhook_needs_the_token_too(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        r = e.webhook(notification(alert(ACME)), token="nope-nope-nope-nope")
        assert r.status_code == 401 and e.starts() == 0


# -- authorization, kill switch, policy ----------------------------------------------------------


def test_plan_not_on_the_allowlist_is_403(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        r = e.start(GLOBEX)
        assert r.status_code == 403 and "not allowed" in r.json()["reason"]
        assert e.starts() == 0
        assert e.lines()[-1]["outcome"] == "forbidden"


def test_per_token_allowlist_overrides_the_global_one(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        assert e.start(ACME, token=LIMITED_TOKEN).status_code == 403
        assert e.start(GLOBEX, token=LIMITED_TOKEN).status_code == 202
        assert [s.plan_id for s in e.sim.world.starts] == [e.sim.world.scenario.plans[1].id]


def test_kill_switch_refuses_everything(tmp_path: Path) -> None:
    with env(tmp_path, kill_switch=True) as e:
        r = e.start(ACME)
        assert r.status_code == 403 and "kill_switch" in r.json()["reason"]
        assert e.starts() == 0


def test_plan_by_id_works_and_unknown_plan_is_404(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        assert e.start("no-such-plan").status_code == 404
        plan_id = e.sim.world.scenario.plans[0].id
        r = e.start(plan_id)
        assert r.status_code == 202 and r.json()["plan"] == ACME


def test_restore_point_age_policy(tmp_path: Path) -> None:
    with env(tmp_path, restore_point_min_age_seconds={ACME: 3600.0}) as e:
        too_new = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600))
        r = e.start(ACME, {"start_date": too_new})
        assert r.status_code == 422 and "at least 60 minutes old" in r.json()["reason"]
        assert e.start(ACME).status_code == 202  # start_now becomes "a point an hour old"
        (rec,) = e.sim.world.starts
        assert rec.start_now is False
        assert rec.start_date == pytest.approx(time.time() - 3600, abs=5)


# -- idempotency, conflicts, dry run ---------------------------------------------------------------


def test_accepted_start_is_tracked_to_its_session(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        r = e.start(ACME, {"start_now": True, "reason": "site A flooded"})
        assert r.status_code == 202
        body = r.json()
        assert body["outcome"] == "accepted" and body["em_task"]["id"] == "task-1" and body["request_id"]
        assert e.sim.world.starts[0].start_now is True
        outcomes = [x["outcome"] for x in e.lines()]
        assert outcomes == ["starting", "accepted"]
        e.sim.clock.advance(2)  # the EM task finishes
        wait_until(lambda: any(x["outcome"] == "task_finished" for x in e.lines()))
        finished = e.lines()[-1]
        assert finished["request_id"] == body["request_id"] and finished["em_session_id"]
        e.exp.poll()
        m = e.exp.scrape()
        assert (
            value(
                m,
                "veeam_failover_session_info",
                backup_server="vbr01",
                plan=ACME,
                session_id=finished["em_session_id"],
            )
            == 1
        )
        assert (
            value(m, "veeam_failover_start_requests_total", plan=ACME, source="api", outcome="accepted") == 1
        )
        assert value(m, "veeam_failover_last_start_timestamp_seconds", plan=ACME) == pytest.approx(
            time.time(), abs=10
        )
        assert e.lines()[1]["reason_given"] == "site A flooded"


def test_idempotency_key_never_starts_twice(tmp_path: Path) -> None:
    with env(tmp_path, cooldown_seconds=0) as e:
        first = e.start(ACME, **{"Idempotency-Key": "change-4711"})
        e.sim.clock.advance(100_000)  # the session is long over: only the key can stop a second start
        e.exp.poll()
        again = e.start(ACME, **{"Idempotency-Key": "change-4711"})
        assert (first.status_code, again.status_code) == (202, 200)
        assert again.json()["outcome"] == "duplicate" and again.json()["em_task"]["id"] == "task-1"
        assert e.starts() == 1


def test_running_session_is_a_conflict(tmp_path: Path) -> None:
    with env(tmp_path, cooldown_seconds=0) as e:
        assert e.start(ACME).status_code == 202
        e.sim.clock.advance(1)
        e.exp.poll()
        r = e.start(ACME)
        assert r.status_code == 409 and "is still" in r.json()["reason"]
        assert e.starts() == 1


def test_cooldown_is_a_conflict(tmp_path: Path) -> None:
    with env(tmp_path, cooldown_seconds=3600) as e:
        assert e.start(ACME).status_code == 202
        e.sim.clock.advance(100_000)  # the failover is long over, and the poller has seen it end
        e.exp.poll()
        r = e.start(ACME)
        assert r.status_code == 409 and "cooldown is 3600s" in r.json()["reason"]
        assert e.starts() == 1


def test_a_start_counts_as_running_until_its_session_is_seen(tmp_path: Path) -> None:
    # Found by the soak: without a cooldown, a second alert arriving before the next poll started the
    # plan again, because the snapshot did not know the first start's session yet.
    with env(tmp_path, cooldown_seconds=0) as e:
        assert e.start(ACME, **{"Idempotency-Key": "first"}).status_code == 202
        r = e.start(ACME, **{"Idempotency-Key": "second"})  # no poll in between
        assert r.status_code == 409 and "its session is not visible yet" in r.json()["reason"]
        e.sim.clock.advance(100_000)
        e.exp.poll()  # the poller sees the new session, long stopped
        assert e.start(ACME, **{"Idempotency-Key": "third"}).status_code == 202
        assert e.starts() == 2


def test_dry_run_per_request_and_global(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        r = e.start(ACME, {"start_now": True, "dry_run": True})
        assert r.status_code == 200 and r.json()["outcome"] == "dry_run"
        assert e.starts() == 0
        assert e.start(GLOBEX, {"start_now": True, "dry_run": True}).status_code == 403  # checks still run
    with env(tmp_path / "g", dry_run=True) as e:
        assert e.start(ACME).json()["outcome"] == "dry_run"
        assert e.starts() == 0
        assert e.lines()[-1]["dry_run"] is True


def test_em_down_is_503_and_the_same_request_may_be_retried(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        e.sim.world.faults.status = 503
        r = e.start(ACME, **{"Idempotency-Key": "k1"})
        assert r.status_code == 503 and r.json()["outcome"] == "em_error"
        e.sim.world.faults.status = None
        assert e.start(ACME, **{"Idempotency-Key": "k1"}).status_code == 202
        assert e.starts() == 1


@pytest.mark.parametrize("fault", [{"reset": True}, {"truncate": True}])
def test_a_lost_answer_to_a_start_counts_as_started_and_is_never_retried(
    tmp_path: Path, fault: dict[str, object]
) -> None:
    with env(tmp_path, cooldown_seconds=0) as e:
        # EM starts the plan; its answer is lost
        e.sim.world.faults.update({**fault, "remaining": 1, "only_method": "POST"})
        r = e.start(ACME, **{"Idempotency-Key": "k2"})
        assert r.status_code == 504 and r.json()["outcome"] == "em_error"
        assert "the start may have happened" in r.json()["reason"]
        assert e.starts() == 1
        assert e.lines()[-1]["outcome"] == "em_unknown"
        again = e.start(ACME, **{"Idempotency-Key": "k2"})  # Alertmanager retries a 5xx
        assert again.json()["outcome"] == "duplicate"
        assert e.starts() == 1


def test_em_refusing_the_start_is_a_4xx(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        del e.sim.world.plans[e.sim.world.scenario.plans[0].id]  # EM no longer knows the plan
        r = e.start(ACME)
        assert r.status_code == 422 and "EM refused the start" in r.json()["reason"]


# -- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "headers", "status", "reason"),
    [
        (b"{not json", {}, 400, "not valid JSON"),
        (b"[]", {}, 400, "must be a JSON object"),
        (b"{}", {}, 400, "exactly one of"),
        (b'{"start_now": true, "start_date": "2026-01-01T00:00:00Z"}', {}, 400, "exactly one of"),
        (b'{"start_now": "yes"}', {}, 400, "exactly one of"),
        (b'{"start_now": true, "dryrun": true}', {}, 400, "unknown field 'dryrun'"),
        (b'{"start_date": "yesterday"}', {}, 400, "RFC 3339"),
        (b'{"start_date": "2026-01-01T00:00:00"}', {}, 400, "needs a time zone"),
        (b'{"start_date": "2999-01-01T00:00:00Z"}', {}, 400, "in the future"),
        (b'{"start_now": true, "dry_run": 1}', {}, 400, "dry_run must be true or false"),
        (
            b'{"start_now": true}',
            {"Content-Type": "text/plain"},
            415,
            "Content-Type must be application/json",
        ),
        (b'{"start_now": true, "reason": "' + b"x" * 300_000 + b'"}', {}, 413, "body larger than"),
        (b'{"start_now": true}', {"Idempotency-Key": "x" * 300}, 400, "Idempotency-Key"),
    ],
)
def test_bad_requests_get_a_clear_4xx_an_audit_line_and_no_start(
    tmp_path: Path, body: bytes, headers: dict[str, str], status: int, reason: str
) -> None:
    with env(tmp_path) as e:
        r = e.start(ACME, body, **headers)
        assert r.status_code == status
        assert reason in r.json()["reason"]
        assert e.starts() == 0
        line = e.lines()[-1]
        assert (line["outcome"], line["status"], line["caller"]) == ("invalid", status, "runbook")


def test_a_chunked_oversized_body_is_cut_off(tmp_path: Path) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"start_now": true, "reason": "'
        for _ in range(100):
            yield b"y" * 10_000
        yield b'"}'

    with env(tmp_path) as e:
        r = plain_http.post(
            f"{e.exp.url}/api/v1/plans/{ACME}/start",
            content=chunks(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        assert r.status_code == 413 and e.starts() == 0


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{", "body is not JSON"),
        (b'{"version": "3", "alerts": []}', "unsupported payload version"),
        (b'{"version": "4"}', "no alerts list"),
        (
            b'{"version": "4", "alerts": [{"status": "firing", "labels": {"a": 1}}]}',
            "labels: must be an object of strings",
        ),
        (b'{"version": "4", "alerts": [{"status": "firing", "labels": {}, "startsAt": "x"}]}', "fingerprint"),
    ],
)
def test_bad_webhook_payloads_are_400(tmp_path: Path, payload: bytes, reason: str) -> None:
    with env(tmp_path) as e:
        r = plain_http.post(
            f"{e.exp.url}/api/v1/alertmanager",
            content=payload,
            headers={"Authorization": f"Bearer {AM_TOKEN}", "Content-Type": "application/json"},
        )
        assert r.status_code == 400 and reason in r.json()["reason"]
        assert e.lines()[-1]["outcome"] == "invalid"


# -- Alertmanager ----------------------------------------------------------------------------------


def test_firing_alert_starts_resolved_never_does(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        r = e.webhook(
            notification(alert(ACME, status="resolved", fingerprint="aaaa"), alert(None, fingerprint="bbbb"))
        )
        assert r.status_code == 200 and [x["outcome"] for x in r.json()["results"]] == ["ignored", "ignored"]
        assert e.starts() == 0
        r = e.webhook(notification(alert(ACME)))
        assert r.status_code == 202 and r.json()["results"][0]["outcome"] == "accepted"
        line = next(x for x in e.lines() if x["outcome"] == "accepted")
        assert (line["source"], line["caller"], line["alert_fingerprint"]) == (
            "alertmanager",
            "alertmanager",
            "4f3c2a1b0d9e8f7a",
        )
        assert e.starts() == 1


def test_refused_alert_is_a_4xx_so_alertmanager_does_not_retry(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        r = e.webhook(notification(alert(GLOBEX)))
        assert r.status_code == 403 and e.starts() == 0
        e.sim.world.faults.status = 503
        r = e.webhook(notification(alert(ACME)))
        assert r.status_code == 503  # transient: Alertmanager should retry


def test_100_concurrent_identical_deliveries_start_once(tmp_path: Path) -> None:
    with env(tmp_path, cooldown_seconds=0) as e:
        payload = notification(alert(ACME))
        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(lambda _: e.webhook(payload).status_code, range(100)))
        assert e.starts() == 1
        assert sorted(statuses) == [200] * 99 + [202]
        m = e.exp.scrape()
        assert (
            value(
                m,
                "veeam_failover_start_requests_total",
                plan=ACME,
                source="alertmanager",
                outcome="duplicate",
            )
            == 99
        )


def test_restart_between_two_deliveries_of_the_same_alert(tmp_path: Path) -> None:
    with running_sim(SCENARIO) as sim:
        with env(tmp_path, sim=sim, cooldown_seconds=0) as e:
            assert e.webhook(notification(alert(ACME))).status_code == 202
        sim.clock.advance(100_000)  # long after: the session is over, only the persisted key remembers
        with env(tmp_path, sim=sim, cooldown_seconds=0) as e:
            r = e.webhook(notification(alert(ACME)))
            assert r.status_code == 200 and r.json()["results"][0]["outcome"] == "duplicate"
            # a new firing of the alert (new startsAt) is a new request
            r = e.webhook(notification(alert(ACME, starts_at="2026-11-27T10:00:00.000Z")))
            assert r.json()["results"][0]["outcome"] == "accepted"
        assert len(sim.world.starts) == 2


def test_cooldown_survives_a_restart(tmp_path: Path) -> None:
    with running_sim(SCENARIO) as sim:
        with env(tmp_path, sim=sim) as e:
            assert e.start(ACME).status_code == 202
        with env(tmp_path, sim=sim) as e:
            assert e.start(ACME).status_code == 409
            assert value(e.exp.scrape(), "veeam_failover_last_start_timestamp_seconds", plan=ACME) is not None
        assert len(sim.world.starts) == 1


def test_a_crash_while_asking_em_never_leads_to_a_second_start(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    with running_sim(SCENARIO) as sim:
        plan_id = sim.world.scenario.plans[0].id
        # what a kill -9 between "starting" and EM's answer leaves: the intent, then half a line
        audit.write_text(
            json.dumps(
                {
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                    "request_id": "r1",
                    "outcome": "starting",
                    "plan_id": plan_id,
                    "plan": ACME,
                    "idempotency_key": "alertmanager:4f3c2a1b0d9e8f7a:2026-11-26T10:00:00.000Z",
                }
            )
            + "\n"
            + '{"time": "2026-11-26T10:00:01.000Z", "request_id": "r1", "outc'
        )
        with env(tmp_path, sim=sim, cooldown_seconds=0) as e:
            r = e.webhook(notification(alert(ACME)))
            assert r.json()["results"][0]["outcome"] == "duplicate"
        with env(tmp_path, sim=sim, cooldown_seconds=3600) as e:
            assert e.start(ACME).status_code == 409  # and the plan counts as just started
        assert sim.world.starts == []
        lines = audit.read_text().splitlines()
        assert lines[1].startswith('{"time": "2026-11-26T10:00:01.000Z"')  # the torn line stays, untouched
        assert json.loads(lines[2])["outcome"] == "duplicate"  # and new lines start on a line of their own


def test_recent_decisions_endpoint(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        e.start(GLOBEX)
        e.start(ACME, {"start_now": True, "dry_run": True})
        assert plain_http.get(f"{e.exp.url}/api/v1/actions").status_code == 401
        r = plain_http.get(
            f"{e.exp.url}/api/v1/actions?limit=1", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert r.status_code == 200
        assert [(x["outcome"], x["plan"]) for x in r.json()["actions"]] == [("dry_run", ACME)]


def test_tokens_never_leak(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with env(tmp_path) as e:
        e.start(ACME)
        e.start(ACME, token="wrong-but-long-enough-token")
        e.webhook(notification(alert(ACME)))
        metrics = plain_http.get(e.exp.url + "/metrics").text
        recent = plain_http.get(
            f"{e.exp.url}/api/v1/actions", headers={"Authorization": f"Bearer {TOKEN}"}
        ).text
        everything = metrics + recent + e.audit.read_text() + caplog.text
    for secret in (TOKEN, AM_TOKEN, LIMITED_TOKEN, "wrong-but-long-enough-token", "admin:admin"):
        assert secret not in everything


def test_actions_are_off_by_default(tmp_path: Path) -> None:
    with running_sim(SCENARIO) as sim, running_exporter(exporter_config(sim.url)) as exp:
        r = plain_http.post(
            f"{exp.url}/api/v1/plans/{ACME}/start",
            json={"start_now": True},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert r.status_code == 404 and "disabled" in r.json()["error"]
        assert sim.world.starts == []


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/api/v1/plans/..%2F..%2Fmetrics/start", {}, 404),  # path tricks name no plan
        ("/api/v1/plans/%2e%2e/start", {}, 404),
        ("/api/v1/plans/" + "A" * 5000 + "/start", {}, 404),
        ("/api/v1/plans/ACME%20full%20site%20failover%00/start", {}, 404),
        ("/api/v1/plans/ACME full site failover/start", {"Idempotency-Key": "a\tb"}, 400),  # not printable
        (
            "/api/v1/plans/ACME full site failover/start",
            {"Idempotency-Key": b"x\xc3\xa9\xe2\x80\xa8y"},  # UTF-8 bytes: not printable ASCII
            400,
        ),
    ],
)
def test_hostile_requests_start_nothing(
    tmp_path: Path, path: str, headers: dict[str, str], status: int
) -> None:
    with env(tmp_path) as e:
        r = plain_http.post(
            e.exp.url + path,
            json={"start_now": True},
            headers={"Authorization": f"Bearer {TOKEN}", **headers},
        )
        assert r.status_code == status
        assert e.starts() == 0
        # a path that matches no route never reaches the endpoint; one that does leaves an audit line
        for line in e.lines():
            assert line["outcome"] == "invalid" and len(line.get("plan_ref") or "") <= 200


def test_wrong_methods_are_refused(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        assert plain_http.get(f"{e.exp.url}/api/v1/plans/{ACME}/start").status_code == 405
        assert plain_http.put(f"{e.exp.url}/api/v1/alertmanager", json={}).status_code == 405
        assert e.starts() == 0
