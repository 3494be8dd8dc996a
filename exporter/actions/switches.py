"""The kill switch and dry-run mode as they hold now: the config's values, unless an admin set them at run
time (PUT /api/v1/switches, kept in the audit log, so a restart keeps them).

A runtime value holds until the config itself changes: each record keeps the config's values of its day,
and when today's config differs, the config is newer and wins (an operator who sets kill_switch: true in
the config and redeploys gets it, whatever was flipped before)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from exporter.config import ActionSettings, Caller

if TYPE_CHECKING:  # types only
    from exporter.actions.engine import Actions

log = logging.getLogger(__name__)

SWITCHES = ("kill_switch", "dry_run")


@dataclass(frozen=True)
class Switches:
    kill_switch: bool
    dry_run: bool
    set_by: str | None = None  # None: the config's values
    set_at: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kill_switch": self.kill_switch,
            "dry_run": self.dry_run,
            "source": "config" if self.set_by is None else "runtime",
            "set_by": self.set_by,
            "set_at": self.set_at,
            "reason": self.reason,
        }


def current(settings: ActionSettings, recorded: dict[str, Any]) -> Switches:
    config = Switches(kill_switch=settings.kill_switch, dry_run=settings.dry_run)
    if not recorded:
        return config
    if (recorded.get("config_kill_switch"), recorded.get("config_dry_run")) != (
        settings.kill_switch,
        settings.dry_run,
    ):
        return config  # the config changed since: it is the newer word
    return Switches(
        kill_switch=recorded.get("kill_switch") is True,
        dry_run=recorded.get("dry_run") is True,
        set_by=str(recorded.get("caller") or "?"),
        set_at=None if recorded.get("time") is None else str(recorded["time"]),
        reason=None if recorded.get("reason") is None else str(recorded["reason"]),
    )


def record(
    settings: ActionSettings, now: Switches, changes: dict[str, bool], caller: str, reason: str
) -> dict[str, Any]:
    """The audit record that sets them: the new values, who, why, and the config's values of today."""
    return {
        "outcome": "switches",
        "request_id": "",
        "kill_switch": changes.get("kill_switch", now.kill_switch),
        "dry_run": changes.get("dry_run", now.dry_run),
        "config_kill_switch": settings.kill_switch,
        "config_dry_run": settings.dry_run,
        "caller": caller,
        "reason": reason or None,
    }


def set_switches(actions: Actions, caller: Caller, changes: dict[str, bool], reason: str) -> Switches:
    """An admin sets the kill switch or dry run at run time: on disk before it holds (else
    AuditWriteError, and nothing changed), so a restart keeps it."""
    with actions.limits_lock:  # no start passes its last check while a switch changes
        actions.recorder.set_switches(
            record(actions.settings, actions.switches(), changes, caller.name, reason)
        )
    now = actions.switches()
    log.warning(
        "actions: %s set kill_switch=%s dry_run=%s (%s)", caller.name, now.kill_switch, now.dry_run, reason
    )
    return now
