"""Checks by name: a plan VM with no replica point, or one older than its RPO, asked for by its VM name
(`VmName=="..."`, newest first). "Never replicated" is then EM's answer, not a guess, and an alert never
rests on a point the newest-first reads missed. Each VM again only after `recheck_seconds`; an EM that
refuses the filter (4xx) is asked no more."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from exporter.config import ReadinessSettings
from exporter.em.errors import EMError
from exporter.em.model import Plan
from exporter.readiness.replica_book import ReplicaBook
from exporter.readiness.state import VmKey

if TYPE_CHECKING:  # the client is passed in; only its type is needed here
    from exporter.em.client import EMClient

log = logging.getLogger(__name__)


class ChecksByName:
    def __init__(self, client: EMClient, settings: ReadinessSettings, book: ReplicaBook) -> None:
        self.client = client
        self.settings = settings
        self.book = book
        self.checked: dict[VmKey, float] = {}  # when each VM was last asked for (or found to have none)
        self.refused = False

    def run(
        self, plans: tuple[Plan, ...], now: float, had_points: frozenset[VmKey] | set[VmKey] = frozenset()
    ) -> None:
        if self.refused:
            return
        rpo: dict[VmKey, float] = {}
        for p in plans:
            for vm in p.vms:
                key = (p.backup_server, vm)
                rpo[key] = min(rpo.get(key, float("inf")), self.settings.rpo_for(p.name, p.id))
        recheck = self.settings.recheck_seconds
        due = [k for k in self.book.doubtful(rpo, now) if now - self.checked.get(k, float("-inf")) >= recheck]
        for key in due[: self.settings.checks_per_read]:
            server, vm = key
            try:
                page = self.client.points.of_vm(vm)
            except EMError as exc:
                if exc.reason != "http_4xx":
                    raise
                self.refused = True
                log.warning(
                    "EM cannot find replica points by VmName (%s); VMs without one are unconfirmed", exc
                )
                return
            self.checked[key] = now
            found = [p for p in page.items if p.backup_server == server and p.vm == vm]
            if found:
                self.book.take(found, now)
            elif not page.items or page.next_path is None:
                self.book.mark_none([key], had_points)
