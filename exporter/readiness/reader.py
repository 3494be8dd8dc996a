"""Readiness before the disaster: each plan VM's newest replica point, kept current cheaply, in a loop of
its own (its requests never lengthen a poll of the failover sessions).

Points name their VM and backup server, not a plan: they meet plan VMs by (backup server, VM name).
- First read: the query service's points newest first, page after page (at most `pages_per_read` a
  read, the next read going on at once where this one stopped), until every plan VM has a point, the
  pages end, or the points are older than every plan's RPO.
- Then every `interval_seconds`: the newest pages again, down to a floor (`_read_new`). EM shows a
  backup server's points as of its last collection, so a point shown late is still newer than the
  newest one shown of its server before, and than the last read less EM's collection lag. With nothing
  new that is a request or two; with new points, a page per `em.page_size` of them.
- A point's State changes without a new point (failover, undo, failback): the points a recent failover
  session names, and the newest point of each VM in a DR state, are read again by ID each read.
- A VM with no point, or one older than its RPO, is asked for by name (checks.py).
No DateTime filter is sent: before 13.x EM does not say whether it reads one as UTC or local time.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from exporter.background_loop import BackgroundLoop
from exporter.config import ReadinessSettings
from exporter.em.errors import EMError
from exporter.em.model import LookupForm, Page, Plan, ReplicaPoint, Session
from exporter.em.stats import APART_FROM_POLLS
from exporter.polling.snapshot import Store
from exporter.readiness.checks import ChecksByName
from exporter.readiness.replica_book import ReplicaBook, had_points
from exporter.readiness.state import VmKey

if TYPE_CHECKING:  # the client is passed in; only its type is needed here
    from exporter.em.client import EMClient

log = logging.getLogger(__name__)
Problem = tuple[str, str]

# The points of a failover session are read again until this long after it ended: their State changes.
WATCH_AFTER_END_SECONDS = 3600.0


def plan_vms(plans: Iterable[Plan]) -> set[VmKey]:
    return {(p.backup_server, vm) for p in plans for vm in p.vms}


class ReplicaReader:
    def __init__(
        self,
        client: EMClient,
        settings: ReadinessSettings,
        store: Store,
        clock: Callable[[], float] = time.time,
        lookup_form: Callable[[], LookupForm | None] = lambda: None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.store = store
        self.clock = clock
        self.lookup_form = lookup_form  # how this EM finds points by ID, once the poller has learnt it
        self.book = ReplicaBook()
        self.first_page = 1  # the first read's next page; 0 once the first read is done
        self.checks = ChecksByName(client, settings, self.book)
        self._last_read: float | None = None
        self._last_ok: float | None = None  # when the last read that fully succeeded began
        self._failed = False
        self._errors: Counter[str] = Counter()  # reason -> reads that failed or partly failed for it
        self._unreadable: list[str] = []  # this read's points EM sent that could not be read
        self._loop = BackgroundLoop("em-readiness", self._step, self.next_delay)

    def read_once(self) -> list[Problem]:
        apart = APART_FROM_POLLS.set(True)  # no poll's requests: polls count and budget their own
        try:
            return self._read()
        finally:
            APART_FROM_POLLS.reset(apart)

    def _read(self) -> list[Problem]:
        snap = self.store.current()
        if not snap.plans:
            return []  # the poller has not read the plans yet
        now = self.clock()
        before = self.client.stats.apart  # this read's requests, retries and logons included
        self.book.want(plan_vms(snap.plans))
        problems: list[Problem] = []
        self._unreadable = []
        try:
            if self.first_page:
                self._first_read(snap.plans, now)
            else:
                self._read_new(now)
            self._watch(snap.sessions, now)
            if not self.first_page:
                self.checks.run(snap.plans, now, had_points(snap.sessions))
        except EMError as exc:
            problems.append((exc.reason, str(exc)))
        problems += [("parse", message) for message in self._unreadable[:1]]
        for reason in {reason for reason, _ in problems}:
            self._errors[reason] += 1
        self._last_read = now
        self._failed = bool(problems)
        if not problems:
            self._last_ok = now
        rpo = {(p.backup_server, p.name): self.settings.rpo_for(p.name, p.id) for p in snap.plans}
        requests = self.client.stats.apart - before
        readiness = self.book.value(
            rpo, self.first_page == 0, now, requests, dict(self._errors), self._last_ok
        )
        self.store.publish(readiness=readiness, em=self.client.stats.copy())
        return problems

    def _first_read(self, plans: tuple[Plan, ...], now: float) -> None:
        horizon = now - max(self.settings.rpo_for(p.name, p.id) for p in plans)
        for _ in range(self.settings.pages_per_read):
            page = self._page(self.first_page, now)
            book = self.book
            if not page.items or page.next_path is None:
                # every point read: these have none (asked for by name again after recheck_seconds)
                missing = book.wanted - book.latest.keys()
                book.mark_none(missing, had_points(self.store.current().sessions))
                self.checks.checked.update(dict.fromkeys(missing, now))
                break
            if book.wanted <= book.latest.keys() or min(p.created for p in page.items) < horizon:
                break  # the VMs not seen yet are asked for by name
            self.first_page += 1
        else:
            return  # the next read goes on at this page
        self.first_page = 0
        log.info(
            "replica points: first read done, %d of %d plan VMs have one",
            len(self.book.latest),
            len(self.book.wanted),
        )

    def _read_new(self, now: float) -> None:
        """Pages newest first down to the floor: a point EM shows now and did not at the last read was
        made after its backup server's last collection before that read, so after both the newest point
        of that server seen then and the last read less EM's collection lag."""
        last = self._last_read if self._last_read is not None else now
        lag = self.settings.collection_lag_seconds
        newest = self.book.newest_by_server
        servers = {server for server, _ in self.book.wanted}
        floor = min((max(newest.get(s, float("-inf")), last - lag) for s in servers), default=last - lag)
        floor -= self.settings.lag_margin_seconds
        for number in range(1, self.settings.pages_per_read + 1):
            page = self._page(number, now)
            if not page.items or page.next_path is None or min(p.created for p in page.items) <= floor:
                return
        log.warning(
            "replica points: more new points than %d pages a read (readiness.pages_per_read); the rest "
            "are found by the checks by name",
            self.settings.pages_per_read,
        )

    def _page(self, number: int, now: float) -> Page[ReplicaPoint]:
        page = self.client.points.newest(number)
        self._unreadable += page.errors
        self.book.take(page.items, now)
        return page

    def _watch(self, sessions: Iterable[Session], now: float) -> None:
        """Read again the points whose State may have changed: those of recent failover sessions, and each
        VM's newest point while it is in a DR state (an undo or failback makes no new point)."""
        ids = self.book.in_dr()
        for s in sessions:
            if s.active or (s.end is not None and now - s.end < WATCH_AFTER_END_SECONDS):
                ids.update(t.restore_point_id for t in s.tasks if t.restore_point_id)
        if not ids:
            return
        self._unreadable += read_again(
            self.client, self.book, ids, self.lookup_form() or "urn", now, self.settings.checks_per_read
        )

    # -- scheduling ------------------------------------------------------------------------

    def next_delay(self) -> float:
        if not self.store.current().plans:
            return 1.0  # waiting for the poller's first plans
        return 1.0 if self.first_page and not self._failed else self.settings.interval_seconds

    def _step(self) -> None:
        for reason, message in self.read_once():
            log.warning("reading replica points failed (%s): %s", reason, message)

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop(timeout=self.client.session.timeout + 5)


def read_again(
    client: EMClient, book: ReplicaBook, ids: set[str], form: LookupForm, now: float, one_by_one: int
) -> list[str]:
    """The points of these IDs, read again (their State), in the form this EM answers (`entity`: one GET
    each, at most `one_by_one`); those EM no longer has are gone. Returns what could not be read."""
    if form == "entity":
        asked = set(sorted(ids)[:one_by_one])
        found = [p for p in (client.points.by_id(pid) for pid in sorted(asked)) if p is not None]
        book.take(found, now)
        book.gone(asked, {p.id for p in found})
        return []
    points, errors = client.points.by_ids(ids, form)
    book.take(points, now)
    if not errors:
        book.gone(ids, {p.id for p in points})
    return list(errors)
