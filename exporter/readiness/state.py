"""What the exporter knows of each plan VM's replica points: the immutable value the readiness reader
publishes into the snapshot, and the collectors and /status read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from exporter.em.model import Session

VmKey = tuple[str, str]  # (backup server, VM name): how points, which name no plan, meet plan VMs
PlanKey = tuple[str, str]  # (backup server, plan name)


@dataclass(frozen=True, slots=True)
class LatestPoint:
    id: str
    created: float
    state: str
    state_since: float  # when this exporter first saw the VM's newest point in this state


def in_dr_since(point: LatestPoint, session: Session | None, vm: str) -> float:
    """Since when a VM runs in DR: its failover task's start (EM's time) if the plan's latest session
    failed it over to this point, else when this exporter first saw the point in that state."""
    if session is not None:
        task = next((t for t in session.tasks if t.vm == vm and t.restore_point_id == point.id), None)
        if task is not None and task.start is not None:
            return min(task.start, point.state_since)
    return point.state_since


@dataclass(frozen=True)
class Readiness:
    latest: Mapping[VmKey, LatestPoint] = field(default_factory=lambda: MappingProxyType({}))
    none: frozenset[VmKey] = frozenset()  # EM has no replica point of these VMs at all
    # these had points, and EM removed them after a permanent failover (snapshot replicas): never "none"
    removed: frozenset[VmKey] = frozenset()
    rpo: Mapping[PlanKey, float] = field(default_factory=lambda: MappingProxyType({}))
    complete: bool = False  # the first read has covered every plan VM
    read_at: float | None = None  # when the last read began
    read_ok_at: float | None = None  # when the last read that fully succeeded began
    read_requests: int = 0  # requests to EM the last read made
    # reason -> reads that failed or partly failed for it
    read_errors: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
