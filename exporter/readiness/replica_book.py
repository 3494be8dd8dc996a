"""What the readiness reader knows of each plan VM's replica points, and how a point read changes it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from exporter.em.model import DR_STATES, ReplicaPoint, Session
from exporter.readiness.state import LatestPoint, PlanKey, Readiness, VmKey


class ReplicaBook:
    def __init__(self) -> None:
        self.latest: dict[VmKey, LatestPoint] = {}
        self.none: set[VmKey] = set()  # EM has no point of these
        self.removed: set[VmKey] = set()  # their points went after a permanent failover
        self.newest_by_server: dict[str, float] = {}  # the newest point seen of each backup server
        self.wanted: set[VmKey] = set()  # the plan VMs

    def want(self, wanted: set[VmKey]) -> None:
        """Keep only what is known of these VMs (a VM taken out of every plan is forgotten)."""
        self.wanted = wanted
        self.latest = {k: v for k, v in self.latest.items() if k in wanted}
        self.none &= wanted
        self.removed &= wanted

    def mark_none(self, keys: Iterable[VmKey], had_points: frozenset[VmKey] | set[VmKey]) -> None:
        """EM has no point of these VMs. One its plan's latest session failed over from a point had
        points: they went with a permanent failover (of a snapshot replica); it was not never replicated."""
        for key in keys:
            (self.removed if key in had_points or key in self.removed else self.none).add(key)

    def gone(self, watched: set[str], found: set[str]) -> None:
        """Points read again by ID (`watched`) that EM no longer has: a VM whose newest point was in a DR
        state (no new point is made then, so none ages out) lost its points to a permanent failover."""
        for key, point in self.latest.items():
            if point.id in watched - found and point.state in DR_STATES:
                self.removed.add(key)

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
            if current is None or p.id != current.id:
                self.removed.discard(key)  # a new point: it is replicated again

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
            removed=frozenset(self.removed),
            rpo=MappingProxyType(rpo),
            complete=complete,
            read_at=read_at,
            read_ok_at=read_ok_at,
            read_requests=requests,
            read_errors=MappingProxyType(errors),
        )


def had_points(sessions: Iterable[Session]) -> set[VmKey]:
    """The VMs the plans' latest sessions failed over from a replica point: they had points then."""
    return {(s.backup_server, t.vm) for s in sessions for t in s.tasks if t.restore_point_id}
