"""After EM accepted a start: follow its task to the end in the background and record how it went."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from exporter.actions.model import Decision
from exporter.background_loop import BackgroundLoop
from exporter.config import ActionSettings
from exporter.em.errors import EMError

if TYPE_CHECKING:  # types only
    from exporter.actions.audit.recorder import Recorder
    from exporter.em.client import EMClient


_UNCOLLECTED = (
    "done on the backup server; EM shows the session after its next data collection (15 min by default)"
)


class TaskTracker:
    def __init__(
        self, client: EMClient, recorder: Recorder, settings: ActionSettings, wake_poller: Callable[[], None]
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.settings = settings
        self.wake_poller = wake_poller
        self._loops: list[BackgroundLoop] = []

    def track(self, decision: Decision, task_id: str) -> None:
        follow = _Follow(self, decision, task_id)
        loop = BackgroundLoop(
            f"task-{task_id}", follow.step, lambda: self.settings.task_poll_interval_seconds, wait_first=True
        )
        self._loops.append(loop)
        loop.start()

    def close(self) -> None:
        for loop in self._loops:
            loop.stop(timeout=5)


class _Follow:
    """One accepted start's EM task, asked after every `task_poll_interval_seconds` until it ends."""

    def __init__(self, tracker: TaskTracker, decision: Decision, task_id: str) -> None:
        self.t = tracker
        self.task_id = task_id
        self.deadline = time.monotonic() + tracker.settings.task_timeout_seconds
        self.base = {
            "request_id": decision.request_id,
            "plan": decision.plan,
            "plan_id": decision.plan_id,
            "em_task_id": task_id,
        }
        self.uncollected = False  # EM said OperationFinished: done on the backup server, not collected

    def note(self, outcome: str, reason: str, **extra: object) -> bool:
        self.t.recorder.note({**self.base, "outcome": outcome, "reason": reason, **extra})
        return True

    def step(self) -> bool:
        """True once the task's end (or our giving up) is on record."""
        if time.monotonic() > self.deadline:
            if self.uncollected:
                why = "EM task finished on the backup server; EM had not collected it in time"
                return self.note("task_uncollected", why)
            return self.note("task_timeout", "EM task did not finish in time")
        try:
            task = self.t.client.task(self.task_id)
        except EMError as exc:
            if exc.status == 404:  # tasks live with EM's logon session; a re-logon loses them
                return self.note("task_lost", str(exc))
            return False
        if task.state == "OperationFinished" and not self.uncollected:
            # Not a failure and not a time-out: EM shows the result after its next collection from
            # the backup server (every 15 minutes by default).
            self.uncollected = True
            self.note("task_done_uncollected", _UNCOLLECTED)
            return False
        if task.state != "Finished":
            return False
        ok = task.success is not False
        self.note(
            "task_finished" if ok else "task_failed", task.message, em_session_id=task.related_session_id
        )
        self.t.wake_poller()  # the new session shows on /metrics at the next poll
        return True
