"""The kill switch and dry-run mode as they hold now: the config's values, unless an admin set them at run
time (PUT /api/v1/switches, kept in the audit log, so a restart keeps them).

One rule, key by key: a runtime value holds until it is changed at run time, or until the config changes
that same key. Each record keeps the config's values of its day; when today's config differs for a key,
the config is the newer word for that key (and only that key), and a record saying so is written at
start, so that an older config coming back later does not bring the old runtime value back with it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from exporter.config import ActionSettings, Caller

if TYPE_CHECKING:  # types only
    from exporter.actions.audit.recorder import Recorder

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
    values = {k: bool(getattr(settings, k)) for k in SWITCHES}
    runtime = False
    for key in SWITCHES:
        # the record's value holds while the config of that key is what it was when it was set
        if recorded and recorded.get(f"config_{key}") == values[key] and recorded.get(key) is not None:
            runtime = runtime or (recorded.get(key) is True) != values[key]
            values[key] = recorded.get(key) is True
    if not runtime:
        return Switches(kill_switch=values["kill_switch"], dry_run=values["dry_run"])
    return Switches(
        kill_switch=values["kill_switch"],
        dry_run=values["dry_run"],
        set_by=str(recorded.get("caller") or "?"),
        set_at=None if recorded.get("time") is None else str(recorded["time"]),
        reason=None if recorded.get("reason") is None else str(recorded["reason"]),
    )


def superseded(settings: ActionSettings, recorded: dict[str, Any]) -> dict[str, Any] | None:
    """The record to write at start when the config changed a key since the last runtime record: the
    config's value of that key is now the held one (None when nothing changed)."""
    if not recorded:
        return None
    changed = [k for k in SWITCHES if recorded.get(f"config_{k}") != getattr(settings, k)]
    if not changed:
        return None
    now = current(settings, recorded)
    return {
        **record(settings, now, {}, str(recorded.get("caller") or "?"), str(recorded.get("reason") or "")),
        "superseded": changed,  # these keys follow the config from now on
    }


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


def reconcile(settings: ActionSettings, recorder: Recorder) -> None:
    """At start: a key the config changed since the last runtime record follows the config for good."""
    note = superseded(settings, recorder.journal.state.switches)
    if note is None:
        return
    try:
        recorder.set_switches(note)
    except OSError as exc:  # the disk refuses it: this process holds it in memory, the next start again
        log.error("actions: the config changed %s; %s", ", ".join(note["superseded"]), exc)
        recorder.journal.state.switches = {k: note.get(k) for k in note}
    log.warning("actions: the config changed %s: its value now holds", ", ".join(note["superseded"]))


def set_switches(
    settings: ActionSettings,
    recorder: Recorder,
    limits: threading.Lock,
    caller: Caller,
    changes: dict[str, bool],
    reason: str,
) -> Switches:
    """An admin sets the kill switch or dry run at run time: on disk before it holds (else
    AuditWriteError, and nothing changed), so a restart keeps it."""
    with limits:  # no start passes its last check while a switch changes
        before = current(settings, recorder.journal.state.switches)
        recorder.set_switches(record(settings, before, changes, caller.name, reason))
    now = current(settings, recorder.journal.state.switches)
    log.warning(
        "actions: %s set kill_switch=%s dry_run=%s (%s)", caller.name, now.kill_switch, now.dry_run, reason
    )
    return now
