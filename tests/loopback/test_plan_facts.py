"""What an approver sees of a plan before approving (actions/plan_facts.py): its tenant, VMs, the data a
failover now would lose, VMs never replicated or already in DR, EM's data age; and a plan whose VMs run
in DR already is not started again unless the request says so. Over loopback HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from exporter.config import ActionSettings, Caller
from exporter.secret import Secret
from tests import plain_http
from tests.helpers import RunningExporter, exporter_config, running_exporter, running_sim

STARTER = "starter-token-0123456789"
APPROVER = "approver-token-0123456789"
SCENARIO: dict[str, Any] = {
    "plans": [
        {
            "name": "ACME",
            "tenant": "ACME Corp",
            "backup_server": "vbr01",
            "vms": [
                {"name": "web", "restore_point_age_seconds": 1800},
                {"name": "db", "restore_point_age_seconds": 7200, "replication": "stopped"},
                {"name": "legacy", "replication": "never"},
            ],
        },
        {
            "name": "Umbrella",
            "tenant": "Umbrella",
            "backup_server": "vbr01",
            "history": [{"ago_seconds": 3600, "in_dr": True}],  # failed over an hour ago, never undone
            "vms": ["u1", "u2"],
        },
    ]
}


def actions(tmp: Path, approval: str = "required") -> ActionSettings:
    return ActionSettings(
        enabled=True,
        callers=(
            Caller("runbook", Secret(STARTER)),
            Caller("oncall", Secret(APPROVER), roles=("approver",)),
        ),
        allowed_plans=("ACME", "Umbrella"),
        audit_log=str(tmp / "audit.jsonl"),
        approval=approval,
        cooldown_seconds=0,
        dry_run=True,
    )


def start(exp: RunningExporter, plan: str, **body: Any) -> httpx.Response:
    return plain_http.post(
        f"{exp.url}/api/v1/plans/{plan}/start",
        headers={"Authorization": f"Bearer {STARTER}"},
        json={"start_now": True, **body},
        timeout=30,
    )


def test_the_approver_sees_the_plans_facts_in_the_api_and_on_the_page(tmp_path: Path) -> None:
    with (
        running_sim(SCENARIO) as sim,
        running_exporter(exporter_config(sim.url, actions=actions(tmp_path))) as exp,
    ):
        exp.poll()
        exp.read_points()
        r = start(exp, "ACME")
        assert r.status_code == 202 and r.json()["outcome"] == "pending", r.text
        did = r.json()["request_id"]
        listing = plain_http.get(
            f"{exp.url}/api/v1/decisions", headers={"Authorization": f"Bearer {APPROVER}"}
        )
        (decision,) = listing.json()["decisions"]
        facts = decision["now"]["plan_facts"]
        assert facts["tenant"] == "ACME Corp" and facts["vm_count"] == 3
        assert 7100 <= facts["expected_data_loss_seconds"] <= 7300  # db's newest point, 2 h old
        assert facts["never_replicated"] == ["legacy"] and facts["in_dr"] == []
        page = plain_http.get(f"{exp.url}/status/decisions/{did}").text
        for shown in ("ACME Corp", "Expected data loss", "Never replicated", "legacy", "Already in DR"):
            assert shown in page, shown


def test_a_plan_whose_vms_run_in_dr_is_not_started_again_unless_asked_so(tmp_path: Path) -> None:
    with (
        running_sim(SCENARIO) as sim,
        running_exporter(exporter_config(sim.url, actions=actions(tmp_path, approval="none"))) as exp,
    ):
        exp.poll()
        exp.read_points()
        r = start(exp, "Umbrella")
        assert r.status_code == 409 and r.json()["outcome"] == "conflict", r.text
        assert "2 of the plan's VMs run in DR already (u1, u2)" in r.json()["reason"]
        assert '"allow_vms_in_dr": true' in r.json()["reason"]
        r = start(exp, "Umbrella", allow_vms_in_dr=True)
        assert r.status_code == 200 and r.json()["outcome"] == "dry_run", r.text
        assert start(exp, "ACME").json()["outcome"] == "dry_run"  # its VMs are not in DR: no question
        assert start(exp, "ACME", allow_vms_in_dr="yes").status_code == 400
