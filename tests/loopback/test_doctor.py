"""`doctor` against the simulator: the right line, hint and exit code for each first-contact problem."""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from click.testing import CliRunner, Result

from exporter.cli import main
from exporter.http.server import ServerThread
from exporter.simulator import ManualClock, Simulator, World, load_scenario
from exporter.simulator.scenario import scenario_from_dict
from tests.helpers import running_sim

PASSWORD = "s3cret-Passw0rd-for-doctor"  # a test secret that must never be printed
DEMO_USERS = {"users": {"monitor": PASSWORD}}


def doctor(url: str, *extra: str, password: str = PASSWORD) -> Result:
    return CliRunner().invoke(
        main,
        ["doctor", "--em-url", url, "--em-username", "monitor", *extra],
        env={"VEEAM_EM_PASSWORD": password},
    )


def lines(result: Result) -> dict[str, str]:
    """check name -> its status and detail (and hint)."""
    out: dict[str, str] = {}
    name = ""
    for line in result.output.splitlines():
        if line.startswith("      ") and name:
            out[name] += " " + line.strip()
        elif line[:4].strip() in ("OK", "WARN", "FAIL", "SKIP"):
            name = line[6:24].strip()
            out[name] = line[:4].strip() + " " + line[24:].strip()
    return out


def demo(**changes: Any) -> dict[str, Any]:
    sc = {"time_scale": 20, "plans": [], **DEMO_USERS, **changes}
    if "plans" not in changes:
        sc["plans"] = [
            {
                "name": "ACME full site failover",
                "tenant": "ACME",
                "backup_server": "vbr01",
                "history": [{"ago_seconds": 3600, "result": "Success"}],
                "vms": ["acme-dc01", "acme-sql01"],
            }
        ]
    return sc


@pytest.mark.parametrize("profile", ["default", "em12", "em13"])
def test_a_healthy_em_is_all_ok(profile: str) -> None:
    with running_sim(demo(profile=profile)) as sim:
        result = doctor(sim.url)
    got = lines(result)
    assert result.exit_code == 0, result.output
    for check in (
        "dns",
        "tcp",
        "api",
        "logon",
        "plans",
        "session query",
        "empty results",
        "session count",
        "datetime filter",
        "replica points",
        "data age",
        "may start",
        "may collect",
        "logout",
    ):
        assert got[check].startswith("OK "), (check, result.output)
    assert "1 cloud failover plan(s) on 1 backup server(s)" in got["plans"]
    assert "read as UTC" in got["datetime filter"]
    assert got["token idle expiry"].startswith("SKIP")
    assert PASSWORD not in result.output


def test_an_old_em_reading_local_time_is_measured_and_warned() -> None:
    """EM documents DateTime filters as UTC since 9.0; one that read them as local time anyway is told."""
    sc = scenario_from_dict(demo(profile="em95"))
    local = dataclasses.replace(sc.profile, filter_utc_offset_seconds=-5 * 3600.0, filter_zone_honoured=False)
    with running_sim(dataclasses.replace(sc, profile=local)) as sim:
        result = doctor(sim.url)
    got = lines(result)
    assert result.exit_code == 0, result.output  # warnings only: the exporter copes
    assert got["datetime filter"].startswith("WARN") and "(UTC-5)" in got["datetime filter"]
    assert got["api"].startswith("WARN") and "older than VBR 10" in got["api"]
    assert got["replica points"] == "OK found by UID filters with the bare GUID"
    assert got["empty results"] == "OK an empty result says no PagingInfo (accepted)"


@pytest.mark.parametrize("action_links", ["always", "by_role"])
def test_an_account_that_may_not_start_or_collect_is_told_where_em_shows_it(action_links: str) -> None:
    """A portal user reads the plans but may not start them or ask for collections. An EM that leaves
    out the links a role may not take shows it (WARN); one that shows every link cannot (OK: the link is
    no promise, the start itself is the last word)."""
    sc = scenario_from_dict(demo(roles={"monitor": "portal_user"}))
    sc = dataclasses.replace(sc, profile=dataclasses.replace(sc.profile, action_links=action_links))
    with running_sim(sc) as sim:
        result = doctor(sim.url)
    got = lines(result)
    assert result.exit_code == 0, result.output  # warnings only: monitoring works
    expected = "OK" if action_links == "always" else "WARN"
    assert got["may start"].startswith(expected), got["may start"]
    assert got["may collect"].startswith(expected), got["may collect"]
    if expected == "WARN":
        assert "Portal Administrator" in got["may start"]


