"""What the guards need to know of the past, rebuilt from the audit log: used idempotency keys, when each
plan was last started, starts on their way. Shared by replay and live operation, so both agree."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from exporter.actions.audit.records import PendingDecision
from exporter.em.errors import ParseError
from exporter.em.timefmt import parse_time

# keys of decisions that started nothing (withdrawn, rejected, expired) kept at most this many, the oldest
# dropped first; keys of starts are kept whatever their number (the start limits bound them)
MAX_CLOSED_KEYS = 10_000
# what a "switches" record keeps: the values set, and the config's values then (switches.py)
SWITCH_FIELDS = ("kill_switch", "dry_run", "config_kill_switch", "config_dry_run", "caller", "time", "reason")


@dataclass
class AuditState:
    """What the guards need to know of the past, rebuilt from the log."""

    # idempotency key -> the decision
    used_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    # plan id -> when EM was last asked to start it
    last_start: dict[str, float] = field(default_factory=dict)
    # request id -> "starting", no outcome yet
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    # plan id -> the plan's latest session when we asked EM to start it: until a different one shows
    # up, the start we asked for has not been seen
    previous_session: dict[str, str] = field(default_factory=dict)
    # every start of the last hours: (when, backup server); the global limits count them
    starts: list[tuple[float, str]] = field(default_factory=list)
    # plans whose latest decision is known in memory but not yet on disk (the disk refused it)
    unwritten_plans: set[str] = field(default_factory=set)
    # a torn "starting" line that names no plan: when (the log's mtime); every plan is held for a cooldown
    torn_start_at: float | None = None
    # approval mode: request id -> the pending decision, until approved, rejected or expired
    decisions: dict[str, PendingDecision] = field(default_factory=dict)
    # the runtime switches an admin set last (actions/switches.py), or {} for the config's
    switches: dict[str, Any] = field(default_factory=dict)

    def apply(self, record: dict[str, Any]) -> None:
        """Fold one decision in. Shared by replay and live operation, so both agree."""
        outcome = record.get("outcome")
        rid = str(record.get("request_id", ""))
        if outcome == "state":  # the first line of a rotated log: everything the guards knew then
            _restore(self, record)
            return
        if outcome == "starting":
            # Written before EM is called. Until its outcome is known the key counts as used.
            self.pending[rid] = record
            self._used(record)
            return
        if outcome == "switches":
            self.switches = {k: record.get(k) for k in SWITCH_FIELDS}
            return
        self.pending.pop(rid, None)
        if outcome == "pending":
            # Waits for an approver; its key stays used whatever becomes of it (a re-sent alert is a
            # duplicate of it, not a second decision).
            self.decisions[rid] = PendingDecision.from_record(record)
            self._used(record)
        elif outcome in ("approved", "rejected", "expired"):
            self.decisions.pop(rid, None)
            if outcome != "approved" and len(self.used_keys) > MAX_CLOSED_KEYS + MAX_CLOSED_KEYS // 10:
                self._prune_closed_keys()  # now and then, not each time: a replay stays linear
        if outcome in ("accepted", "em_unknown"):
            self._used(record)
            self._started(record)
        elif outcome == "em_error" and record.get("idempotency_key"):
            # EM refused or was down: nothing started, the same request may be tried again.
            self.used_keys.pop(str(record["idempotency_key"]), None)

    def snapshot(self) -> dict[str, Any]:
        """What a rotated log must begin with so its replay knows what the old one said."""
        return {
            "outcome": "state",
            "used_keys": {k: _kept(v) for k, v in self.used_keys.items()},
            "last_start": dict(self.last_start),
            "previous_session": dict(self.previous_session),
            "pending": {k: _kept(v) for k, v in self.pending.items()},
            "starts": [list(s) for s in self.starts],
            "decisions": {k: d.record for k, d in self.decisions.items()},
            "switches": dict(self.switches),
        }

    def decision_for(self, plan_id: str) -> str | None:
        """The ID of the plan's pending decision, if it has one."""
        return next((rid for rid, d in self.decisions.items() if d.plan_id == plan_id), None)

    def starts_within(self, seconds: float, now: float, backup_server: str | None = None) -> int:
        """Starts in the last `seconds` (of one backup server, if named), the ones still on their way
        to EM included: two requests racing past a limit must both see each other."""
        done = sum(1 for t, server in self.starts if now - t < seconds and backup_server in (None, server))
        going = sum(
            1
            for r in self.pending.values()
            if backup_server is None or r.get("backup_server") == backup_server
        )
        return done + going

    def finish_replay(self) -> None:
        # A "starting" line with no outcome: we died while asking EM. The start may have happened,
        # so count it as a start: never start twice.
        for record in self.pending.values():
            self._started(record)
        self.pending.clear()

    def _used(self, record: dict[str, Any]) -> None:
        if record.get("idempotency_key"):
            # the few fields a duplicate's answer and the guards read, not the whole record
            self.used_keys[str(record["idempotency_key"])] = _kept(record)

    def prune_keys(self, now: float, window: float) -> None:
        """Forget the keys of decisions that started nothing once they are older than `window` (a re-sent
        alert after that is a new request, and so a new decision for a person): a flood of requests and
        withdrawals cannot grow the guards' memory. Keys of starts are never forgotten."""
        for key, kept in list(self.used_keys.items()):
            if kept.get("outcome") != "pending" or kept.get("request_id") in self.decisions:
                continue
            try:
                when = parse_time(str(kept.get("time", "")))
            except ParseError:
                continue
            if when is not None and now - when > window:
                self.used_keys.pop(key, None)

    def _prune_closed_keys(self) -> None:
        closed = [
            k
            for k, kept in self.used_keys.items()
            if kept.get("outcome") == "pending" and kept.get("request_id") not in self.decisions
        ]
        for key in closed[: max(0, len(closed) - MAX_CLOSED_KEYS)]:  # oldest first: insertion order
            del self.used_keys[key]

    def _started(self, record: dict[str, Any]) -> None:
        if not isinstance(record.get("plan_id"), str):
            return
        try:
            when = parse_time(str(record.get("time", ""))) if record.get("time") else None
        except ParseError:
            when = None  # a time we cannot read must not lift a cooldown: count the start as now
        self.last_start[record["plan_id"]] = when or time.time()
        self.starts.append((when or time.time(), str(record.get("backup_server") or "")))
        cutoff = time.time() - 2 * 3600
        self.starts = [s for s in self.starts if s[0] >= cutoff]
        self.previous_session[record["plan_id"]] = str(record.get("previous_session_id") or "")


