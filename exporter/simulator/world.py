"""The simulated EM's state. Time-driven: what a session looks like is computed from the clock on each read,
so tests can set the clock to any moment of a failover and get a deterministic answer."""

from __future__ import annotations

import collections
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from exporter.simulator.collection import Collections
from exporter.simulator.faults import Faults
from exporter.simulator.logons import Logon, Logons
from exporter.simulator.points import Point
from exporter.simulator.replication import Replication
from exporter.simulator.scenario_model import PlanSpec, Scenario, stable_id
from exporter.simulator.sessions import DynamicSession, fixed_session_points
from exporter.simulator.tasks import SimTask, Tasks
from exporter.simulator.views import SessionView

_RANK = {"Success": 0, "Warning": 1, "Failed": 2}


@dataclass
class StartRecord:
    plan_id: str
    start_now: bool
    start_date: float | None
    at: float


class World:
    def __init__(self, scenario: Scenario, clock: Callable[[], float] = time.time) -> None:
        self.scenario = scenario
        self.clock = clock
        self.lock = threading.RLock()
        self.faults = Faults()
        try:
            self.faults.update(scenario.faults)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"scenario faults: {exc}") from None
        self.born = clock()
        self.plans: dict[str, PlanSpec] = {p.id: p for p in scenario.plans}
        self.dynamic: dict[str, DynamicSession] = {}
        self.logon_book = Logons(scenario, clock, self.lock)
        self.logons = self.logon_book.by_token  # token -> logon session
        self.collections = Collections.of(scenario, self.born, clock, self.lock)
        self.task_book = Tasks(scenario, clock, self.lock, self.collections)
        # backup server ID (as the plans' links name it) -> its name
        self.servers = {stable_id("server", p.backup_server): p.backup_server for p in scenario.plans}
        self.starts: list[StartRecord] = []
        self.tests: list[tuple[str, float]] = []  # (plan id, when) of each ?action=test
        self.undos: list[tuple[str, float]] = []  # (plan id, when) of each ?action=undo
        self.logouts = 0
        self.cookie_requests = 0  # API calls that carried an EM cookie (a client should keep none)
        self.queries: collections.deque[str] = collections.deque(maxlen=500)  # decoded /api/query strings
        self.requests: collections.Counter[str] = collections.Counter()  # "METHOD route" -> count
        self._next_start: dict[str, float] = {}
        self.replication = Replication(scenario, self.born, self.lock)
        self.points = self.replication.points  # point id -> point, as the backup servers have them
        for plan in scenario.plans:
            self.dynamic.update(history_sessions(plan, self.born, self.replication))
            if plan.start_at is not None:
                self._next_start[plan.id] = self.born + plan.start_at / scenario.time_scale
        self.points.update((p.id, p) for p in fixed_session_points(scenario))

    def reschedule(self, now: float) -> None:
        """Let the scenario's scheduled starts count from `now` (e.g. once an observer is ready)."""
        with self.lock:
            for plan_id in self._next_start:
                plan = self.plans[plan_id]
                assert plan.start_at is not None
                self._next_start[plan_id] = now + plan.start_at / self.scenario.time_scale

    # -- logon sessions (logons.py; logon_book answers logons, roles and tokens) ----------------

    def logout(self, session_id: str, caller: Logon) -> bool:
        with self.lock:
            if not self.logon_book.logout(session_id, caller):
                return False
            self.logouts += 1
            self.task_book.forget(session_id)
            return True

    # -- sessions ---------------------------------------------------------------------------

    def _materialize(self, now: float) -> None:
        """Start the sessions a scenario schedules, up to `now`."""
        for plan_id, at in list(self._next_start.items()):
            plan = self.plans[plan_id]
            while at <= now:
                self._new_session(plan, at, None)
                if plan.repeat_every is None:
                    del self._next_start[plan_id]
                    break
                at += plan.repeat_every / self.scenario.time_scale
                self._next_start[plan_id] = at

    def _new_session(
        self, plan: PlanSpec, started: float, start_date: float | None, *, test: bool = False
    ) -> DynamicSession:
        """A failover session of the plan; `test`: a test failover, which "does not switch from a
        production VM to its replica" (the replicas' State stays)."""
        sid = str(uuid.uuid4())
        points = self.replication.choose(plan, start_date if start_date is not None else started)
        session = DynamicSession(id=sid, plan=plan, started=started, points=points)
        self.dynamic[sid] = session
        if not test:
            self.replication.failover(plan, started, points, {})
        return session

    def add_session(self, plan_name: str, started: float) -> str:
        """A session of the named plan that began at `started`, e.g. one EM learns of only now, at its
        collection from the backup server, with a CreationTime in the past. Returns its ID."""
        with self.lock:
            plan = next(p for p in self.plans.values() if p.name == plan_name)
            return self._new_session(plan, started, None).id

    def sessions(self) -> list[SessionView]:
        """Every session, oldest first (the order tests and the collection expect to see sorted by)."""
        now = self.clock()
        scale = self.scenario.time_scale
        with self.lock:
            self._materialize(now)
            self.replication.advance(now, self.plans)
            views = []
            for s in self.dynamic.values():
                # what EM shows: the backup server's state when EM last collected it (live: now)
                as_of = self.collections.as_of(s.plan.backup_server, now)
                if s.started <= as_of:
                    views.append(s.view(as_of, scale))
        views.extend(f.view for f in self.scenario.sessions)
        views.sort(key=lambda v: (v.creation_time or 0.0, v.id))
        return views

    def replica_points(self, ids: list[str] | None = None) -> list[tuple[Point, str]]:
        """The points EM shows now (those its last collection from their backup server found), each with
        its State as of then; all of them, or those of these IDs."""
        now = self.clock()
        with self.lock:
            self._materialize(now)
            self.replication.advance(now, self.plans)
            return self.replication.visible(ids, lambda server: self.collections.as_of(server, now))

    def set_replica_state(self, plan_name: str, state: str, remove_points: bool = False) -> int:
        """The named plan's replicas take this State now (replication.set_plan_state). How many VMs."""
        plan = next((p for p in self.plans.values() if p.name == plan_name), None)
        with self.lock:
            return (
                0
                if plan is None
                else self.replication.set_plan_state(plan, self.clock(), state, remove_points)
            )

    def session(self, session_id: str) -> SessionView | None:
        return next((s for s in self.sessions() if s.id == session_id), None)

    # -- actions -----------------------------------------------------------------------------

    def collect(self, server_id: str, caller: Logon) -> SimTask | None:
        """POST /api/backupServers/{ID}?action=collect: a collection from that backup server, and its task."""
        with self.lock:
            server = self.servers.get(server_id)
            if server is None:
                return None
            collection = self.collections.ask(server, never_finishes=self.faults.collect_hangs)
            return self.task_book.collect(caller, collection)

    def task(self, task_id: str, caller: Logon) -> tuple[SimTask, str] | None:
        return self.task_book.state(task_id, caller)

    def delete_task(self, task_id: str, caller: Logon) -> bool:
        return self.task_book.delete(task_id, caller)


def history_sessions(plan: PlanSpec, born: float, replication: Replication) -> dict[str, DynamicSession]:
    """The plan's past failover sessions (the scenario's `history`); one `in_dr` left its VMs in DR."""
    out = {}
    for k, (ago, result, in_dr) in enumerate(plan.history):
        sid = stable_id("history", plan.id, str(k))
        started = born - ago
        results = {vm.name: result for vm in plan.vms}
        chosen = replication.choose(plan, started)
        out[sid] = DynamicSession(sid, plan, started, chosen, results)
        if in_dr:
            replication.failover(plan, started, chosen, results)
    return out


@dataclass
class ManualClock:
    """A clock tests move by hand."""

    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
