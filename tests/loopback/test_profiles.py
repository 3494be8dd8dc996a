"""The exporter against every EM version the simulator models (exporter/simulator/profiles.py): the
metric contract, empty windows, a start followed to its session, and a logon session that expires."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest

from exporter.config import ActionSettings, Caller
from exporter.em.model import SESSION_RESULTS, SESSION_STATES
from exporter.secret import Secret
from exporter.simulator import load_scenario
from exporter.simulator.profiles import PROFILES, VERSION_PROFILES
from exporter.simulator.scenario import scenario_from_dict
from tests import plain_http
from tests.helpers import exporter_config, running_exporter, running_sim, series, value
from tests.seed_contract import LONG_HISTORY, assert_seed_contract, one_hot

ALL = ["default", *VERSION_PROFILES]
TOKEN = "runbook-token-0123456789"
PLAN = {"backup_server": "vbr01", "plan": "Tenant plan"}


def test_every_version_profile_is_tested() -> None:
    assert set(ALL) == set(PROFILES)


@pytest.mark.parametrize("profile", ALL)
def test_the_seed_session_gives_the_whole_contract(profile: str) -> None:
    seed = dataclasses.replace(load_scenario("seed"), profile=PROFILES[profile])
    with running_sim(seed) as sim, running_exporter(exporter_config(sim.url, poll=LONG_HISTORY)) as exp:
        exp.poll()
        exp.poll()
        assert_seed_contract(exp.scrape())


def _failover(profile: str, **extra: Any) -> dict[str, Any]:
    return {
        "profile": profile,
        "time_scale": 1,
        "task_delay_seconds": 1,
        # live: these follow a failover second by second; EM's 15-minute collection lag, which the
        # version profiles play by default, has its own tests (test_collection.py)
        "collection_interval_seconds": 0,
        "plans": [
            {
                "name": PLAN["plan"],
                "tenant": "Tenant",
                "backup_server": PLAN["backup_server"],
                "vm_stagger_seconds": 10,
                "vms": [
                    {"name": "web", "duration_seconds": 100, "restore_point_age_seconds": 600},
                    {"name": "db", "duration_seconds": 200, "result": "Failed", "fail_at": 0.6},
                ],
            },
            {"name": "Idle plan", "tenant": "Other", "backup_server": "vbr02", "vms": ["x"]},
        ],
        **extra,
    }


@pytest.mark.parametrize("profile", ALL)
def test_a_start_is_followed_to_its_session_and_its_end(profile: str, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    actions = ActionSettings(
        enabled=True,
        callers=(Caller("runbook", Secret(TOKEN)),),
        allowed_plans=(PLAN["plan"],),
        audit_log=str(audit),
        task_poll_interval_seconds=0.05,
    )
    with (
        running_sim(_failover(profile)) as sim,
        running_exporter(exporter_config(sim.url, actions=actions)) as exp,
    ):
        exp.poll()  # an empty window: nothing has run yet
        m = exp.scrape()
        assert value(m, "veeam_em_up") == 1
        assert len(series(m, "veeam_failover_plan_info")) == 2
        assert series(m, "veeam_failover_session_info") == {}

        r = plain_http.post(
            f"{exp.url}/api/v1/plans/{PLAN['plan']}/start",
            headers={"Authorization": f"Bearer {TOKEN}"},
            json={"start_now": True},
            timeout=30,
        )
        assert r.status_code == 202, r.text
        sim.clock.advance(2)
        deadline = time.monotonic() + 10
        while not any(x["outcome"] == "task_finished" for x in _audit(audit)):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        session_id = _audit(audit)[-1]["em_session_id"]

        sim.clock.advance(58)
        exp.poll()
        m = exp.scrape()
        assert value(m, "veeam_failover_session_info", **PLAN, session_id=session_id) == 1
        assert one_hot(m, "veeam_failover_session_state", "state", SESSION_STATES, **PLAN) == {"Working": 1}
        assert value(m, "veeam_failover_vm_progress_ratio", **PLAN, vm="web") == 0.55

        sim.clock.advance(300)
        exp.poll()
        m = exp.scrape()
        assert one_hot(m, "veeam_failover_session_result", "result", SESSION_RESULTS, **PLAN) == {"Failed": 1}
        assert one_hot(m, "veeam_failover_vm_result", "result", SESSION_RESULTS, **PLAN, vm="web") == {
            "Success": 1
        }
        assert value(m, "veeam_failover_vm_progress_ratio", **PLAN, vm="db") == 0.6
        assert sim.world.starts and len(sim.world.starts) == 1


@pytest.mark.parametrize("profile", ALL)
def test_an_expired_logon_session_is_renewed_within_the_poll(profile: str) -> None:
    sc = scenario_from_dict(_failover(profile))
    with running_sim(sc) as sim, running_exporter(exporter_config(sim.url)) as exp:
        exp.poll()
        sim.world.logon_book.expire()  # EM restarted, or its 15-minute idle timeout struck
        exp.poll()
        sim.clock.advance(16 * 60)  # idle past EM's timeout
        exp.poll()
        m = exp.scrape()
        assert value(m, "veeam_em_up") == 1
        assert value(m, "veeam_em_logons_total") == 3
        assert sim.world.cookie_requests == 0


def _audit(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_the_compatibility_doc_describes_every_profile_as_the_code_does() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "em-compatibility.md").read_text()
    for profile in PROFILES.values():
        assert f"| `{profile.name}` | {profile.summary} |" in doc, profile.name
