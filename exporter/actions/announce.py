"""Announcements: every decision that matters (config.model.ANNOUNCED) posted to the configured webhooks, as
generic JSON or a Slack-compatible `{"text": ...}`.

Never in a start's way: a decision is put on each webhook's queue and the caller answered at once; one
thread a webhook posts it, retrying with back-off (a 4xx other than 408/429 is final: the receiver will
not change its mind). What is sent, failed after every attempt, or dropped (queue full, shutdown) is
counted per webhook for veeam_failover_notifications_total. A webhook's URL is a secret (a Slack URL is
its own credential): logs name the webhook, never the URL.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from exporter import __version__
from exporter.config import NotificationTarget
from exporter.config.model import ANNOUNCED

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000
MAX_BACKOFF_SECONDS = 60.0
# coalesced: held back by the rate limit and told in one summary at the end of its window
RESULTS = ("sent", "failed", "dropped", "coalesced")
# Starts, approvals and switches are never held back or dropped (the start limits and the pending cap
# bound them); every other event is limited per caller and plan: a request/withdraw flood becomes one
# summary a window, and cannot fill a queue that real events need.
NEVER_HELD = frozenset({"accepted", "em_unknown", "em_error", "approved", "switches"})
EVENTS_PER_WINDOW = 5
WINDOW_SECONDS = 60.0
# what a notification carries of an audit record: no idempotency key, no remote address
FIELDS = (
    "time",
    "request_id",
    "plan",
    "plan_id",
    "backup_server",
    "source",
    "caller",
    "approver",
    "status",
    "reason",
    "reason_given",
    "dry_run",
    "em_task_id",
    "expires_at",
    "alert",
    "alert_fingerprint",
    "kill_switch",
)


class Announcer:
    def __init__(self, targets: tuple[NotificationTarget, ...], external_url: str | None) -> None:
        self.external_url = external_url
        self.counts: Counter[tuple[str, str]] = Counter({(t.name, r): 0 for t in targets for r in RESULTS})
        # reentrant: a summary is queued under it, and a full queue counts its drop under it again
        self._lock = threading.RLock()
        self._workers = [_Worker(t, self) for t in targets]
        self._windows: dict[tuple[str, str], _Window] = {}
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="notify-windows", daemon=True)
        for w in self._workers:
            w.start()
        if self._workers:
            self._flusher.start()

    def announce(self, record: dict[str, Any]) -> None:
        """Queue the record for every webhook that wants its event; never blocks, never raises."""
        event = str(record.get("outcome"))
        if event not in ANNOUNCED or not self._workers:
            return
        if event not in NEVER_HELD:
            key = (str(record.get("caller") or ""), str(record.get("plan") or record.get("plan_id") or ""))
            now = time.monotonic()
            with self._lock:
                window = self._windows.get(key)
                if window is None or now - window.opened >= WINDOW_SECONDS:
                    self._send_summary(key, window)
                    window = self._windows[key] = _Window(opened=now)
                if window.told >= EVENTS_PER_WINDOW:
                    window.held[event] += 1
                    window.latest = record
                    for w in self._workers:
                        self.counts[(w.target.name, "coalesced")] += 1
                    return
                window.told += 1
        self._enqueue(event_message(record, self.external_url), {event}, event in NEVER_HELD)

    def _enqueue(self, message: dict[str, Any], events: set[str], never_drop: bool) -> None:
        for w in self._workers:
            if w.target.events is None or events & set(w.target.events):
                w.put(message, never_drop)

    def _send_summary(self, key: tuple[str, str], window: _Window | None) -> None:
        """What a window held back, in one message (under self._lock)."""
        if window is None or not window.held:
            return
        caller, plan = key
        counts = ", ".join(f"{n} {event}" for event, n in sorted(window.held.items()))
        message = event_message(window.latest or {}, self.external_url)
        message.update(
            event="summary",
            held=dict(window.held),
            reason=f"{sum(window.held.values())} more events from {caller or '?'} for {plan or '?'} in "
            f"{WINDOW_SECONDS:.0f} s, held back by the rate limit: {counts}",
        )
        self._enqueue(message, set(window.held), never_drop=False)

    def _flush_loop(self) -> None:
        while not self._stop.wait(1.0):
            now = time.monotonic()
            with self._lock:
                for key, window in list(self._windows.items()):
                    if now - window.opened >= WINDOW_SECONDS:
                        self._send_summary(key, window)
                        del self._windows[key]

    def count(self, target: str, result: str) -> None:
        with self._lock:
            self.counts[(target, result)] += 1

    def stats(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self.counts)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            for key, window in self._windows.items():
                self._send_summary(key, window)
            self._windows.clear()
        for w in self._workers:
            w.stop()


def event_message(record: dict[str, Any], external_url: str | None) -> dict[str, Any]:
    """The generic JSON body: the event, what the audit log says of it, and links for people."""
    message: dict[str, Any] = {"version": "1", "event": record.get("outcome"), "exporter": __version__}
    message.update({k: record[k] for k in FIELDS if record.get(k) is not None})
    if external_url is not None:
        links = {"status": f"{external_url}/status"}
        if record.get("outcome") == "pending":
            links["decision"] = f"{external_url}/status/decisions/{record.get('request_id')}"
        message["links"] = links
    return message


def slack_escape(value: object) -> str:
    """A value from a request or from EM, as plain text in Slack's markup: no <!channel>, no <url|text>
    link, no entity can be smuggled in (Slack, Mattermost and Rocket.Chat read the same three)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "'")


