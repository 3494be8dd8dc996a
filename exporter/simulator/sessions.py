"""Failover sessions as the simulator plays them: computed from the clock on each read, so a test can set
the clock to any moment of a failover and get a deterministic answer; and the replica points they use."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

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


def scenario_points(scenario: Scenario, born: float) -> dict[tuple[str, str], list[Point]]:
    """(plan id, VM) -> its replica points, newest first: one every point_interval, the newest
    restore_point_age before `born`; whole seconds, or (EM 13) with a stable microsecond fraction."""
    fraction = scenario.profile.point_name_fraction
    out: dict[tuple[str, str], list[Point]] = {}
    for plan in scenario.plans:
        for vm in plan.vms:
            newest = born - vm.restore_point_age
            out[(plan.id, vm.name)] = [
                Point(
                    id=stable_id("point", plan.id, vm.name, str(k)),
                    vm=vm.name,
                    plan_id=plan.id,
                    backup_server=plan.backup_server,
                    created=float(int(newest - k * scenario.point_interval))
                    + (_micro(plan.id, vm.name, k) if fraction else 0.0),
                    fraction=fraction,
                )
                for k in range(scenario.points_per_vm)
            ]
    return out


def fixed_session_points(scenario: Scenario) -> list[Point]:
    """The points the scenario's fixed sessions (e.g. the documentation's example) name."""
    plan_by_name = {p.name: p for p in scenario.plans}
    out = []
    for fixed in scenario.sessions:
        plan = plan_by_name[fixed.view.plan]
        for t in fixed.view.tasks:
            out.append(
                Point(
                    id=t.point_id,
                    vm=t.vm,
                    plan_id=plan.id,
                    backup_server=plan.backup_server,
                    created=fixed.point_times[t.point_id],
                )
            )
    return out
