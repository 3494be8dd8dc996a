"""`capture` records one full poll of EM's answers; `simulate --replay` serves them; an exporter polling
the replay shows what it showed polling the real thing (names aside, when pseudonymized)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from exporter.cli import main
from exporter.em.capture import CaptureError, read_capture
from exporter.simulator import load_scenario
from exporter.simulator.logons import Logon
from tests.helpers import Samples, exporter_config, running_exporter, running_sim
from tests.procs import free_port, wait_ready

NAME_LABELS = frozenset({"backup_server", "plan", "plan_id", "tenant", "vm", "session_id"})
# EM's free text (a FailureMessage) is redacted by --pseudonymize: it may name anything
TEXT_LABELS = frozenset({"message"})
PASSWORD = "capture-Passw0rd-never-written"  # a test secret: must never reach a capture


def failover_view(m: Samples) -> Counter[tuple[str, tuple[tuple[str, str], ...], float]]:
    """The failover metrics with every name-like label value masked: what must survive pseudonyms."""
    out: Counter[tuple[str, tuple[tuple[str, str], ...], float]] = Counter()
    for (name, labels), v in m.items():
        if name.startswith("veeam_failover_") and "exporter" not in name and "start_" not in name:
            masked = tuple(sorted((k, "*" if k in NAME_LABELS | TEXT_LABELS else val) for k, val in labels))
            out[(name, masked, v)] += 1
    return out


def capture(url: str, out: Path, *extra: str, user: str = "admin", password: str = "admin") -> str:
    result = CliRunner().invoke(
        main,
        ["capture", "--em-url", url, "--em-username", user, "--out", str(out), *extra],
        env={"VEEAM_EM_PASSWORD": password},
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_a_pseudonymized_capture_of_the_demo_replays_to_the_same_metrics(tmp_path: Path) -> None:
    out = tmp_path / "capture.json"
    with running_sim("demo") as sim:
        sim.clock.advance(90)  # both scheduled failovers under way, VMs at different stages
        with running_exporter(exporter_config(sim.url)) as live:
            live.poll()
            live_metrics = live.scrape()
        said = capture(sim.url, out, "--pseudonymize")
        real_names = [p.name for p in sim.world.plans.values()] + [
            vm.name for p in sim.world.plans.values() for vm in p.vms
        ]
        real_ids = [s.id for s in sim.world.sessions()] + list(sim.world.plans)
    assert "(pseudonymized)" in said
    text = out.read_text()
    for secret in [*real_names, "ACME", "Globex", "Initech", "vbr01.example.local", "127.0.0.1", *real_ids]:
        assert secret not in text, secret
    assert out.stat().st_mode & 0o077 == 0  # 0600

    port = free_port()
    log = tmp_path / "replay.log"
    with log.open("wb") as f:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exporter",
                "simulate",
                "--replay",
                str(out),
                "--listen-address",
                f"127.0.0.1:{port}",
            ],
            stdout=f,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(f"http://127.0.0.1:{port}/api/", proc, log)
        with running_exporter(exporter_config(f"http://127.0.0.1:{port}")) as replayed:
            replayed.poll()
            replay_metrics = replayed.scrape()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    live_view, replay_view = failover_view(live_metrics), failover_view(replay_metrics)
    assert sum(live_view.values()) > 100  # plans, sessions and every VM's series
    assert replay_view == live_view
    failures = [dict(k)["message"] for (n, k) in replay_metrics if n.endswith("_failure_info")]
    assert failures and set(failures) == {"redacted"}  # the failures are there, their text is not
    # the names are others, and consistent: each plan's session is still its own
    plans = {dict(k)["plan"] for (n, k) in replay_metrics if n == "veeam_failover_session_info"}
    assert plans and all(re.fullmatch(r"plan-\d{3}", p) for p in plans)


def test_a_capture_holds_no_token_no_password_and_no_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sc = load_scenario("seed")
    sc = type(sc)(**{**sc.__dict__, "users": {"monitor": PASSWORD}})
    out = tmp_path / "capture.json"
    with running_sim(sc) as sim:
        tokens: list[str] = []
        real_logon = sim.world.logon_book.logon

        def logon(user: str, password: str) -> Logon | None:
            got = real_logon(user, password)
            if got is not None:
                tokens.append(got.token)
                tokens.append(got.session_id)
            return got

        monkeypatch.setattr(sim.world.logon_book, "logon", logon)
        said = capture(sim.url, out, user="monitor", password=PASSWORD)
    assert "review before sharing" in said
    text = out.read_text()
    assert tokens
    for secret in [PASSWORD, *tokens, "X-RestSvcSessionId", "Authorization", "<SessionId>"]:
        assert secret not in text, secret
    data = json.loads(text)
    requests = [a["request"] for a in data["answers"]]
    assert requests[0] == "GET /"
    assert any(r.startswith("GET /cloud/cloudFailoverPlans") for r in requests)
    assert any("type=CloudFailoverSession" in r for r in requests)
    assert not any("sessionMngr" in r or "logonSessions" in r for r in requests)
    # not pseudonymized: the doc example's own names are there for the user to review
    assert "ABC Company Failover Plan" in text


def test_a_broken_capture_file_is_refused_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    with pytest.raises(CaptureError, match="not a veeam-failover-exporter-capture file"):
        read_capture(str(bad))
    bad.write_text("not json")
    with pytest.raises(CaptureError, match="not JSON"):
        read_capture(str(bad))
    result = CliRunner().invoke(main, ["simulate", "--replay", str(bad)])
    assert result.exit_code == 2 and "--replay" in result.output
