"""The one immutable picture the scrape path reads: what EM said at the last poll, and how polling goes."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from exporter.em.model import Plan, Session
from exporter.em.stats import RequestStats
from exporter.readiness.state import Readiness

_EMPTY: Mapping[str, float] = MappingProxyType({})


@dataclass(frozen=True)
class Snapshot:
    generation: int = 0
    ready: bool = False  # the first poll has finished, well or not
    up: bool = False  # the last poll fully succeeded
    plans: tuple[Plan, ...] = ()
    sessions: tuple[Session, ...] = ()  # the latest session of each plan that has one
    restore_points: Mapping[str, float] = field(
        default_factory=lambda: _EMPTY
    )  # replica point id -> its CreationTimeUTC
    last_success: float | None = None  # when the last fully successful poll started
    poll_duration: float = 0.0
    poll_requests: int = 0  # EM requests the last poll made
    poll_errors: Mapping[str, int] = field(default_factory=dict)  # reason -> polls that failed for it
    em: RequestStats = field(default_factory=RequestStats)
    # (backup server, plan name) -> plan reads that found its VM list changed
    plan_vm_changes: Mapping[tuple[str, str], int] = field(default_factory=dict)
    readiness: Readiness = field(default_factory=Readiness)  # each plan VM's newest replica point

    def replace(self, **changes: object) -> Snapshot:
        return dataclasses.replace(self, generation=self.generation + 1, **changes)  # type: ignore[arg-type]


def as_shown(snap: Snapshot, stale_after: float, now: float) -> Snapshot:
    """What /metrics and /status show of a snapshot (one rule for both): all of it, the last known
    failover data included while EM cannot be read; only once EM has been unreadable for more than
    `stale_after` seconds (poll.stale_after_seconds; 0: never) is that data left out, never shown as
    current. Its age is always there: time() - veeam_em_last_successful_poll_timestamp_seconds."""
    if snap.last_success is not None and (stale_after <= 0 or now - snap.last_success <= stale_after):
        return snap
    return dataclasses.replace(
        snap, plans=(), sessions=(), restore_points=_EMPTY, plan_vm_changes={}, readiness=Readiness()
    )


class Store:
    """Holds the current snapshot. Readers take a reference; writers swap in a whole new one."""

    def __init__(self) -> None:
        self._snapshot = Snapshot()
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener` (quickly: it runs in the publisher's thread) after each publish."""
        self._listeners.append(listener)

    def current(self) -> Snapshot:
        return self._snapshot

    def publish(self, **changes: object) -> Snapshot:
        with self._lock:
            self._snapshot = snapshot = self._snapshot.replace(**changes)
        for listener in self._listeners:
            listener()
        return snapshot
