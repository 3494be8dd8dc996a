"""Typed objects for what EM tells us. Everything past `em.parse` works on these, never on XML."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

T = TypeVar("T")

# Documented enumerations (veeam-em-api.md section 5). EM may send values outside these sets;
# they are kept as plain strings and exported alongside the documented ones, never dropped.
SESSION_STATES: tuple[str, ...] = ("Starting", "Working", "Stopping", "Stopped")
SESSION_RESULTS: tuple[str, ...] = ("None", "Success", "Warning", "Failed")

# A replica point's State (EMR get_cloudvmreplicapoints_id); the only per-VM sign of a VM running in DR.
REPLICA_POINT_STATES: tuple[str, ...] = ("Unknown", "Ready", "Failover", "Failback", "PermanentFailover")
# States in which the VM runs from its replica (or is on its way back): replication to it has stopped, so
# its point ages by design and the RPO says nothing.
DR_STATES = frozenset({"Failover", "Failback", "PermanentFailover"})

# How this EM finds replica points by ID: a UID filter with the URN, one with the bare GUID, or only
# GET /cloud/vmReplicaPoints/{id}. EM does not document which; the poller learns it (polling/points.py).
LookupForm = Literal["urn", "guid", "entity"]
LOOKUP_FORMS: tuple[LookupForm, ...] = ("urn", "guid", "entity")

# A session is over once it is Stopped; anything else (documented or not) counts as active, so an
# unknown state keeps the poller in its fast cadence rather than silently going idle.
FINAL_SESSION_STATES = frozenset({"Stopped"})


# EM's FailureMessage is free text: shown (and used as a label value) as one line of at most this many
# characters
FAILURE_MESSAGE_CHARS = 200


def failure_text(message: str) -> str:
    """A FailureMessage as one line of at most FAILURE_MESSAGE_CHARS characters."""
    line = " ".join(message.split())
    return line if len(line) <= FAILURE_MESSAGE_CHARS else line[: FAILURE_MESSAGE_CHARS - 1] + "…"


@dataclass(frozen=True, slots=True)
class LogonSession:
    session_id: str
    username: str


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    name: str
    backup_server: str
    tenant: str
    vms: tuple[str, ...]
    backup_server_id: str = ""  # from the plan's link to its backup server: where to ask for a collection


def plan_name_conflicts(plans: tuple[Plan, ...] | list[Plan]) -> dict[str, dict[str, int]]:
    """Backup server -> plan name -> how many plans have it, for names more than one plan has.

    EM ties a failover session to its plan by name only (a session carries no plan ID), and does not
    document plan names as unique on a backup server: two tenants may each have a plan of one name."""
    counts: dict[tuple[str, str], int] = {}
    for p in plans:
        counts[(p.backup_server, p.name)] = counts.get((p.backup_server, p.name), 0) + 1
    out: dict[str, dict[str, int]] = {}
    for (server, name), n in counts.items():
        if n > 1:
            out.setdefault(server, {})[name] = n
    return out


@dataclass(frozen=True, slots=True)
class VmTask:
    vm: str
    state: str
    result: str
    progress: int  # 0-100 as EM reports it
    start: float | None  # Unix seconds
    end: float | None
    restore_point_id: str | None
    restore_point_name: str | None
    failure_message: str = ""  # FailureMessage: why the VM's failover failed ("" when EM says nothing)


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    plan: str  # EM names a failover session after its plan
    backup_server: str
    state: str
    result: str
    progress: int
    start: float | None
    end: float | None
    tasks: tuple[VmTask, ...]
    failure_message: str = ""  # FailureMessage: why the session failed ("" when EM says nothing)

    @property
    def active(self) -> bool:
        return self.state not in FINAL_SESSION_STATES


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    state: str
    operation: str
    success: bool | None  # None until the task has a Result
    message: str
    related_session_id: str | None


@dataclass(frozen=True, slots=True)
class ReplicaPoint:
    id: str
    name: str
    created: float
    vm: str = ""  # VmName (or VmDisplayName, the replica link's name, the name before '@')
    backup_server: str = ""  # its Up BackupServerReference's name
    state: str = ""  # State as EM writes it; "" when EM sent none


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a query-service answer, with the path of the next page if there is one."""

    items: tuple[T, ...]
    page_num: int
    pages_count: int | None  # None: EM sent no PagingInfo (or no PagesCount)
    next_path: str | None  # the Next link as EM wrote it (absolute, naming EM's idea of its host)
    errors: tuple[str, ...] = ()  # items that could not be read, one message each
