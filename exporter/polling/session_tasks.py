"""The VM tasks of each plan's latest session, where EM's query answer leaves them out.

EM's query examples carry VM tasks only for running sessions (finished ones show an empty
`<CloudFailoverTasks />`), and an EM may leave them out of every query answer. So a latest session whose
answer has none is read as an entity (`GET /cloud/failoverSessions/{id}?format=Entity`): a running one each
poll, a finished one once. The entity may have none either: then the tasks last seen are kept. A known task
list is never replaced by an empty one (poller.merge_latest keeps it too). At most
`poll.session_reads_per_poll` reads a poll, counted in its budget.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from exporter.em.errors import EMError
from exporter.em.model import Session
from exporter.polling.points import Problem
from exporter.polling.window import PlanKey


class SessionReader(Protocol):
    """What this needs of the EM client."""

    def session_entity(self, session_id: str) -> Session: ...


class SessionTasks:
    def __init__(self, client: SessionReader, per_poll: int) -> None:
        self.client = client
        self.per_poll = per_poll
        self._bare: set[str] = set()  # sessions the last query answer gave without tasks
        self._read_finished: set[str] = set()  # finished sessions read once already

    def note(self, answered: list[Session]) -> None:
        """What a query answered: the sessions it gave without tasks want their entity read."""
        for s in answered:
            (self._bare.discard if s.tasks else self._bare.add)(s.id)

    def complete(self, latest: dict[PlanKey, Session], limit: int) -> tuple[int, list[Problem]]:
        """Reads the entities of the latest sessions whose answer lacked tasks, at most `limit` (and
        per_poll); returns how many it read and what failed."""
        reads, problems = 0, list[Problem]()
        for key, s in sorted(latest.items()):
            if (s.id not in self._bare and s.tasks) or (not s.active and s.id in self._read_finished):
                continue
            if reads >= min(limit, self.per_poll):
                break
            reads += 1
            try:
                entity = self.client.session_entity(s.id)
            except EMError as exc:
                problems.append((exc.reason, f"session {s.id}: {exc}"))
                continue
            if not s.active:
                self._read_finished.add(s.id)
            if entity.tasks:
                latest[key] = replace(s, tasks=entity.tasks)
        ids = {s.id for s in latest.values()}
        self._bare &= ids
        self._read_finished &= ids
        return reads, problems
