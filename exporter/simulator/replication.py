"""Replica points as the backup servers make them: one every VM's replication interval, the oldest
dropped past `points_per_vm` (retention), none while the VM runs from its replica; and their State,
which a failover, an undo or a failback changes without a new point.

Each VM's points: the newest `restore_point_age_seconds` before the simulator starts, then one every
`replication_interval_seconds` (`replication: running`); `stopped`: no new point after the start (its
newest ages); `never`: no point at all. A history session with `in_dr: true` left its VMs in Failover:
no point after it. Times here are facts about data, on the wall clock, never scaled.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable
from dataclasses import dataclass

from exporter.simulator.points import Point, stable_fraction
from exporter.simulator.scenario_model import PlanSpec, Scenario, VmSpec, stable_id

# States in which replication to the VM is stopped (it runs from its replica, or is on its way back).
DR_STATES = frozenset({"Failover", "Failback", "PermanentFailover"})
VmKey = tuple[str, str]  # (plan id, VM name)


@dataclass
class _Schedule:
    interval: float
    made: int = 0  # points made since the start


class Replication:
    def __init__(self, scenario: Scenario, born: float, lock: threading.RLock) -> None:
        self.scenario = scenario
        self.lock = lock
        self.points: dict[str, Point] = {}
        self.by_vm: dict[VmKey, list[Point]] = {}  # newest first
        self._states: dict[str, list[tuple[float, str]]] = {}  # point id -> (from when, State), in order
        self._next: list[tuple[float, str, str]] = []  # heap of (when, plan id, VM): the next point due
        self._schedules: dict[VmKey, _Schedule] = {}
        self._fraction = scenario.profile.point_name_fraction
        for plan in scenario.plans:
            in_dr = [born - ago for ago, _, dr in plan.history if dr]
            for vm in plan.vms:
                self._first_points(plan, vm, born, min(in_dr, default=None))

    def _first_points(self, plan: PlanSpec, vm: VmSpec, born: float, cut: float | None) -> None:
        key = (plan.id, vm.name)
        interval = vm.replication_interval or self.scenario.point_interval
        newest = born - vm.restore_point_age
        pts = []
        if vm.replication != "never":
            for k in range(self.scenario.points_per_vm):
                created = float(int(newest - k * interval))
                if cut is not None and created >= cut:
                    continue  # the VM has run from its replica since: no point after its failover
                frac = stable_fraction(plan.id, vm.name, k) if self._fraction else 0.0
                pts.append(
                    self._point(stable_id("point", plan.id, vm.name, str(k)), plan, vm.name, created + frac)
                )
        self.by_vm[key] = pts
        self.points.update((p.id, p) for p in pts)
        if vm.replication == "running" and cut is None:
            self._schedules[key] = _Schedule(interval)
            heapq.heappush(self._next, (newest + interval, plan.id, vm.name))

    def _point(self, pid: str, plan: PlanSpec, vm: str, created: float) -> Point:
        return Point(pid, vm, plan.id, plan.backup_server, created, self._fraction)

    def advance(self, now: float, plans: dict[str, PlanSpec]) -> None:
        """Make the points due by `now`, unless the VM then runs from its replica."""
        with self.lock:
            while self._next and self._next[0][0] <= now:
                at, plan_id, vm = heapq.heappop(self._next)
                key = (plan_id, vm)
                sched = self._schedules.get(key)
                if sched is None:  # its points went (a permanent failover): it is replicated no more
                    continue
                pts = self.by_vm[key]
                if not pts or self.state_at(pts[0].id, at) not in DR_STATES:
                    sched.made += 1
                    pid = stable_id("point", plan_id, vm, "made", str(sched.made))
                    frac = stable_fraction(plan_id, vm, "made", sched.made) if self._fraction else 0.0
                    point = self._point(pid, plans[plan_id], vm, float(int(at)) + frac)
                    pts.insert(0, point)
                    self.points[pid] = point
                    for old in pts[self.scenario.points_per_vm :]:
                        self.points.pop(old.id, None)  # retention
                    del pts[self.scenario.points_per_vm :]
                heapq.heappush(self._next, (at + sched.interval, plan_id, vm))

    def choose(self, plan: PlanSpec, before: float) -> dict[str, Point | None]:
        """Each VM's newest point before `before` (or its oldest): what a failover takes; None for a VM
        never replicated."""
        chosen: dict[str, Point | None] = {}
        for vm in plan.vms:
            pts = self.by_vm[(plan.id, vm.name)]  # newest first
            chosen[vm.name] = next((p for p in pts if p.created < before), pts[-1] if pts else None)
        return chosen

    def visible(self, ids: list[str] | None, as_of: Callable[[str], float]) -> list[tuple[Point, str]]:
        """The points (all, or those of these IDs) EM shows: made before its last collection from their
        backup server (`as_of`), each with its State as of then."""
        found = self.points.values() if ids is None else [self.points[i] for i in ids if i in self.points]
        when = {server: as_of(server) for server in {p.backup_server for p in found}}
        return [
            (p, self.state_at(p.id, when[p.backup_server]))
            for p in found
            if p.created <= when[p.backup_server]
        ]

    def state_at(self, point_id: str, when: float) -> str:
        state = "Ready"
        for at, s in self._states.get(point_id, ()):
            if at > when:
                break
            state = s
        return state

    def set_state(self, point_id: str, at: float, state: str) -> None:
        with self.lock:
            changes = self._states.setdefault(point_id, [])
            changes.append((at, state))
            changes.sort(key=lambda c: c[0])

    def set_plan_state(self, plan: PlanSpec, at: float, state: str, remove_points: bool = False) -> int:
        """Every VM of the plan with a point: its replica takes this State from `at` (undo: Ready), on every
        one of its points (EM: "State of the tenant VM replica"). A failback first makes a new point (EM:
        the "failback protective snapshot" "acts as a new restore point"); a permanent failover of a
        snapshot replica (`remove_points`) removes its points. How many VMs."""
        with self.lock:
            n = 0
            for vm in plan.vms:
                key = (plan.id, vm.name)
                pts = self.by_vm.get(key) or []
                if not pts:
                    continue
                n += 1
                if state == "PermanentFailover" and remove_points:
                    for p in pts:
                        self.points.pop(p.id, None)
                    self.by_vm[key] = []
                    self._schedules.pop(key, None)
                    continue
                if state == "Failback":
                    pid = stable_id("point", plan.id, vm.name, "failback", str(at))
                    protective = self._point(pid, plan, vm.name, float(int(at)))
                    pts.insert(0, protective)
                    self.points[pid] = protective
                for p in pts:
                    self.set_state(p.id, at, state)
            return n

    def undo(self, plan: PlanSpec, at: float) -> int:
        """The plan's VMs running from their replicas switch back: points in Failover are Ready from `at`."""
        with self.lock:
            pts = [p for vm in plan.vms for p in self.by_vm.get((plan.id, vm.name)) or ()]
            back = [p for p in pts if self.state_at(p.id, at) == "Failover"]
            for p in back:
                self.set_state(p.id, at, "Ready")
            return len(back)

    def failover(
        self, plan: PlanSpec, started: float, chosen: dict[str, Point | None], results: dict[str, str]
    ) -> None:
        """A failover session's VMs run from the points it chose, each from its task's start; a VM that
        fails goes back to Ready when its task ends; `undo_after_seconds` undoes the plan."""
        scale = self.scenario.time_scale
        for i, vm in enumerate(plan.vms):
            point = chosen.get(vm.name)
            if point is None:
                continue
            begin = started + i * plan.vm_stagger / scale
            self.set_state(point.id, begin, "Failover")
            if results.get(vm.name, vm.result) == "Failed":
                self.set_state(
                    point.id, started + (i * plan.vm_stagger + vm.duration * vm.fail_at) / scale, "Ready"
                )
            elif plan.undo_after is not None:
                self.set_state(point.id, max(begin, started + plan.undo_after / scale), "Ready")
