"""What the readiness reader knows of each plan VM's replica points, and how a point read changes it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from exporter.em.model import DR_STATES, ReplicaPoint
from exporter.readiness.state import LatestPoint, PlanKey, Readiness, VmKey


class ReplicaBook:
    def __init__(self) -> None:
        self.latest: dict[VmKey, LatestPoint] = {}
        self.none: set[VmKey] = set()  # EM has no point of these
        self.newest_by_server: dict[str, float] = {}  # the newest point seen of each backup server
        self.wanted: set[VmKey] = set()  # the plan VMs

    def want(self, wanted: set[VmKey]) -> None:
        """Keep only what is known of these VMs (a VM taken out of every plan is forgotten)."""
        self.wanted = wanted
        self.latest = {k: v for k, v in self.latest.items() if k in wanted}
        self.none &= wanted

    def take(self, points: Iterable[ReplicaPoint], now: float) -> None:
        """Points read from EM: a plan VM's newer point replaces its newest; the same point again brings
        its State (a failover, an undo); an older one changes nothing."""
        for p in points:
            if p.created > self.newest_by_server.get(p.backup_server, float("-inf")):
                self.newest_by_server[p.backup_server] = p.created
            key = (p.backup_server, p.vm)
            if key not in self.wanted:
                continue
            current = self.latest.get(key)
            if current is not None and p.id != current.id and p.created <= current.created:
                continue
            state = p.state or "Unknown"
            since = current.state_since if current is not None and current.state == state else now
            self.latest[key] = LatestPoint(p.id, p.created, state, since)
            self.none.discard(key)

    def in_dr(self) -> set[str]:
        """IDs of the newest points in a DR state: an undo or a failback makes no new point."""
        return {p.id for p in self.latest.values() if p.state in DR_STATES}

    def doubtful(self, rpo: Mapping[VmKey, float], now: float) -> list[VmKey]:
        """Plan VMs with no point, or one older than their RPO (and not in DR): worth asking EM by name."""
        return [
            key
            for key in sorted(self.wanted)
            if key not in self.latest
            or (self.latest[key].state not in DR_STATES and now - self.latest[key].created > rpo[key])
        ]

    def value(
        self,
        rpo: dict[PlanKey, float],
        complete: bool,
        read_at: float,
        requests: int,
        errors: dict[str, int],
        read_ok_at: float | None = None,
    ) -> Readiness:
        return Readiness(
            latest=MappingProxyType(dict(self.latest)),
            none=frozenset(self.none),
            rpo=MappingProxyType(rpo),
            complete=complete,
            read_at=read_at,
            read_ok_at=read_ok_at,
            read_requests=requests,
            read_errors=MappingProxyType(errors),
        )
