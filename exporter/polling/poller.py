"""Background polling of EM into immutable snapshots. Fast while a failover runs, slow when all is idle.

A poll costs at most ceil(sessions / page size) + 2 requests (plus a logon, once per EM session), never
one per VM or session:
- full poll (a failover runs, or something changed): the query service's pages of sessions created in
  a sliding window (`window.py`), the plans when due (`plans.py`), then queries of 80 replica points not
  read yet with what is left of the budget (`points.py`, `point_queries_per_poll` at most);
- quiet poll (every session in the window has finished): one request that counts the sessions in the
  window. The same count as the last full read means nothing new, and the poll's second request goes
  to the plans if due, else to replica points still unread. A different count makes it a full poll.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import replace
from types import MappingProxyType
from typing import TYPE_CHECKING

from exporter.background_loop import BackgroundLoop
from exporter.config import PollSettings
from exporter.em.errors import EMError
from exporter.em.model import Session
from exporter.polling.plans import PlanBook
from exporter.polling.points import ReplicaPointCache
from exporter.polling.session_tasks import SessionTasks
from exporter.polling.snapshot import Snapshot, Store
from exporter.polling.window import PlanKey, SessionWindow

if TYPE_CHECKING:  # the client is passed in; only its type is needed here
    from exporter.em.client import EMClient


log = logging.getLogger(__name__)
Problem = tuple[str, str]  # (error reason, message)


class Poller:
    def __init__(
        self, client: EMClient, settings: PollSettings, store: Store, clock: Callable[[], float] = time.time
    ) -> None:
        self.client = client
        self.settings = settings
        self.store = store
        self.clock = clock
        self.plans = PlanBook(client, settings.plans_refresh_seconds)
        self.window = SessionWindow(client, settings)
        self.points = ReplicaPointCache(client, settings.max_concurrent_requests, self._log_limited)
        self.tasks = SessionTasks(client, settings.session_reads_per_poll)
        self._latest: dict[PlanKey, Session] = {}
        self._last_success_start: float | None = None
        self._failures = 0
        self._poll_errors: Counter[str] = Counter()
        self._last_log: dict[str, float] = {}
        self._loop = BackgroundLoop("em-poller", self._step, self.next_delay)

    def poll_once(self) -> Snapshot:
        started = self.clock()
        t0 = time.monotonic()
        stats = self.client.stats
        before, charged_before = stats.polled, stats.polled_charged
        since = self.window.since(started, self._last_success_start, self._latest.values())
        try:
            if self.window.quiet(self._latest.values()) and self.window.nothing_new(since):
                partial = self._quiet_poll(started, charged_before)
            else:
                partial = self._full_poll(started, since, charged_before)
        except EMError as exc:
            return self._publish_failure(exc.reason, str(exc), t0, before)
        for reason, msg in partial:
            self._poll_errors[reason] += 1
            self._log_limited(reason, f"EM poll partly failed: {msg}")
        ok = not partial
        if ok:
            self._failures = 0
            self._last_success_start = started
        duration = time.monotonic() - t0
        log.debug(
            "poll done in %.3fs: %d plans, %d sessions", duration, len(self.plans.plans), len(self._latest)
        )
        return self.store.publish(
            ready=True,
            up=ok,
            plans=self.plans.plans,
            sessions=tuple(self._latest[k] for k in sorted(self._latest)),
            restore_points=MappingProxyType(dict(self.points.times)),
            last_success=started if ok else self.store.current().last_success,
            poll_duration=duration,
            poll_requests=self._requests_since(before),
            poll_errors=dict(self._poll_errors),
            em=self.client.stats.copy(),
            plan_vm_changes=MappingProxyType(dict(self.plans.vm_list_changes)),
        )

    def _full_poll(self, now: float, since: float, charged_before: int) -> list[Problem]:
        problems: list[Problem] = []
        seen = self.window.last.ids if self.window.last is not None else frozenset()
        read_plans = self.plans.due(now)
        if read_plans:
            problems += self.plans.read(now)
        read = self.window.read(since, self._last_success_start is None, self.plans.named())
        problems += [("parse", e) for e in read.errors]
        known = self.plans.named()
        new = [s for s in read.sessions if s.id not in seen]
        if not read_plans and any((s.backup_server, s.plan) not in known for s in new):
            problems += self.plans.read(now)  # a new session of a plan we do not know yet
        self.tasks.note(read.sessions)
        self._merge(read.sessions)
        reads, missing = self.tasks.complete(self._latest, self.settings.session_reads_per_poll)
        budget = math.ceil(read.answered / self.client.page_size) + 2 + reads
        return problems + missing + self._resolve_points(self._spare(budget, charged_before))

    def _quiet_poll(self, now: float, charged_before: int) -> list[Problem]:
        problems: list[Problem] = []
        if self.plans.due(now):
            problems += self.plans.read(now)
            self._merge([])  # a deleted plan's session goes with it
        _, missing = self.tasks.complete(self._latest, self._spare(2, charged_before))
        return problems + missing + self._resolve_points(self._spare(2, charged_before))

    def _spare(self, budget: int, charged_before: int) -> int:
        """Point queries this poll may still make: what its count, pages and plans left of the budget
        (a logon, once per EM session, is not charged), and at most point_queries_per_poll."""
        used = self.client.stats.polled_charged - charged_before
        return min(self.settings.point_queries_per_poll, budget - used)

    def _requests_since(self, before: int) -> int:
        return self.client.stats.polled - before

    def _publish_failure(self, reason: str, message: str, t0: float, before: int) -> Snapshot:
        # Keep the last known data: a blind exporter says so through veeam_em_up and the last-success
        # timestamp rather than by zeroing or dropping series.
        self._failures += 1
        self._poll_errors[reason] += 1
        self._log_limited(reason, f"EM poll failed: {message}")
        return self.store.publish(
            ready=True,
            up=False,
            poll_duration=time.monotonic() - t0,
            poll_requests=self._requests_since(before),
            poll_errors=dict(self._poll_errors),
            em=self.client.stats.copy(),
        )

    def _merge(self, sessions: list[Session]) -> None:
        merge_latest(self._latest, sessions, self.plans.named())

    def _resolve_points(self, queries: int) -> list[Problem]:
        needed = {t.restore_point_id for s in self._latest.values() for t in s.tasks if t.restore_point_id}
        return self.points.resolve(needed, queries)

    def _log_limited(self, reason: str, message: str) -> None:
        # While EM is down every poll fails the same way: say it once a minute, not once a poll.
        now = time.monotonic()
        if now - self._last_log.get(reason, -1e9) >= 60:
            self._last_log[reason] = now
            log.warning("%s", message)
        else:
            log.debug("%s", message)

    # -- scheduling ------------------------------------------------------------------------

    def next_delay(self) -> float:
        s = self.settings
        if self._failures:
            base = min(s.max_backoff_seconds, s.active_interval_seconds * 2.0 ** min(self._failures - 1, 30))
            return base * random.uniform(0.8, 1.2)  # jitter: many exporters must not retry in step
        active = any(x.active for x in self._latest.values())
        return s.active_interval_seconds if active else s.idle_interval_seconds

    def _step(self) -> None:
        try:
            self.poll_once()
        except Exception:  # a bug must not stop polling for good
            log.exception("unexpected error in poll")
            self._failures += 1

    def wake(self) -> None:
        """Poll now, e.g. right after a failover was started."""
        self._loop.wake()

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop(timeout=self.client.session.timeout + 5)


def merge_latest(latest: dict[PlanKey, Session], sessions: list[Session], known: Collection[PlanKey]) -> None:
    """Keep each plan's latest session, however old; drop those of plans EM no longer lists."""
    for s in sessions:
        key = (s.backup_server, s.plan)
        if key not in known:
            continue
        current = latest.get(key)
        newer = current is None or (s.start or 0.0, s.id) > (current.start or 0.0, current.id)
        if current is not None and current.id == s.id and current.tasks and not s.tasks:
            s = replace(s, tasks=current.tasks)  # a known task list is never replaced by an empty one
        if newer or (current is not None and current.id == s.id):
            latest[key] = s
    for key in list(latest):
        if key not in known:
            del latest[key]
