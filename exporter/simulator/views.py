"""What the simulator serves about a failover session at one moment, before it is rendered."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskView:
    vm: str
    state: str
    result: str
    progress: int
    creation_time: float | None
    end_time: float | None
    point_id: str | None  # None: the VM has no replica point
    point_name: str | None
    failure_message: str = ""  # FailureMessage, written when not empty


@dataclass(frozen=True)
class SessionView:
    id: str
    plan: str
    backup_server: str
    state: str
    result: str
    progress: int
    creation_time: float | None
    end_time: float | None
    tasks: tuple[TaskView, ...]
    failure_message: str = ""  # FailureMessage, written when not empty
