"""The simulated EM's state. Time-driven: what a session looks like is computed from the clock on each read,
so tests can set the clock to any moment of a failover and get a deterministic answer."""

from __future__ import annotations

import base64
import collections
import dataclasses
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from exporter.simulator.scenario import PlanSpec, Scenario, VmSpec, stable_id
from exporter.simulator.views import SessionView, TaskView

_RANK = {"Success": 0, "Warning": 1, "Failed": 2}


@dataclass(frozen=True)
class Point:
    id: str
    vm: str
    plan_id: str
    backup_server: str
    created: float
    fraction: bool = False  # the name carries microseconds, as EM 13 writes it

    @property
    def name(self) -> str:
        whole = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(self.created)))
        if self.fraction:
            return f"{self.vm}@{whole}.{round((self.created % 1) * 1e6):06d}"
        return f"{self.vm}@{whole}"


@dataclass
class DynamicSession:
    """A failover run started at `started` (wall clock), its VMs progressing as the plan's specs say."""

    id: str
    plan: PlanSpec
    started: float
    points: dict[str, Point]  # vm name -> the point it fails over to
    results: dict[str, str] | None = None  # per-VM override (history sessions)

    def view(self, now: float, scale: float) -> SessionView:
        elapsed = (now - self.started) * scale  # scenario seconds since start
        tasks: list[TaskView] = []
        progress_sum = 0
        worst = "Success"
        ends: list[float] = []
        all_done = True
        for i, vm in enumerate(self.plan.vms):
            begin = i * self.plan.vm_stagger
            result = (self.results or {}).get(vm.name, vm.result)
            if elapsed < begin:
                all_done = False
                continue
            t = _vm_task(vm, result, begin, elapsed, self.started, scale, self.points[vm.name])
            tasks.append(t)
            progress_sum += t.progress
            if t.state == "Stopped":
                assert t.end_time is not None
                ends.append(t.end_time)
                worst = max(worst, t.result, key=lambda r: _RANK.get(r, 0))
            else:
                all_done = False
        n = len(self.plan.vms)
        if all_done and elapsed >= 5.0:
            end = max(ends) if ends else self.started + 5.0 / scale
            state, result, progress = "Stopped", worst, 100
        else:
            end = None
            state = "Starting" if elapsed < 5.0 else "Working"
            result = "None"
            progress = min(99, progress_sum // n) if n else 0
        return SessionView(
            id=self.id,
            plan=self.plan.name,
            backup_server=self.plan.backup_server,
            state=state,
            result=result,
            progress=progress,
            creation_time=self.started,
            end_time=end,
            tasks=tuple(tasks),
        )


def _vm_task(
    vm: VmSpec, result: str, begin: float, elapsed: float, started: float, scale: float, point: Point
) -> TaskView:
    run = elapsed - begin
    starting = min(10.0, vm.duration * 0.1)
    stop_after = vm.duration * (vm.fail_at if result == "Failed" else 1.0)
    created = started + begin / scale
    end = None
    if vm.stall_at_progress is not None and run >= starting:
        state, res, progress = "Working", "None", vm.stall_at_progress
    elif run < starting:
        state, res, progress = "Starting", "None", 0
    elif run < stop_after:
        state, res = "Working", "None"
        progress = min(99, int(100 * (run - starting) / max(1e-9, vm.duration - starting)))
    else:
        state, res = "Stopped", result
        progress = int(100 * vm.fail_at) if result == "Failed" else 100
        end = started + (begin + stop_after) / scale
    return TaskView(
        vm=vm.name,
        state=state,
        result=res,
        progress=progress,
        creation_time=created,
        end_time=end,
        point_id=point.id,
        point_name=point.name,
    )


def _micro(*parts: object) -> float:
    return (uuid.uuid5(uuid.NAMESPACE_OID, "/".join(map(str, parts))).int % 999_999 + 1) / 1e6


@dataclass
class Logon:
    session_id: str
    token: str
    username: str
    last_used: float


@dataclass
class SimTask:
    id: str
    logon_id: str
    created: float
    ready_at: float
    session_id: str
    plan_name: str


@dataclass
class Faults:
    """Fault switches, set by a scenario's `faults:`, by tests, or at run time via POST /_sim/faults.

    The answer faults (status to unknown_enums) hit API calls other than GET /api/; `remaining`
    limits how many calls they hit (None: until cleared).
    """

    latency: float = 0.0  # seconds added to every API answer
    jitter: float = 0.0  # up to this many seconds more, at random
    status: int | None = None  # answer with this status and EM's Error body (503: EM overloaded)
    garbage: bool = False  # 200 with a body that is not XML
    truncate: bool = False  # 200 with the XML cut in half
    reset: bool = False  # the connection is closed half-way through the answer
    content_type: str | None = None  # answer with this Content-Type (e.g. text/html from a proxy)
    huge_bytes: int = 0  # answer with a (valid) body this large
    trickle: float = 0.0  # send the answer 64 bytes at a time, this many seconds apart (slowloris)
    unknown_enums: bool = False  # State and Result values EM never documented
    remaining: int | None = None
    refuse_logon: bool = False  # logons fail with 401 whatever the credentials
    expire_tokens_in: int | None = None  # forget every logon session after this many more API calls
    duplicate_sessions: bool = False  # the session query lists every session twice, out of order
    page_forever: bool = False  # the session query always has a Next page

    ANSWER_FAULTS = (
        "status",
        "garbage",
        "truncate",
        "reset",
        "content_type",
        "huge_bytes",
        "trickle",
        "unknown_enums",
    )

    def take(self) -> Faults | None:
        """The answer faults for one API call (and count it against `remaining`)."""
        if not any(getattr(self, f) for f in self.ANSWER_FAULTS):
            return None
        if self.remaining is not None:
            if self.remaining <= 0:
                return None
            self.remaining -= 1
        return dataclasses.replace(self)

    def update(self, data: dict[str, object]) -> None:
        """Set switches from a mapping (unknown names are an error); the others go back to off."""
        known = {f.name: f for f in dataclasses.fields(self)}
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"unknown fault {sorted(unknown)[0]!r}; known: {', '.join(sorted(known))}")
        fresh = Faults(**data)  # type: ignore[arg-type]
        for name in known:
            setattr(self, name, getattr(fresh, name))


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
        self.points: dict[str, Point] = {}
        self._points_by_vm: dict[tuple[str, str], list[Point]] = {}
        self.dynamic: dict[str, DynamicSession] = {}
        self.logons: dict[str, Logon] = {}
        self.tasks: dict[str, SimTask] = {}
        self.starts: list[StartRecord] = []
        self.logouts = 0
        self.cookie_requests = 0  # API calls that carried an EM cookie (a client should keep none)
        self.queries: collections.deque[str] = collections.deque(maxlen=500)  # decoded /api/query strings
        self.requests: collections.Counter[str] = collections.Counter()  # "METHOD route" -> count
        self._task_seq = 0
        self._next_start: dict[str, float] = {}
        fraction = scenario.profile.point_name_fraction
        for plan in scenario.plans:
            for vm in plan.vms:
                newest = self.born - vm.restore_point_age
                pts = [
                    Point(
                        id=stable_id("point", plan.id, vm.name, str(k)),
                        vm=vm.name,
                        plan_id=plan.id,
                        backup_server=plan.backup_server,
                        # whole seconds, or (EM 13) a stable microsecond fraction
                        created=float(int(newest - k * scenario.point_interval))
                        + (_micro(plan.id, vm.name, k) if fraction else 0.0),
                        fraction=fraction,
                    )
                    for k in range(scenario.points_per_vm)
                ]
                self._points_by_vm[(plan.id, vm.name)] = pts
                self.points.update((p.id, p) for p in pts)
            for k, (ago, result) in enumerate(plan.history):
                sid = stable_id("history", plan.id, str(k))
                started = self.born - ago
                self.dynamic[sid] = DynamicSession(
                    id=sid,
                    plan=plan,
                    started=started,
                    points=self._choose_points(plan, started),
                    results={vm.name: result for vm in plan.vms},
                )
            if plan.start_at is not None:
                self._next_start[plan.id] = self.born + plan.start_at / scenario.time_scale
        plan_by_name = {p.name: p for p in scenario.plans}
        for fixed in scenario.sessions:
            plan = plan_by_name[fixed.view.plan]
            for t in fixed.view.tasks:
                self.points[t.point_id] = Point(
                    id=t.point_id,
                    vm=t.vm,
                    plan_id=plan.id,
                    backup_server=plan.backup_server,
                    created=fixed.point_times[t.point_id],
                )

    def reschedule(self, now: float) -> None:
        """Let the scenario's scheduled starts count from `now` (e.g. once an observer is ready)."""
        with self.lock:
            for plan_id in self._next_start:
                plan = self.plans[plan_id]
                assert plan.start_at is not None
                self._next_start[plan_id] = now + plan.start_at / self.scenario.time_scale

    # -- logon sessions -------------------------------------------------------------------

    def role(self, username: str) -> str:
        return self.scenario.roles.get(username, "portal_administrator")

    def logon(self, username: str, password: str) -> Logon | None:
        expected = self.scenario.users.get(username)
        if expected is None or not secrets.compare_digest(expected.encode(), password.encode()):
            return None
        sid = str(uuid.uuid4())
        # base64(SessionId), as EM does, so clients that derive the token from the body still work
        token = base64.b64encode(sid.encode()).decode()
        logon = Logon(session_id=sid, token=token, username=username, last_used=self.clock())
        with self.lock:
            self.logons[token] = logon
        return logon

    def authenticate(self, token: str | None) -> Logon | None:
        if not token:
            return None
        now = self.clock()
        with self.lock:
            logon = self.logons.get(token)
            if logon is None:
                return None
            if now - logon.last_used > self.scenario.token_idle_timeout:
                del self.logons[token]
                return None
            logon.last_used = now
            return logon

    def logout(self, session_id: str, caller: Logon) -> bool:
        with self.lock:
            for token, logon in list(self.logons.items()):
                if logon.session_id == session_id and logon.username == caller.username:
                    del self.logons[token]
                    self.logouts += 1
                    self.tasks = {k: t for k, t in self.tasks.items() if t.logon_id != session_id}
                    return True
        return False

    def expire_tokens(self) -> None:
        """Forget every logon session, as EM does after its idle timeout or a restart."""
        with self.lock:
            self.logons.clear()

    # -- sessions ---------------------------------------------------------------------------

    def _choose_points(self, plan: PlanSpec, before: float) -> dict[str, Point]:
        chosen = {}
        for vm in plan.vms:
            pts = self._points_by_vm[(plan.id, vm.name)]  # newest first
            chosen[vm.name] = next((p for p in pts if p.created < before), pts[-1])
        return chosen

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

    def _new_session(self, plan: PlanSpec, started: float, start_date: float | None) -> DynamicSession:
        sid = str(uuid.uuid4())
        points = self._choose_points(plan, start_date if start_date is not None else started)
        session = DynamicSession(id=sid, plan=plan, started=started, points=points)
        self.dynamic[sid] = session
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
            views = [s.view(now, scale) for s in self.dynamic.values()]
        views.extend(f.view for f in self.scenario.sessions)
        views.sort(key=lambda v: (v.creation_time or 0.0, v.id))
        return views

    def session(self, session_id: str) -> SessionView | None:
        return next((s for s in self.sessions() if s.id == session_id), None)

    # -- actions -----------------------------------------------------------------------------

    def start_plan(
        self, plan_id: str, start_now: bool, start_date: float | None, caller: Logon
    ) -> SimTask | None:
        now = self.clock()
        with self.lock:
            plan = self.plans.get(plan_id)
            if plan is None:
                return None
            self.starts.append(
                StartRecord(plan_id=plan_id, start_now=start_now, start_date=start_date, at=now)
            )
            session = self._new_session(plan, now, start_date)
            self._task_seq += 1
            task = SimTask(
                id=f"task-{self._task_seq}",
                logon_id=caller.session_id,
                created=now,
                ready_at=now + self.scenario.task_delay / self.scenario.time_scale,
                session_id=session.id,
                plan_name=plan.name,
            )
            self.tasks[task.id] = task
            return task

    def task(self, task_id: str, caller: Logon) -> tuple[SimTask, str] | None:
        """The task and its state; tasks belong to the logon session that made them.

        Running, then OperationFinished (done on the backup server, EM has not collected it yet) for
        the scenario's task_collect_delay, then Finished."""
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None or task.logon_id != caller.session_id:
                return None
            now = self.clock()
            if now < task.ready_at:
                return task, "Running"
            collected_at = task.ready_at + self.scenario.task_collect_delay / self.scenario.time_scale
            return task, "Finished" if now >= collected_at else "OperationFinished"

    def delete_task(self, task_id: str, caller: Logon) -> bool:
        with self.lock:
            found = self.task(task_id, caller)
            if found is None:
                return False
            del self.tasks[task_id]
            return True


@dataclass
class ManualClock:
    """A clock tests move by hand."""

    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