def test_wrong_password() -> None:
    with running_sim(demo()) as sim:
        result = doctor(sim.url, password="not-the-password")
    got = lines(result)
    assert result.exit_code == 1
    assert got["logon"].startswith("FAIL") and "HTTP 401" in got["logon"]
    assert "wrong user name or password" in got["logon"]
    assert "plans" not in got  # nothing after a failed logon
    assert "not-the-password" not in result.output


def test_an_account_without_an_em_role() -> None:
    with running_sim(demo(roles={"monitor": "none"})) as sim:
        result = doctor(sim.url)
    got = lines(result)
    assert result.exit_code == 1
    assert got["logon"].startswith("FAIL") and "HTTP 403" in got["logon"]
    assert "no EM role: add it to Portal Administrators" in got["logon"]


def test_an_account_whose_role_cannot_see_cloud_connect() -> None:
    with running_sim(demo(roles={"monitor": "restore_operator"})) as sim:
        result = doctor(sim.url)
    got = lines(result)
    assert result.exit_code == 1
    assert got["logon"].startswith("OK")
    assert got["plans"].startswith("FAIL") and "HTTP 403" in got["plans"]
    assert "Portal Administrator role" in got["plans"]
    assert got["logout"].startswith("OK")


def test_no_cloud_failover_plans() -> None:
    with running_sim(demo(plans=[])) as sim:
        result = doctor(sim.url)
    got = lines(result)
    assert result.exit_code == 1
    assert got["plans"].startswith("FAIL EM lists no cloud failover plans")
    assert "Cloud Connect service-provider licence" in got["plans"]


def test_em_down() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    result = doctor(f"http://127.0.0.1:{port}")
    got = lines(result)
    assert result.exit_code == 1
    assert got["dns"].startswith("OK")
    assert got["tcp"].startswith("FAIL") and "cannot connect" in got["tcp"]
    assert "is EM running" in got["tcp"]
    assert "logon" not in got


def test_an_unknown_host() -> None:
    result = doctor("https://em.invalid:9398")
    got = lines(result)
    assert result.exit_code == 1
    assert got["dns"].startswith("FAIL") and "cannot resolve 'em.invalid'" in got["dns"]


@pytest.fixture
def tls_em(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    ca = trustme.CA()
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(
        str(tmp_path / "server.pem")
    )
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    world = World(scenario_from_dict(demo()), clock=ManualClock())
    server = ServerThread(
        Simulator(world).app, certfile=str(tmp_path / "server.pem"), keyfile=str(tmp_path / "server.pem")
    ).start()
    try:
        yield server.url, tmp_path / "ca.pem"
    finally:
        server.stop()


def test_an_untrusted_certificate(tls_em: tuple[str, Path]) -> None:
    url, _ = tls_em
    result = doctor(url)
    got = lines(result)
    assert result.exit_code == 1
    assert got["tls"].startswith("FAIL EM's certificate is not trusted")
    assert "set em.ca_file" in got["tls"]
    assert "logon" not in got


def test_a_trusted_certificate_with_its_expiry(tls_em: tuple[str, Path]) -> None:
    url, ca = tls_em
    result = doctor(url, "--em-ca-file", str(ca))
    got = lines(result)
    assert result.exit_code == 0, result.output
    assert got["tls"].startswith("OK certificate trusted for 127.0.0.1, expires ")


def test_json_for_machines() -> None:
    with running_sim(demo()) as sim:
        result = doctor(sim.url, "--json")
    data = json.loads(result.output)
    assert result.exit_code == 0 and data["passed"] is True
    assert [c["name"] for c in data["checks"]][:4] == ["dns", "tcp", "api", "logon"]
    assert {c["status"] for c in data["checks"]} <= {"OK", "SKIP"}


def test_the_seed_scenario_has_sessions_years_old() -> None:
    # no session in the last 30 days: the checks that need one say so instead of failing
    seed = load_scenario("seed")
    with running_sim(seed) as sim:
        result = CliRunner().invoke(
            main,
            ["doctor", "--em-url", sim.url, "--em-username", "admin"],
            env={"VEEAM_EM_PASSWORD": "admin"},
        )
    got = lines(result)
    assert result.exit_code == 0, result.output
    assert got["datetime filter"].startswith("SKIP no session in the last 30 days")
    assert got["data age"].startswith("SKIP")
