"""What a simulator scenario is: its plans and VMs, how their failovers run, what they end with, and the
users and timings of the EM it imitates (scenario.py reads it from YAML)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from exporter.simulator.profiles import PROFILES, EMProfile
from exporter.simulator.views import SessionView

RESULTS = ("Success", "Warning", "Failed")
REPLICATION = ("running", "stopped", "never")
# EM roles a simulated user can have. "none": the logon itself is refused (403); "restore_operator":
# logged on, but the Cloud Connect resources answer 403 (an action outside the role); "portal_user":
# reads them, but may not start a plan or ask for a collection (403; no action links with the profile's
# action_links "by_role").
ROLES = ("portal_administrator", "portal_user", "restore_operator", "none")
_NS = uuid.UUID("6f1d7c5e-4a52-4f55-9a39-5c1e4c0b2f10")


class ScenarioError(ValueError):
    pass


def stable_id(*parts: str) -> str:
    """IDs derived from names, so a scenario gives the same IDs on every run."""
    return str(uuid.uuid5(_NS, "/".join(parts)))


@dataclass(frozen=True)
class VmSpec:
    name: str
    duration: float = 300.0
    result: str = "Success"
    restore_point_age: float = 3600.0
    fail_at: float = 0.5  # a Failed VM stops at this fraction of its duration
    stall_at_progress: int | None = None  # the VM stays Working at this progress, for stall tests
    # its replica points (replication.py): running (one every replication_interval), stopped (no new
    # one after the start: the newest ages), never (no point at all)
    replication: str = "running"
    replication_interval: float | None = None  # None: the scenario's point_interval
    failure_message: str = ""  # a Failed VM's FailureMessage ("": a simulated one)


@dataclass(frozen=True)
class PlanSpec:
    name: str
    id: str
    tenant: str
    backup_server: str
    vms: tuple[VmSpec, ...]
    vm_stagger: float = 30.0
    start_at: float | None = None  # start a session this many scenario seconds after the simulator starts
    repeat_every: float | None = None
    # past sessions: (seconds ago, result of every VM, whether its VMs still run from their replicas)
    history: tuple[tuple[float, str, bool], ...] = ()
    undo_after: float | None = None  # each failover of the plan is undone this long after its start


@dataclass(frozen=True)
class FixedSession:
    """A session served exactly as written, e.g. the documentation's example."""

    view: SessionView
    point_times: dict[str, float]  # replica point id -> its CreationTimeUTC


@dataclass(frozen=True)
class Scenario:
    name: str
    plans: tuple[PlanSpec, ...]
    sessions: tuple[FixedSession, ...] = ()
    time_scale: float = 1.0
    users: dict[str, str] = field(default_factory=lambda: {"admin": "admin"})
    roles: dict[str, str] = field(default_factory=dict)  # user -> one of ROLES; default portal_administrator
    token_idle_timeout: float = 900.0
    task_delay: float = 5.0  # scenario seconds a start task stays Running
    # then this many scenario seconds in OperationFinished: done on the backup server, not yet collected
    task_collect_delay: float = 0.0
    profile: EMProfile = field(default_factory=lambda: PROFILES["default"])
    point_interval: float = 3600.0
    points_per_vm: int = 24
    json_case: str | None = None  # "camel" imitates EM 13's JSON; None: the profile's
    faults: dict[str, Any] = field(default_factory=dict)  # initial fault switches (see world.Faults)
    # EM's collection from each backup server (collection.py), in scenario seconds: every this many
    # (0: EM shows everything live; None: the profile's), each taking collection_duration
    collection_interval: float | None = None
    collection_duration: float = 20.0

    @property
    def collection_every(self) -> float:
        every = self.collection_interval
        return self.profile.collection_interval_seconds if every is None else every
