"""What the exporter knows of each plan VM's replica points: the immutable value the readiness reader
publishes into the snapshot, and the collectors and /status read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

VmKey = tuple[str, str]  # (backup server, VM name): how points, which name no plan, meet plan VMs
PlanKey = tuple[str, str]  # (backup server, plan name)


@dataclass(frozen=True, slots=True)
class LatestPoint:
    id: str
    created: float
    state: str
    state_since: float  # when this exporter first saw the VM's newest point in this state


@dataclass(frozen=True)
class Readiness:
    latest: Mapping[VmKey, LatestPoint] = field(default_factory=lambda: MappingProxyType({}))
    none: frozenset[VmKey] = frozenset()  # EM has no replica point of these VMs at all
    rpo: Mapping[PlanKey, float] = field(default_factory=lambda: MappingProxyType({}))
    complete: bool = False  # the first read has covered every plan VM
    read_at: float | None = None  # when the last read began
    read_requests: int = 0  # requests to EM the last read made
    # reason -> reads that failed or partly failed for it
    read_errors: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
