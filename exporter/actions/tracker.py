"""After EM accepted a start: follow its task to the end in the background and record how it went."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from exporter.actions.model import Decision
from exporter.actions.recorder import Recorder
from exporter.config import ActionSettings
from exporter.em.client import EMClient
from exporter.em.errors import EMError

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
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def track(self, decision: Decision, task_id: str) -> None:
        t = threading.Thread(
            target=self._follow, args=(decision, task_id), daemon=True, name=f"task-{task_id}"
        )
        self._threads.append(t)
        t.start()

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)

    def _follow(self, decision: Decision, task_id: str) -> None:
        deadline = time.monotonic() + self.settings.task_timeout_seconds
        base = {
            "request_id": decision.request_id,
            "plan": decision.plan,
            "plan_id": decision.plan_id,
            "em_task_id": task_id,
        }
        uncollected = False  # EM said OperationFinished: done on the backup server, not collected yet
        while not self._stop.wait(self.settings.task_poll_interval_seconds):
            if time.monotonic() > deadline:
                if uncollected:
                    reason = "EM task finished on the backup server; EM had not collected it in time"
                    self.recorder.note({**base, "outcome": "task_uncollected", "reason": reason})
                else:
                    reason = "EM task did not finish in time"
                    self.recorder.note({**base, "outcome": "task_timeout", "reason": reason})
                return
            try:
                task = self.client.task(task_id)
            except EMError as exc:
                if exc.status == 404:  # tasks live with EM's logon session; a re-logon loses them
                    self.recorder.note({**base, "outcome": "task_lost", "reason": str(exc)})
                    return
                continue
            if task.state == "OperationFinished" and not uncollected:
                # Not a failure and not a time-out: EM shows the result after its next collection from
                # the backup server (every 15 minutes by default).
                uncollected = True
                self.recorder.note({**base, "outcome": "task_done_uncollected", "reason": _UNCOLLECTED})
                continue
            if task.state == "Finished":
                ok = task.success is not False
                self.recorder.note(
                    {
                        **base,
                        "outcome": "task_finished" if ok else "task_failed",
                        "reason": task.message,
                        "em_session_id": task.related_session_id,
                    }
                )
                self.wake_poller()  # the new session shows on /metrics at the next poll
                return