def slack_text(message: dict[str, Any]) -> str:
    """One line a person reads in a chat channel; every value from outside escaped."""
    message = {
        k: slack_escape(v) if isinstance(v, str) else v for k, v in message.items() if k != "links"
    } | {"links": message.get("links") or {}}
    event = str(message.get("event"))
    headline = {
        "pending": ":warning: Failover start *waits for approval*",
        "approved": ":white_check_mark: Failover start *approved*",
        "rejected": ":no_entry: Failover start *rejected*",
        "expired": ":hourglass: Failover start request *expired* (nothing was started)",
        "accepted": ":rotating_light: Failover *started*: EM accepted the start",
        "dry_run": ":test_tube: Failover start *dry run* (nothing was sent to EM)",
        "em_error": ":x: Failover start *failed* at Enterprise Manager",
        "em_unknown": ":question: Failover start *may have happened* (EM's answer was lost): check EM",
        "switches": ":gear: Failover start switches changed",
        "summary": ":mute: Failover start notifications held back",
    }.get(event, event)
    parts = [headline]
    if message.get("plan"):
        parts.append(f"plan `{message['plan']}` on {message.get('backup_server') or '?'}")
    if event == "switches":
        parts.append(f"kill switch {'ON' if message.get('kill_switch') else 'off'}")
    who = message.get("caller")
    if who:
        parts.append(f"asked by {who}" if event != "switches" else f"by {who}")
    if message.get("approver"):
        parts.append(f"{event} by {message['approver']}")
    if message.get("reason"):
        parts.append(str(message["reason"]))
    if message.get("expires_at"):
        parts.append(f"expires {message['expires_at']}")
    links = message.get("links") or {}
    if "decision" in links:
        parts.append(f"<{links['decision']}|approve or reject>")
    elif "status" in links:
        parts.append(f"<{links['status']}|status>")
    return " · ".join(parts)


@dataclass
class _Window:
    """One caller's and plan's events in the current rate-limit window."""

    opened: float
    told: int = 0
    held: Counter[str] = field(default_factory=Counter)
    latest: dict[str, Any] | None = None


class _Worker:
    """One webhook's queue and the thread that posts it."""

    def __init__(self, target: NotificationTarget, announcer: Announcer) -> None:
        self.target = target
        self.announcer = announcer
        # unbounded: put() bounds what may be dropped, so a start or an approval always has room
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"notify-{target.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, message: dict[str, Any], never_drop: bool = False) -> None:
        """Queue it; a full queue drops only events that may be held back, never a start or approval."""
        try:
            if not never_drop and self._queue.qsize() >= QUEUE_SIZE:
                raise queue.Full
            self._queue.put_nowait(message)
        except queue.Full:
            self.announcer.count(self.target.name, "dropped")
            log.error(
                "notifications: %s's queue is full; a %s event is dropped", self.target.name, message["event"]
            )

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout=5)
        left = self._queue.qsize()
        if left:
            log.warning("notifications: %d event(s) for %s not sent before shutdown", left, self.target.name)
            for _ in range(left):
                self.announcer.count(self.target.name, "dropped")

    def _run(self) -> None:
        t = self.target
        with httpx.Client(
            verify=t.ca_file or True, timeout=t.timeout_seconds, follow_redirects=False
        ) as client:
            while not self._stop.is_set():
                message = self._queue.get()
                if message is None:
                    return
                body = {"text": slack_text(message)} if t.format == "slack" else message
                self.announcer.count(
                    t.name, "sent" if self._deliver(client, body, str(message["event"])) else "failed"
                )

    def _deliver(self, client: httpx.Client, body: dict[str, Any], event: str) -> bool:
        t = self.target
        for attempt in range(1, t.max_attempts + 1):
            why = _post(client, t.url.reveal(), body)
            if why is None:
                return True
            final = why.startswith("HTTP 4") and why not in ("HTTP 408", "HTTP 429")
            log.warning(
                "notifications: %s event to %s failed (%s, attempt %d of %d)%s",
                event,
                t.name,
                why,
                attempt,
                t.max_attempts,
                "; the receiver refuses it, not retried" if final else "",
            )
            if final or attempt == t.max_attempts:
                break
            if self._stop.wait(min(MAX_BACKOFF_SECONDS, t.retry_base_seconds * 2 ** (attempt - 1))):
                break
        log.error("notifications: a %s event was not delivered to %s", event, t.name)
        return False


def _post(client: httpx.Client, url: str, body: dict[str, Any]) -> str | None:
    """None once delivered; else why not, in words that never hold the URL."""
    try:
        response = client.post(url, json=body)
    except httpx.HTTPError as exc:
        return type(exc).__name__
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}"
