"""The cloud failover plans, re-read every `plans_refresh_seconds` (and at once when a new session names
a plan not known yet): at 200 plans they are megabytes of XML, not worth reading every poll."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from exporter.em.model import Plan, plan_name_conflicts

if TYPE_CHECKING:  # the client is passed in; only its type is needed here
    from exporter.em.client import EMClient


log = logging.getLogger(__name__)


class PlanBook:
    def __init__(self, client: EMClient, refresh_seconds: float) -> None:
        self.client = client
        self.refresh_seconds = refresh_seconds
        self.plans: tuple[Plan, ...] = ()
        self.read_at: float | None = None
        self._conflicts: dict[str, dict[str, int]] = {}
        # (backup server, plan name) -> reads that found its VM list changed: a VM added to or taken out
        # of a plan changes what a failover brings up
        self.vm_list_changes: dict[tuple[str, str], int] = {}

    def due(self, now: float) -> bool:
        return self.read_at is None or now - self.read_at >= self.refresh_seconds

    def named(self) -> set[tuple[str, str]]:
        """(backup server, plan name) of every plan: how sessions are tied to plans."""
        return {(p.backup_server, p.name) for p in self.plans}

    def read(self, now: float) -> list[tuple[str, str]]:
        """Read the plans; returns one problem per plan EM sent that could not be read."""
        plans, errors = self.client.plans()
        before = {(p.backup_server, p.name): set(p.vms) for p in self.plans}
        self.plans = tuple(plans)
        if self.read_at is not None:
            for p in self.plans:
                key = (p.backup_server, p.name)
                if key in before and before[key] != set(p.vms):
                    self.vm_list_changes[key] = self.vm_list_changes.get(key, 0) + 1
                    log.info("the VMs of plan %r on %r changed", p.name, p.backup_server)
        self.read_at = now
        conflicts = plan_name_conflicts(self.plans)
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
