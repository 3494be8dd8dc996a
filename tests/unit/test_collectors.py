"""The failover collector on its own: the documentation's example session in, a golden exposition out
(as node_exporter and prometheus-pve-exporter keep theirs). UPDATE_GOLDEN=1 rewrites the file; the diff
is then the review."""

from __future__ import annotations

import os
from pathlib import Path
from types import MappingProxyType

from prometheus_client.core import CollectorRegistry

from exporter.em import parse
from exporter.em.errors import REASONS
from exporter.em.model import Plan
from exporter.metrics import textformat
from exporter.metrics.collectors import HealthCollector, failover_families
from exporter.metrics.exposition import failover_data, render_failover
from exporter.polling.snapshot import Snapshot, Store
from exporter.readiness.state import LatestPoint, Readiness
from tests.helpers import parse_samples, utc, value

HERE = Path(__file__).parent
GOLDEN = HERE / "golden" / "seed.prom"
SEED_PLAN = Plan(
    id="e7ca6822-a87f-443d-8aae-8005970543bf",
    name="ABC Company Failover Plan",
    backup_server="srv13.tech.local",
    tenant="ABC Company",
    vms=("filesrv03", "filesrv04"),
)


def seed_exposition() -> bytes:
    session = parse.parse_session((HERE / "fixtures" / "seed_session.xml").read_bytes())
    # one point read from EM, the other shown from its name
    points = {"c1beab6b-2b18-47f1-9e71-354ab8a49fc2": utc("2020-02-13T05:00:46Z")}
    # readiness: filesrv03 runs from the point its failover chose, filesrv04 has no point at all
    readiness = Readiness(
        latest={
            (SEED_PLAN.backup_server, "filesrv03"): LatestPoint(
                "c1beab6b-2b18-47f1-9e71-354ab8a49fc2", utc("2020-02-13T05:00:46Z"), "Failover", 2e9
            )
        },
        none=frozenset({(SEED_PLAN.backup_server, "filesrv04")}),
        rpo={(SEED_PLAN.backup_server, SEED_PLAN.name): 3600.0},
        complete=True,
        read_at=utc("2020-02-13T06:10:00Z"),
        read_ok_at=utc("2020-02-13T06:10:00Z"),
        read_requests=1,
    )
    snap = Snapshot(
        plans=(SEED_PLAN,),
        sessions=(session,),
        restore_points=points,
        plan_vm_changes={(SEED_PLAN.backup_server, SEED_PLAN.name): 1},
        readiness=readiness,
    )
    return b"".join(render_failover(failover_data(snap), openmetrics=False, head=b""))


def test_the_seed_session_renders_exactly_the_golden_exposition() -> None:
    got = seed_exposition()
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_bytes(got)
    assert got.decode() == GOLDEN.read_text()


def test_the_golden_file_holds_the_contract_values() -> None:
    m = parse_samples(GOLDEN.read_text())
    vm = {"backup_server": "srv13.tech.local", "plan": "ABC Company Failover Plan", "vm": "filesrv04"}
    assert value(m, "veeam_failover_vm_restore_point_timestamp_seconds", **vm) == utc("2020-02-13T06:02:20Z")
    assert value(m, "veeam_failover_vm_state", **vm, state="Starting") == 1
    assert value(m, "veeam_failover_plan_name_conflicts", backup_server="srv13.tech.local") == 0
    vm3 = {**vm, "vm": "filesrv03"}
    plan = {"backup_server": "srv13.tech.local", "plan": "ABC Company Failover Plan"}
    # the failover's own task start, not the later moment the exporter first saw the state
    assert value(m, "veeam_failover_plan_vm_in_dr_since_timestamp_seconds", **vm3) == utc(
        "2020-05-06T20:29:50.13Z"
    )
    assert value(m, "veeam_failover_plan_vm_restore_point_state", **vm3, state="Failover") == 1
    assert value(m, "veeam_failover_plan_vm_restore_point_state", **vm3, state="Ready") == 0
    assert value(m, "veeam_failover_plan_vm_has_restore_point", **vm) == 0
    assert value(m, "veeam_failover_plan_vm_latest_restore_point_timestamp_seconds", **vm) is None
    assert value(m, "veeam_failover_plan_vms_without_restore_point", **plan) == 1
    assert value(m, "veeam_failover_plan_vms_in_failover", **plan) == 1
    assert value(m, "veeam_failover_plan_rpo_seconds", **plan) == 3600
    assert value(m, "veeam_failover_plan_vm_list_changes_total", **plan) == 1


def test_two_plans_of_one_name_make_no_duplicate_series() -> None:
    twin = Plan(id="other", name=SEED_PLAN.name, backup_server=SEED_PLAN.backup_server, tenant="X", vms=())
    snap = Snapshot(plans=(SEED_PLAN, twin), restore_points=MappingProxyType({}))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(textformat.Families(failover_families(snap)))
    text = textformat.encode(registry, False, eof=False).decode()
    series = [line.rsplit(" ", 1)[0] for line in text.splitlines() if not line.startswith("#")]
    assert len(series) == len(set(series))
    m = parse_samples(text)
    assert value(m, "veeam_failover_plan_name_conflicts", backup_server="srv13.tech.local") == 1


def test_every_error_reason_is_there_from_the_start() -> None:
    registry = CollectorRegistry(auto_describe=False)
    store = Store()
    store.publish(ready=True)
    registry.register(HealthCollector(store))
    m = parse_samples(textformat.encode(registry, False, eof=True).decode())
    assert {r: value(m, "veeam_em_poll_errors_total", reason=r) for r in REASONS} == dict.fromkeys(REASONS, 0)
