"""What an approver (and a starter) should know of a plan before its failover starts, from the last
snapshot: its tenant and VMs, the data a failover now would lose, the VMs never replicated, the VMs
already running in DR, and how old EM's data of its backup server is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exporter.em.model import DR_STATES, Plan
from exporter.polling.collections import data_as_of
from exporter.polling.snapshot import Snapshot


@dataclass(frozen=True)
class PlanFacts:
    tenant: str
    vm_count: int
    expected_data_loss_seconds: float | None  # now - the oldest of the VMs' newest points; None: unknown
    never_replicated: tuple[str, ...]
    in_dr: tuple[str, ...]  # VMs whose newest point is in Failover, Failback or PermanentFailover
    em_data_age_seconds: float | None  # now - EM's newest event of the backup server; None: unknown

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "vm_count": self.vm_count,
            "expected_data_loss_seconds": _round(self.expected_data_loss_seconds),
            "never_replicated": list(self.never_replicated),
            "in_dr": list(self.in_dr),
            "em_data_age_seconds": _round(self.em_data_age_seconds),
        }


def plan_facts(plan: Plan, snap: Snapshot, now: float) -> PlanFacts:
    r = snap.readiness
    vms = tuple(dict.fromkeys(plan.vms))
    points = [r.latest[(plan.backup_server, vm)] for vm in vms if (plan.backup_server, vm) in r.latest]
    newest = [p.created for p in points if p.state not in DR_STATES]
    as_of = data_as_of(snap.sessions).get(plan.backup_server)
    return PlanFacts(
        tenant=plan.tenant,
        vm_count=len(vms),
        expected_data_loss_seconds=None if not newest else now - min(newest),
        never_replicated=tuple(vm for vm in vms if (plan.backup_server, vm) in r.none),
        in_dr=vms_in_dr(plan, snap),
        em_data_age_seconds=None if as_of is None else now - as_of,
    )


def vms_in_dr(plan: Plan, snap: Snapshot) -> tuple[str, ...]:
    """The plan's VMs whose newest replica point is in a DR state: they run at the provider already."""
    latest = snap.readiness.latest
    return tuple(
        vm
        for vm in dict.fromkeys(plan.vms)
        if (plan.backup_server, vm) in latest and latest[(plan.backup_server, vm)].state in DR_STATES
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value)
