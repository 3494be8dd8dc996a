"""EM tasks of the simulated starts: Running, then OperationFinished (done on the backup server, EM has not
collected it yet) for the scenario's task_collect_delay, then Finished. A task belongs to the logon
session that made it, and goes with it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only
    from exporter.simulator.logons import Logon
    from exporter.simulator.scenario import Scenario


@dataclass
class SimTask:
    id: str
    logon_id: str
    created: float
    ready_at: float
    session_id: str
    plan_name: str


class Tasks:
    def __init__(self, scenario: Scenario, clock: Callable[[], float], lock: threading.RLock) -> None:
        self.scenario = scenario
        self.clock = clock
        self.lock = lock
        self.by_id: dict[str, SimTask] = {}
        self._seq = 0

    def create(self, caller: Logon, session_id: str, plan_name: str) -> SimTask:
        now = self.clock()
        with self.lock:
            self._seq += 1
            task = SimTask(
                id=f"task-{self._seq}",
                logon_id=caller.session_id,
                created=now,
                ready_at=now + self.scenario.task_delay / self.scenario.time_scale,
                session_id=session_id,
                plan_name=plan_name,
            )
            self.by_id[task.id] = task
            return task

    def state(self, task_id: str, caller: Logon) -> tuple[SimTask, str] | None:
        with self.lock:
            task = self.by_id.get(task_id)
            if task is None or task.logon_id != caller.session_id:
                return None
            now = self.clock()
            if now < task.ready_at:
                return task, "Running"
            collected_at = task.ready_at + self.scenario.task_collect_delay / self.scenario.time_scale
            return task, "Finished" if now >= collected_at else "OperationFinished"

    def delete(self, task_id: str, caller: Logon) -> bool:
        with self.lock:
            if self.state(task_id, caller) is None:
                return False
            del self.by_id[task_id]
            return True

    def forget(self, logon_id: str) -> None:
        with self.lock:
            self.by_id = {k: t for k, t in self.by_id.items() if t.logon_id != logon_id}
