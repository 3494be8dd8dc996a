"""EM tasks of the simulated starts: Running, then OperationFinished (done on the backup server, EM has not
collected it yet) until EM's next collection from the plan's backup server (collection.py), or for the
scenario's task_collect_delay when EM shows everything live, then Finished. And the tasks of collections
asked for (operation CollectingBackupServer). A task belongs to the logon session that made it, and
goes with it. A collection's task is Finished once the collection has started ("Data collection started.
To view results, go to Sessions."), not once it is done."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only
    from exporter.simulator.collection import Collection, Collections
    from exporter.simulator.logons import Logon
    from exporter.simulator.scenario_model import Scenario


COLLECT_TASK_SECONDS = 1.0  # a collect task runs this long (scenario seconds) before it is Finished


@dataclass
class SimTask:
    id: str
    logon_id: str
    created: float
    ready_at: float
    session_id: str
    plan_name: str
    backup_server: str = ""
    collection: Collection | None = None  # a collection's task, not a start's
    undo: bool = False  # ?action=undo: no session of its own (the finished example has no Related link)

    @property
    def operation(self) -> str:
        if self.collection is not None:
            return "CollectingBackupServer"
        # a test's task is a start's, as EM documents it: only the session it links can tell them apart
        return "UndoCloudFailoverPlan" if self.undo else "StartCloudFailoverPlan"

    @property
    def message(self) -> str:
        """The finished task's Result message, as EM's examples write it."""
        if self.collection is None:
            return "Ok"
        return "Data collection started. To view results, go to Sessions."


class Tasks:
    def __init__(
        self, scenario: Scenario, clock: Callable[[], float], lock: threading.RLock, collections: Collections
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self.lock = lock
        self.collections = collections
        self.by_id: dict[str, SimTask] = {}
        self._seq = 0

    def create(
        self, caller: Logon, session_id: str, plan_name: str, backup_server: str = "", *, undo: bool = False
    ) -> SimTask:
        now = self.clock()
        ready_at = now + self.scenario.task_delay / self.scenario.time_scale
        task = SimTask("", caller.session_id, now, ready_at, session_id, plan_name, backup_server, undo=undo)
        return self._add(task)

    def collect(self, caller: Logon, collection: Collection) -> SimTask:
        # Finished once the collection has started, as EM's example says ("Data collection started"),
        # not once it is done; a collection that never starts (fault) keeps its task Running.
        started = collection.started + COLLECT_TASK_SECONDS / self.scenario.time_scale
        ready = float("inf") if collection.done_at is None else started
        task = SimTask(
            "", caller.session_id, collection.started, ready, "", "", collection.server, collection
        )
        return self._add(task)

    def _add(self, task: SimTask) -> SimTask:
        with self.lock:
            self._seq += 1
            task.id = f"task-{self._seq}"
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
            if task.collection is not None:
                return task, "Finished"
            if not self.collections.live:  # done on the backup server: EM knows once it collected it
                seen = self.collections.as_of(task.backup_server, now) >= task.ready_at
                return task, "Finished" if seen else "OperationFinished"
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
