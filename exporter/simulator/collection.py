"""EM's data collection from its backup servers, as the simulator plays it.

A real EM does not show a backup server's state live: it shows the copy it collected last, every 15
minutes by default, and at once when asked (`POST /api/backupServers/{ID}?action=collect`, 202 and a
Task). With `collection_interval_seconds` > 0 the simulator keeps that lag: everything EM serves about a
backup server's sessions is the world as it was when that server was last collected. 0 is live (the
demo and seed scenarios), as before.

A collection reads the backup server as it is when the collection begins, and EM shows it once the
collection has finished (`collection_duration_seconds` later)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only
    from exporter.simulator.scenario_model import Scenario


@dataclass
class Collection:
    """One collection someone asked for."""

    server: str
    started: float
    done_at: float | None  # None: it never finishes (fault)


@dataclass
class Collections:
    interval: float  # wall seconds between EM's own collections; 0: EM shows everything live
    duration: float  # wall seconds a collection takes
    born: float
    clock: Callable[[], float]
    lock: threading.RLock
    asked: dict[str, list[Collection]] = field(default_factory=dict)

    @classmethod
    def of(
        cls, scenario: Scenario, born: float, clock: Callable[[], float], lock: threading.RLock
    ) -> Collections:
        """The scenario's collections, its scenario seconds turned into wall seconds."""
        scale = scenario.time_scale
        return cls(scenario.collection_every / scale, scenario.collection_duration / scale, born, clock, lock)

    @property
    def live(self) -> bool:
        return self.interval <= 0

    def as_of(self, server: str, now: float | None = None) -> float:
        """The moment of the backup server's state that EM shows now."""
        now = self.clock() if now is None else now
        if self.live:
            return now
        # EM's own schedule: collections begin every `interval` from the start, each shown when done
        periodic_begin = (
            self.born + math.floor((now - self.born - self.duration) / self.interval) * self.interval
        )
        as_of = max(self.born, periodic_begin)
        with self.lock:
            done = [
                c.started for c in self.asked.get(server, ()) if c.done_at is not None and c.done_at <= now
            ]
        return max([as_of, *done])

    def ask(self, server: str, *, never_finishes: bool = False) -> Collection:
        now = self.clock()
        c = Collection(server, now, None if never_finishes else now + self.duration)
        with self.lock:
            self.asked.setdefault(server, []).append(c)
        return c

    def in_flight(self, server: str) -> int:
        now = self.clock()
        with self.lock:
            return sum(1 for c in self.asked.get(server, ()) if c.done_at is None or c.done_at > now)
