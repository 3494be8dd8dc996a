"""Replica point times for the VMs of the sessions shown: each point read once, within a poll's budget.

EM does not document which form a UID filter value takes for CloudVmReplicaPoint (other query types
show the URN in some pages, the bare GUID in others), so the form is learnt: the URN first, then the
bare GUID, then `GET /cloud/vmReplicaPoints/{id}?format=Entity` one point at a time. The first form that
finds a point that exists is kept for the life of the process. Until a point is read, and for points no
form finds, its time comes from its name (`vm@YYYY-MM-DD HH:MM:SS`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from exporter.em.errors import EMError
from exporter.em.model import LOOKUP_FORMS, LookupForm, ReplicaPoint

if TYPE_CHECKING:  # the client is passed in; only its type is needed here
    from exporter.em.client import EMClient


log = logging.getLogger(__name__)

Problem = tuple[str, str]  # (error reason, message)


class ReplicaPointCache:
    def __init__(
        self, client: EMClient, max_concurrent: int, log_limited: Callable[[str, str], None]
    ) -> None:
        self.client = client
        self.max_concurrent = max_concurrent
        self.times: dict[str, float] = {}
        self.form: LookupForm | None = None  # the form this EM answered, once known
        self._unresolvable: set[str] = set()
        self._tried: list[LookupForm] = []  # forms that found nothing so far, while none is known
        self._log_limited = log_limited

    def resolve(self, needed: set[str], queries: int) -> list[Problem]:
        """Read points of `needed` not read yet, with at most `queries` requests."""
        # Keep only points of the sessions shown, so memory follows the plans, not the history.
        self.times = {pid: t for pid, t in self.times.items() if pid in needed}
        self._unresolvable &= needed
        new = sorted(needed - self.times.keys() - self._unresolvable)
        if not new or queries <= 0:
            return []
        if self.form is None:
            return self._probe(new, queries)
        if self.form == "entity":
            return self._read_each(new[:queries])
        return self._read_chunks(new[: queries * self.client.points_per_query], self.form)

    def _probe(self, new: list[str], queries: int) -> list[Problem]:
        """Find the form this EM answers, on the first chunk of points, one request per form tried; a
        poll whose budget ends mid-way goes on with the next form at the next poll."""
        chunk = new[: self.client.points_per_query]
        for form in LOOKUP_FORMS:
            if form in self._tried:
                continue
            if queries <= 0:
                return []
            queries -= 1
            try:
                found = (
                    self._get_one(chunk[0])
                    if form == "entity"
                    else self.client.replica_points(chunk, form)[0]
                )
            except EMError as exc:
                if exc.reason != "http_4xx":
                    return [(exc.reason, str(exc))]
                found = []  # this EM refuses that form: try the next
            if not found:
                self._tried.append(form)
            else:
                self.form = form
                log.info("EM finds replica points by %s", _FORM_TEXT[form])
                self._keep(found)
                rest = [p for p in (chunk[1:] if form == "entity" else chunk) if p not in self.times]
                if form != "entity":
                    self._unresolvable.update(rest)
                return []
        # No form found any of them: deleted points, or an EM that cannot look points up at all.
        self._tried.clear()
        self._unresolvable.update(chunk)
        self._log_limited("points", "cannot read replica points by UID or by ID; using their names")
        return []

    def _read_chunks(self, batch: list[str], form: LookupForm) -> list[Problem]:
        n = self.client.points_per_query
        chunks = [batch[i : i + n] for i in range(0, len(batch), n)]
        problems: list[Problem] = []

        def query(chunk: list[str]) -> tuple[list[ReplicaPoint], tuple[str, ...]] | EMError:
            try:
                return self.client.replica_points(chunk, form)
            except EMError as exc:
                return exc

        with ThreadPoolExecutor(max_workers=min(len(chunks), self.max_concurrent)) as pool:
            for chunk, outcome in zip(chunks, pool.map(query, chunks), strict=True):
                if isinstance(outcome, EMError):
                    if outcome.reason == "http_4xx":
                        self._unresolvable.update(chunk)
                        self._log_limited(
                            "points", f"cannot read replica points ({outcome}); using their names"
                        )
                    else:
                        problems.append((outcome.reason, str(outcome)))
                    continue
                points, errors = outcome
                self._keep(points)
                self._unresolvable.update(set(chunk) - self.times.keys())
                problems += [("parse", e) for e in errors]
        return problems

    def _read_each(self, ids: list[str]) -> list[Problem]:
        problems: list[Problem] = []
        for pid in ids:
            try:
                found = self._get_one(pid)
            except EMError as exc:
                problems.append((exc.reason, str(exc)))
                continue
            self._keep(found)
            if not found:
                self._unresolvable.add(pid)
        return problems

    def _get_one(self, pid: str) -> list[ReplicaPoint]:
        point = self.client.replica_point(pid)
        return [] if point is None else [point]

    def _keep(self, points: Iterable[ReplicaPoint]) -> None:
        for p in points:
            self.times[p.id] = p.created


_FORM_TEXT: dict[LookupForm, str] = {
    "urn": 'UID=="urn:veeam:CloudVmReplicaPoint:<id>" queries',
    "guid": 'UID=="<id>" queries',
    "entity": "GET /cloud/vmReplicaPoints/{id} (one request per point)",
}
