"""Asking EM to collect from a backup server while a failover runs there (`poll.collect`, off by default).

A real EM shows what it last collected from each backup server, every 15 minutes by default. While a
failover runs on a backup server (or for `after_start_seconds` after this exporter started a plan there)
this asks EM to collect from it every `interval_seconds`, follows the collection's task to its end, and
then polls at once, so what /metrics shows is about one interval old instead of up to 15 minutes.

Never two collections in flight for one server; never for a server with nothing running; a refusal (403:
the EM account's role may not collect) is logged once and that server is left alone for
`refused_pause_seconds`. Each collection's outcome is counted per backup server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from exporter.background_loop import BackgroundLoop
from exporter.config import CollectSettings
from exporter.em.errors import EMError
from exporter.em.model import Session
from exporter.polling.snapshot import Store

if TYPE_CHECKING:  # types only
    from exporter.em.client import EMClient

log = logging.getLogger(__name__)

# What became of a collection this exporter asked for (veeam_em_collections_total{outcome}).
CollectionOutcome = Literal["finished", "failed", "refused", "timeout", "lost"]
COLLECTION_OUTCOMES: tuple[CollectionOutcome, ...] = get_args(CollectionOutcome)
TICK_SECONDS = 1.0  # how often in-flight collections are asked after, and due ones asked for (at most)


@dataclass
class ServerCollections:
    """One backup server's collections: the one in flight, the last asked and finished, the pause."""

    backup_server_id: str = ""
    task_id: str | None = None  # the collection in flight
    asked_at: float = float("-inf")  # when the last collection was asked for (wall clock)
    # when the last one we asked for finished: EM's task then says the collection *started* ("Data
    # collection started. To view results, go to Sessions."), not that EM holds its data
    finished_at: float | None = None
    paused_until: float = 0.0  # refused: left alone until then
    wanted_until: float = 0.0  # a plan was started here: collect until then, even before its session shows
    urgent: bool = False  # collect at the next tick (after a start), whatever the interval says
    refusal_logged: bool = False


class Collections:
    def __init__(
        self, client: EMClient, settings: CollectSettings, store: Store, wake_poller: Callable[[], None]
    ) -> None:
        self.client = client
        self.settings = settings
        self.store = store
        self.wake_poller = wake_poller
        self.servers: dict[str, ServerCollections] = {}
        self.counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        tick = min(TICK_SECONDS, settings.interval_seconds / 10)
        self._loop = BackgroundLoop("collections", self.step, lambda: tick)
        self.clock: Callable[[], float] = time.time  # the intervals' clock (tests move a simulated one)

    def start(self) -> None:
        if self.settings.enabled:
            self._loop.start()

    def stop(self) -> None:
        self._loop.stop(timeout=5)

    def after_start(self, backup_server: str) -> None:
        """This exporter started a plan on this backup server: collect from it now, and for a while."""
        if not self.settings.enabled:
            return
        now = self.clock()
        with self._lock:
            server = self.servers.setdefault(backup_server, ServerCollections())
            server.wanted_until = now + self.settings.after_start_seconds
            # at once, unless one was asked within the interval: the next, on schedule, shows the start
            server.urgent = server.task_id is None and now - server.asked_at >= self.settings.interval_seconds
        self._loop.wake()

    def step(self) -> bool:
        """Follow the collections in flight; ask for the ones due. False: the loop goes on."""
        snap = self.store.current()
        now = self.clock()
        running = {s.backup_server for s in snap.sessions if s.active}
        ids = {p.backup_server: p.backup_server_id for p in snap.plans if p.backup_server_id}
        for name, server_id in ids.items():
            with self._lock:
                server = self.servers.setdefault(name, ServerCollections())
                server.backup_server_id = server_id
            if name in running:
                server.wanted_until = 0.0  # its session shows: it keeps collecting while it runs, no longer
            if server.task_id is not None:
                self._follow(name, server, now)
            elif self._due(name, server, running, now):
                self._ask(name, server, now)
        return False

    def _due(self, name: str, server: ServerCollections, running: set[str], now: float) -> bool:
        if now < server.paused_until:
            return False
        if name not in running and now >= server.wanted_until:
            return False  # nothing runs there: EM's own schedule will do
        return server.urgent or now - server.asked_at >= self.settings.interval_seconds

    def _ask(self, name: str, server: ServerCollections, now: float) -> None:
        server.urgent = False
        server.asked_at = now
        try:
            task = self.client.collect(server.backup_server_id)
        except EMError as exc:
            if exc.status == 403:
                server.paused_until = now + self.settings.refused_pause_seconds
                self._count(name, "refused")
                if not server.refusal_logged:
                    server.refusal_logged = True
                    log.warning(
                        "EM refused to collect from backup server %s (403): the EM account's role may "
                        "not ask for data collection (Portal Administrator may); not asked again for "
                        "%.0f minutes",
                        name,
                        self.settings.refused_pause_seconds / 60,
                    )
                return
            self._count(name, "failed")
            log.info("asking EM to collect from %s failed: %s", name, exc)
            return
        server.task_id = task.id

    def _follow(self, name: str, server: ServerCollections, now: float) -> None:
        assert server.task_id is not None
        try:
            task = self.client.task(server.task_id)
        except EMError as exc:
            if exc.status == 404:  # tasks live with EM's logon session; a re-logon loses them
                server.task_id = None
                self._count(name, "lost")
            elif now - server.asked_at > self.settings.timeout_seconds:
                server.task_id = None
                self._count(name, "timeout")
            return
        if task.state in ("Finished", "OperationFinished"):
            server.task_id = None
            if task.success is False:
                self._count(name, "failed")
                return
            server.finished_at = now
            self._count(name, "finished")
            self.wake_poller()  # the collection runs now: look again (its data shows once it is done)
        elif now - server.asked_at > self.settings.timeout_seconds:
            server.task_id = None
            self._count(name, "timeout")
            log.info("a collection from %s did not finish within %.0fs", name, self.settings.timeout_seconds)

    def _count(self, name: str, outcome: CollectionOutcome) -> None:
        with self._lock:
            self.counts[(name, outcome)] += 1
        self.store.publish()  # new figures: the next scrape renders afresh

    def stats(self) -> tuple[dict[tuple[str, str], int], dict[str, float]]:
        """Outcome counts, and when each server's last collection task finished (the collection began)."""
        with self._lock:
            counts = dict(self.counts)
            finished = {n: s.finished_at for n, s in self.servers.items() if s.finished_at is not None}
        return counts, finished


def data_as_of(sessions: tuple[Session, ...]) -> dict[str, float]:
    """Backup server -> EM's data of it is at least this new: the newest start or end time EM reported
    of its sessions and their VMs. Only such evidence counts: a collection's task ending says the
    collection started, not that EM holds its data (EM's own example: "Data collection started"). A lower
    bound: EM's data may be newer, with nothing new to show."""
    out: dict[str, float] = {}
    for s in sessions:
        times = [t for t in (s.start, s.end) if t is not None]
        times += [t for task in s.tasks for t in (task.start, task.end) if t is not None]
        if times:
            out[s.backup_server] = max(max(times), out.get(s.backup_server, 0.0))
    return out
