"""The exporter's own listener: optional TLS and basic/bearer auth; and no secret in any output."""

from __future__ import annotations

import base64
import os
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import trustme
import yaml

from exporter.config import ConfigError, WebSettings
from exporter.config.load import build_config
from exporter.http.auth import allows
from exporter.http.server import ServerThread
from exporter.secret import Secret
from exporter.simulator.logons import Logon
from exporter.wiring import Exporter
from tests import plain_http
from tests.helpers import exporter_config, page_form_fields, running_sim
from tests.procs import free_port, wait_ready
from tests.receiver import running_receiver

EM_PASSWORD = "em-password-never-shown-4711"
TOKEN = "action-token-never-shown-0815"
SCRAPE_PASSWORD = "scrape-password-never-shown-42"
APPROVER_TOKEN = "approver-token-never-shown-1234"
HOOK_SECRET = "T0000-B0000-hook-secret-never-shown"


@pytest.mark.parametrize("mode", ["basic", "bearer"])
def test_auth_on_the_listener_leaves_probes_and_actions_alone(mode: str) -> None:
    if mode == "basic":
        web = WebSettings(basic_username="prometheus", basic_password=Secret(SCRAPE_PASSWORD))
        good = "Basic " + base64.b64encode(f"prometheus:{SCRAPE_PASSWORD}".encode()).decode()
        bad = "Basic " + base64.b64encode(b"prometheus:nope").decode()
    else:
        web = WebSettings(bearer_token=Secret(SCRAPE_PASSWORD))
        good, bad = f"Bearer {SCRAPE_PASSWORD}", "Bearer nope"
    with running_sim("seed") as sim:
        exporter = Exporter(replace(exporter_config(sim.url), web=web), start_poller=False)
        server = ServerThread(exporter.app).start()
        try:
            for path in ("/metrics", "/status", "/"):
                assert plain_http.get(server.url + path).status_code == 401
                r = plain_http.get(server.url + path, headers={"Authorization": bad})
                assert r.status_code == 401 and r.headers["www-authenticate"].lower().startswith(mode)
                assert plain_http.get(server.url + path, headers={"Authorization": good}).status_code == 200
            assert plain_http.get(server.url + "/healthz").status_code == 200
            assert plain_http.get(server.url + "/readyz").status_code in (200, 503)
            assert (
                plain_http.get(server.url + "/api/v1/actions").status_code == 404
            )  # its own guard: actions off
        finally:
            server.stop()


