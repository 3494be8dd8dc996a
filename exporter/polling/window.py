"""Which failover sessions a poll reads: the window of creation times, widened for EM's way of reading
DateTime filters, filtered exactly on our side, and counted cheaply while nothing runs.

The window is asked for `filter_time_slack_seconds` (14 h) wider than needed: EM 13 documents its
DateTime filters as UTC, but older versions do not say, and a server reading the value as its own local
time must not hide a session. What the window really is, is then decided here, on `CreationTimeUTC`.
A quiet poll counts with the very filter value the last full read sent, so however the server reads it,
the same sessions match; the anchor moves at a full read, at the latest every `session_lookback_seconds`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

from exporter.config import PollSettings
from exporter.em.model import Session

if TYPE_CHECKING:  # the client is passed in; only its type is needed here
    from exporter.em.client import EMClient


log = logging.getLogger(__name__)

PlanKey = tuple[str, str]  # (backup server, plan name): how EM ties a session to its plan


@dataclass(frozen=True)
class WindowRead:
    """What the last complete read of the window returned, for quiet polls to compare with."""

    since_sent: float  # the CreationTime value the query carried (widened)
    count: int  # items EM answered for it (duplicates included: a count query counts them too)
    ids: frozenset[str]
    running: bool  # a session in it was still running


@dataclass(frozen=True)
class Read:
    sessions: list[Session]  # exactly the window, by CreationTimeUTC
    errors: list[str]  # items EM sent that could not be read
    answered: int  # items EM answered for the widened query: what the poll's budget follows


class SessionWindow:
    def __init__(self, client: EMClient, settings: PollSettings) -> None:
        self.client = client
        self.settings = settings
        self.last: WindowRead | None = None  # None until a read covered the whole window
        self._count_unreliable = False  # this EM's count answers do not say how many there are

    def since(self, now: float, last_success: float | None, latest: Iterable[Session]) -> float:
        if last_success is None:
            return now - self.settings.history_seconds
        since = last_success - self.settings.session_lookback_seconds
        for s in latest:
            if s.active:
                # A running session must be re-read until it stops, however long ago it began.
                since = min(since, s.start if s.start is not None else now - self.settings.history_seconds)
        return since

    def _sent(self, since: float) -> float:
        return float(int(since - self.settings.filter_time_slack_seconds))

    def quiet(self, latest: Iterable[Session]) -> bool:
        """Nothing runs: every session of the last complete read, and every plan's latest, finished."""
        return self.last is not None and not self.last.running and not any(s.active for s in latest)

    def nothing_new(self, since: float) -> bool:
        """One small request: does EM hold exactly the sessions the last full read got for its filter?"""
        last = self.last
        assert last is not None
        if self._count_unreliable:
            return False
        if last.since_sent < self._sent(since) - self.settings.session_lookback_seconds:
            return False  # time to move the anchor: a full read
        count = self.client.session_count(last.since_sent)
        if count is None:
            self._count_unreliable = True
            log.info("EM's query answers do not say how many sessions there are: every poll reads them")
            return False
        return count == last.count

    def read(self, since: float, first: bool, wanted: set[PlanKey]) -> Read:
        """The sessions created since `since`. The first read of all stops paging once every plan in
        `wanted` has a session: pages come newest first, so older pages cannot change the answer."""
        found: set[PlanKey] = set()
        sessions: list[Session] = []
        errors: list[str] = []
        newest_first = True
        since_sent = self._sent(since)
        for page in self.client.session_pages(since_sent):
            starts = [s.start or 0.0 for s in sessions[-1:] + list(page.items)]
            newest_first = newest_first and all(a >= b for a, b in pairwise(starts))
            sessions.extend(page.items)
            errors.extend(page.errors)
            found.update((s.backup_server, s.plan) for s in page.items)
            # An EM that ignores the sort order gets no shortcut: we read on to the end.
            if first and newest_first and wanted <= found:
                break
        else:
            self.last = WindowRead(
                since_sent=since_sent,
                count=len(sessions) + len(errors),
                ids=frozenset(s.id for s in sessions),
                running=any(s.active for s in sessions),
            )
        # EM compares whole seconds; so do we. A session without a CreationTime is kept (cannot tell).
        floor = float(int(since))
        exact = [s for s in sessions if s.start is None or s.start >= floor]
        return Read(exact, errors, len(sessions) + len(errors))