def _kept(record: dict[str, Any]) -> dict[str, Any]:
    """The fields of a decision a snapshot keeps: what the guards and a duplicate's answer use."""
    kept = ("request_id", "plan_id", "em_task_id", "time", "outcome", "backup_server")
    return {k: record[k] for k in kept if k in record}


def _restore(state: AuditState, record: dict[str, Any]) -> None:
    """Everything a rotated log's first line (its `state` record) says the guards knew."""
    for name in ("used_keys", "pending"):
        value = record.get(name)
        if isinstance(value, dict):
            getattr(state, name).update({str(k): v for k, v in value.items() if isinstance(v, dict)})
    decisions = record.get("decisions")
    if isinstance(decisions, dict):
        state.decisions.update(
            {str(k): PendingDecision.from_record(v) for k, v in decisions.items() if isinstance(v, dict)}
        )
    starts = record.get("last_start")
    if isinstance(starts, dict):
        state.last_start.update({str(k): float(v) for k, v in starts.items() if isinstance(v, int | float)})
    for item in record.get("starts") or []:
        if isinstance(item, list) and len(item) == 2 and isinstance(item[0], int | float):
            state.starts.append((float(item[0]), str(item[1])))
    switches = record.get("switches")
    if isinstance(switches, dict) and switches:
        state.switches = {k: switches.get(k) for k in SWITCH_FIELDS}
    previous = record.get("previous_session")
    if isinstance(previous, dict):
        state.previous_session.update({str(k): str(v) for k, v in previous.items()})