def test_tls_on_the_listener(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "tls.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    with running_sim("seed") as sim:
        exporter = Exporter(exporter_config(sim.url), start_poller=False)
        server = ServerThread(
            exporter.app, certfile=str(tmp_path / "tls.pem"), keyfile=str(tmp_path / "tls.pem")
        )
        server.start()
        try:
            r = httpx.get(
                server.url + "/metrics", verify=ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
            )
            assert server.url.startswith("https://") and r.status_code == 200
            with pytest.raises(httpx.ConnectError):
                plain_http.get(server.url + "/metrics")  # not trusted without the CA
        finally:
            server.stop()


def test_listener_settings_are_validated(tmp_path: Path) -> None:
    base = {"em": {"url": "https://em", "username": "u"}}
    env = {"VEEAM_EM_PASSWORD": "pw"}
    (tmp_path / "pw").write_text("secret\n")
    with pytest.raises(ConfigError, match=r"give both web\.tls_cert_file and web\.tls_key_file"):
        build_config({**base, "web": {"tls_cert_file": str(tmp_path / "pw")}}, {}, env)
    with pytest.raises(ConfigError, match="choose basic_auth or bearer_token_file"):
        build_config(
            {
                **base,
                "web": {
                    "basic_auth": {"username": "p", "password_file": str(tmp_path / "pw")},
                    "bearer_token_file": str(tmp_path / "pw"),
                },
            },
            {},
            env,
        )
    with pytest.raises(ConfigError, match=r"web\.bearer_token_file: cannot read /nope"):
        build_config({**base, "web": {"bearer_token_file": "/nope"}}, {}, env)
    web = build_config({**base, "web": {"bearer_token_file": str(tmp_path / "pw")}}, {}, env).web
    assert allows(web, "Bearer secret") and not allows(web, "Bearer secre") and not allows(web, None)
    assert "secret" not in repr(web)


def test_no_secret_in_any_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the exporter for real (debug logs on), exercise every endpoint and error path, grep everything."""
    tokens = {"runbook": TOKEN, "oncall": {"token": APPROVER_TOKEN, "roles": ["approver", "admin"]}}
    (tmp_path / "tokens.yaml").write_text(yaml.safe_dump(tokens))
    (tmp_path / "scrape-pw").write_text(SCRAPE_PASSWORD)
    port = free_port()
    config = {
        "em": {"url": "", "username": "admin", "timeout_seconds": 5},
        "listen_address": f"127.0.0.1:{port}",
        "log_level": "debug",
        "web": {"basic_auth": {"username": "prometheus", "password_file": str(tmp_path / "scrape-pw")}},
        "actions": {
            "enabled": True,
            "tokens_file": str(tmp_path / "tokens.yaml"),
            "allowed_plans": ["ABC Company Failover Plan"],
            "audit_log": str(tmp_path / "audit.jsonl"),
            "approval": "required",
            # a chat webhook whose URL is its credential; it fails first, so the retries are logged
            "notifications": [
                {"name": "chat", "url_file": str(tmp_path / "hook-url"), "format": "slack"},
                {"name": "audit-sink", "url_file": str(tmp_path / "hook-url"), "retry_base_seconds": 0.05},
            ],
        },
    }
    scenario = yaml.safe_load(Path("exporter/simulator/scenarios/seed.yaml").read_text())
    scenario["users"] = {"admin": EM_PASSWORD}
    outputs: list[str] = []
    em_tokens: list[str] = []
    with (
        running_sim(scenario) as sim,
        running_receiver(fail_first=2, path=f"/services/{HOOK_SECRET}") as hook,
    ):
        (tmp_path / "hook-url").write_text(hook.url)
        issue = sim.world.logon_book.logon

        def logon(user: str, password: str) -> Logon | None:
            got = issue(user, password)
            if got is not None:
                em_tokens.append(got.token)  # EM's session token: it calls EM past every guard
            return got

        monkeypatch.setattr(sim.world.logon_book, "logon", logon)
        config["em"]["url"] = sim.url  # type: ignore[index]
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        log = tmp_path / "exporter.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "exporter", "run", "--config", str(tmp_path / "config.yaml")],
                stdout=out,
                stderr=out,
                env={**os.environ, "VEEAM_EM_PASSWORD": EM_PASSWORD},
            )
            try:
                url = f"http://127.0.0.1:{port}"
                auth = ("prometheus", SCRAPE_PASSWORD)
                wait_ready(url + "/readyz", proc, log)
                sim.world.logon_book.expire()  # a re-logon, on the record
                time.sleep(1)
                h = {"Authorization": f"Bearer {TOKEN}"}
                responses = [
                    plain_http.get(url + "/metrics", auth=auth),
                    plain_http.get(url + "/status", auth=auth),
                    plain_http.get(url + "/", auth=auth),
                    plain_http.get(url + "/metrics"),
                    plain_http.post(
                        url + "/api/v1/plans/ABC Company Failover Plan/start",
                        json={"start_now": True, "dry_run": True},
                        headers=h,
                    ),
                    plain_http.post(
                        url + "/api/v1/plans/x/start",
                        json={"start_now": True},
                        headers={"Authorization": f"Bearer {TOKEN}x"},
                    ),
                    plain_http.post(
                        url + "/api/v1/alertmanager",
                        content=b"{bad",
                        headers={**h, "Content-Type": "application/json"},
                    ),
                    plain_http.get(url + "/api/v1/actions", headers=h),
                    plain_http.put(
                        url + "/api/v1/switches",
                        json={"dry_run": True, "reason": "drill"},
                        headers={"Authorization": f"Bearer {APPROVER_TOKEN}"},
                    ),
                    # a forged log line, were request values logged as they came
                    plain_http.post(
                        url + "/api/v1/plans/x%0d%0aFORGED%20INFO%20line%1b%5b31m/start",
                        json={"start_now": True},
                        headers=h,
                    ),
                ]
                decision = responses[4].json()["request_id"]  # the dry run start: it waits for approval
                seen = page_form_fields(plain_http.get(f"{url}/status/decisions/{decision}", auth=auth).text)
                for body in (f"token={APPROVER_TOKEN}&{seen}", f"token={TOKEN}&{seen}"):
                    responses.append(
                        plain_http.post(
                            f"{url}/api/v1/decisions/{decision}/approve",
                            content=body,
                            headers={"Content-Type": "application/x-www-form-urlencoded"},
                        )
                    )
                responses.append(plain_http.get(f"{url}/api/v1/decisions", headers=h))
                responses.append(plain_http.get(f"{url}/status/decisions/{decision}", auth=auth))
                deadline = time.monotonic() + 10
                while len(hook.received) < 6 and time.monotonic() < deadline:
                    time.sleep(0.1)
                sim.world.faults.update({"refuse_logon": True})
                sim.world.logon_book.expire()
                time.sleep(1.5)  # a failed logon, on the record
                responses.append(plain_http.get(url + "/metrics", auth=auth))
                outputs += [r.text for r in responses] + [str(dict(r.headers)) for r in responses]
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=20)
        outputs += [log.read_text(), (tmp_path / "audit.jsonl").read_text()]
    everything = "\n".join(outputs)
    assert "veeam_em_logons_total" in everything and "dry_run" in everything and "DEBUG" in everything
    assert hook.attempts > len(hook.received) >= 6  # announced, after failed attempts (logged)
    assert "notifications: pending event to chat failed (HTTP 500" in log.read_text()
    assert em_tokens
    for token in em_tokens:
        assert token not in everything, "EM's session token leaked"
    log_text = log.read_text()
    assert "FORGED" in log_text  # the request was logged...
    assert not any(line.startswith("FORGED") for line in log_text.splitlines())  # ...on its own line
    assert "\x1b" not in log_text
    outputs.append(str(hook.received))
    everything = "\n".join(outputs)
    for secret in (EM_PASSWORD, TOKEN, SCRAPE_PASSWORD, APPROVER_TOKEN, HOOK_SECRET):
        for form in (
            secret,
            base64.b64encode(secret.encode()).decode(),
            base64.b64encode(f"admin:{secret}".encode()).decode(),
        ):
            assert form not in everything, f"a secret leaked: {secret[:6]}..."
