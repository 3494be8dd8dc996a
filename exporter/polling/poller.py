"""Background polling of EM into immutable snapshots. Fast while a failover runs, slow when all is idle.

A poll costs at most ceil(sessions / page size) + 2 requests (plus a logon, once per EM session), never
one per VM or session:
- full poll (a failover runs, or something changed): the query service's pages of sessions created in
  a sliding window, the plans (every `plans_refresh_seconds`, and at once when a new session names a
  plan not known yet), then queries of 80 replica points not read yet with what is left of the budget
  (`point_queries_per_poll` at most);
- quiet poll (every session in the window has finished): one request that counts the sessions in the
  window (a page of one reference: PagesCount is the count). The same count as the last full read means
  nothing new, and the poll's second request goes to the plans if due, else to replica points still
  unread. A different count turns the poll into a full one.

The window is asked for `filter_time_slack_seconds` (14 h) wider than needed: EM 13 documents its
DateTime filters as UTC, but older versions do not say, and a server reading the value as its own local
time must not hide a session. What the window really is, is then decided here, on `CreationTimeUTC`.
A quiet poll counts with the very filter value the last full read sent, so however the server reads it,
the same sessions match; the anchor moves at a full read, at the latest every `session_lookback_seconds`.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from types import MappingProxyType

from exporter.config import PollSettings
from exporter.em.client import EP_LOGON, EMClient
from exporter.em.errors import EMError
from exporter.em.model import Plan, Session, plan_name_conflicts
from exporter.polling.points import ReplicaPointCache
from exporter.polling.snapshot import Snapshot, Store

log = logging.getLogger(__name__)

PlanKey = tuple[str, str]  # (backup server, plan name): how EM ties a session to its plan


@dataclass(frozen=True)
class WindowRead:
    """What the last complete read of the session window returned, for quiet polls to compare with."""

    since_sent: float  # the CreationTime value the query carried (widened)
    count: int  # items EM answered for it (duplicates included: a count query counts them too)
    ids: frozenset[str]
    running: bool  # a session in it was still running


class Poller:
    def __init__(
        self, client: EMClient, settings: PollSettings, store: Store, clock: Callable[[], float] = time.time
    ) -> None:
        self.client = client
        self.settings = settings
        self.store = store
        self.clock = clock
        self._latest: dict[PlanKey, Session] = {}
        self._plans: tuple[Plan, ...] = ()
        self._plans_read_at: float | None = None
        self._conflicts: dict[str, dict[str, int]] = {}
        # None until a read covered the whole window (the first poll stops paging early).
        self._window: WindowRead | None = None
        self._count_unreliable = False  # this EM's count answers do not say how many there are
        self.points = ReplicaPointCache(client, settings.max_concurrent_requests, self._log_limited)
        self._last_success_start: float | None = None
        self._failures = 0
        self._poll_errors: Counter[str] = Counter()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_log: dict[str, float] = {}
        self._logons_before = 0

    # -- one cycle -------------------------------------------------------------------------

    def poll_once(self) -> Snapshot:
        started = self.clock()
        t0 = time.monotonic()
        before = sum(self.client.stats.copy().requests.values())
        self._logons_before = self._logon_requests()
        partial: list[tuple[str, str]] = []
        try:
            if self._quiet() and self._nothing_new(started):
                partial += self._quiet_poll(started, before)
            else:
                partial += self._full_poll(started, before)
        except EMError as exc:
            return self._publish_failure(exc.reason, str(exc), t0, before)
        duration = time.monotonic() - t0
        ok = not partial
        for reason, msg in partial:
            self._poll_errors[reason] += 1
            self._log_limited(reason, f"EM poll partly failed: {msg}")
        if ok:
            self._failures = 0
            self._last_success_start = started
        snap = self.store.publish(
            ready=True,
            up=ok,
            plans=self._plans,
            sessions=tuple(self._latest[k] for k in sorted(self._latest)),
            restore_points=MappingProxyType(dict(self.points.times)),
            last_success=started if ok else self.store.current().last_success,
            poll_duration=duration,
            poll_requests=self._requests_since(before),
            poll_errors=dict(self._poll_errors),
            em=self.client.stats.copy(),
        )
        log.debug("poll done in %.3fs: %d plans, %d sessions", duration, len(self._plans), len(self._latest))
        return snap

    def _full_poll(self, now: float, before: int) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        seen = self._window.ids if self._window is not None else frozenset()
        read_plans = self._plans_due(now)
        if read_plans:
            problems += self._read_plans(now)
        sessions, session_errors, answered = self._fetch_sessions(self._plans, now)
        problems += [("parse", e) for e in session_errors]
        known = {(p.backup_server, p.name) for p in self._plans}
        new = [s for s in sessions if s.id not in seen]
        if not read_plans and any((s.backup_server, s.plan) not in known for s in new):
            problems += self._read_plans(now)  # a new session of a plan we do not know yet
        self._merge(self._plans, sessions)
        budget = math.ceil(answered / self.client.page_size) + 2
        return problems + self._resolve_points(self._spare(budget, before))

    def _spare(self, budget: int, before: int) -> int:
        """Point queries this poll may still make: what its count, pages and plans left of the budget
        (a logon, once per EM session, is not charged), and at most point_queries_per_poll."""
        used = self._requests_since(before) - (self._logon_requests() - self._logons_before)
        return min(self.settings.point_queries_per_poll, budget - used)

    def _logon_requests(self) -> int:
        return sum(
            n for (endpoint, _), n in self.client.stats.copy().requests.items() if endpoint == EP_LOGON
        )

    def _plans_due(self, now: float) -> bool:
        return self._plans_read_at is None or now - self._plans_read_at >= self.settings.plans_refresh_seconds

    def _read_plans(self, now: float) -> list[tuple[str, str]]:
        plans, errors = self.client.plans()
        self._plans = tuple(plans)
        self._plans_read_at = now
        conflicts = plan_name_conflicts(self._plans)
        if conflicts != self._conflicts:
            self._conflicts = conflicts
            for server, names in sorted(conflicts.items()):
                log.warning(
                    "backup server %r has several cloud failover plans named %s (different tenants): "
                    "their sessions cannot be told apart by name; metrics show the first plan EM lists, "
                    "and a start must name the plan by ID",
                    server,
                    ", ".join(repr(n) for n in sorted(names)),
                )
        return [("parse", e) for e in errors]

    def _quiet(self) -> bool:
        """Nothing runs: every session of the last complete window read, and every plan's latest, finished."""
        return (
            self._window is not None
            and not self._window.running
            and not any(s.active for s in self._latest.values())
        )

    def _nothing_new(self, now: float) -> bool:
        """One small request: does EM hold exactly the sessions the last full read got for its filter?"""
        window = self._window
        assert window is not None
        if self._count_unreliable:
            return False
        if window.since_sent < self._since_sent(now) - self.settings.session_lookback_seconds:
            return False  # time to move the anchor: a full read
        count = self.client.session_count(window.since_sent)
        if count is None:
            self._count_unreliable = True
            log.info("EM's query answers do not say how many sessions there are: every poll reads them")
            return False
        return count == window.count

    def _quiet_poll(self, now: float, before: int) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if self._plans_due(now):
            problems += self._read_plans(now)
            self._merge(self._plans, [])  # a deleted plan's session goes with it
        return problems + self._resolve_points(self._spare(2, before))

    def _requests_since(self, before: int) -> int:
        return sum(self.client.stats.copy().requests.values()) - before

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

    def _since(self, now: float) -> float:
        if self._last_success_start is None:
            return now - self.settings.history_seconds
        since = self._last_success_start - self.settings.session_lookback_seconds
        for s in self._latest.values():
            if s.active:
                # A running session must be re-read until it stops, however long ago it began.
                since = min(since, s.start if s.start is not None else now - self.settings.history_seconds)
        return since

    def _since_sent(self, now: float) -> float:
        return float(int(self._since(now) - self.settings.filter_time_slack_seconds))

    def _fetch_sessions(self, plans: tuple[Plan, ...], now: float) -> tuple[list[Session], list[str], int]:
        """The sessions of the window (exactly, by CreationTimeUTC), the items EM could not read, and how
        many items EM answered for the widened query."""
        initial = self._last_success_start is None
        wanted = {(p.backup_server, p.name) for p in plans}
        found: set[PlanKey] = set()
        sessions: list[Session] = []
        errors: list[str] = []
        newest_first = True
        since_sent = self._since_sent(now)
        for page in self.client.session_pages(since_sent):
            starts = [s.start or 0.0 for s in sessions[-1:] + list(page.items)]
            newest_first = newest_first and all(a >= b for a, b in pairwise(starts))
            sessions.extend(page.items)
            errors.extend(page.errors)
            found.update((s.backup_server, s.plan) for s in page.items)
            # Pages come newest first: once every plan has a session, older pages cannot change the
            # answer. Later polls read the whole (short) window, to refresh sessions still running.
            # An EM that ignores the sort order gets no shortcut: we read on to the end.
            if initial and newest_first and wanted <= found:
                break
        else:
            self._window = WindowRead(
                since_sent=since_sent,
                count=len(sessions) + len(errors),
                ids=frozenset(s.id for s in sessions),
                running=any(s.active for s in sessions),
            )
        answered = len(sessions) + len(errors)
        # EM compares whole seconds; so do we. A session without a CreationTime is kept (cannot tell).
        floor = float(int(self._since(now)))
        return [s for s in sessions if s.start is None or s.start >= floor], errors, answered

    def _merge(self, plans: tuple[Plan, ...], sessions: list[Session]) -> None:
        known = {(p.backup_server, p.name) for p in plans}
        for s in sessions:
            key = (s.backup_server, s.plan)
            if key not in known:
                continue
            current = self._latest.get(key)
            if (
                current is None
                or current.id == s.id
                or (s.start or 0.0, s.id) > (current.start or 0.0, current.id)
            ):
                self._latest[key] = s
        for key in list(self._latest):
            if key not in known:
                del self._latest[key]

    def _resolve_points(self, queries: int) -> list[tuple[str, str]]:
        needed = {t.restore_point_id for s in self._latest.values() for t in s.tasks if t.restore_point_id}
        return self.points.resolve(needed, queries)

    # -- logging ---------------------------------------------------------------------------

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

    def wake(self) -> None:
        """Poll now, e.g. right after a failover was started."""
        self._wake.set()

    def run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.poll_once()
            except Exception:  # a bug must not stop polling for good
                log.exception("unexpected error in poll")
                self._failures += 1
            # A fixed rate, from poll start to poll start: a slow EM must not stretch the cadence.
            self._wake.wait(max(0.0, started + self.next_delay() - time.monotonic()))
            self._wake.clear()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="em-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.client.timeout + 5)
