"""Failover sessions as the simulator plays them: computed from the clock on each read, so a test can set
the clock to any moment of a failover and get a deterministic answer; and the replica points they use."""

from __future__ import annotations

from dataclasses import dataclass

from exporter.simulator.points import Point
from exporter.simulator.scenario_model import PlanSpec, Scenario, VmSpec
from exporter.simulator.views import SessionView, TaskView

_RANK = {"Success": 0, "Warning": 1, "Failed": 2}


@dataclass
class DynamicSession:
    """A failover run started at `started` (wall clock), its VMs progressing as the plan's specs say."""

    id: str
    plan: PlanSpec
    started: float
    points: dict[str, Point | None]  # vm name -> the point it fails over to (None: it has none)
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
            point = self.points.get(vm.name)
            # a VM never replicated has nothing to fail over to
            result = "Failed" if point is None else (self.results or {}).get(vm.name, vm.result)
            if elapsed < begin:
                all_done = False
                continue
            t = _vm_task(vm, result, begin, elapsed, self.started, scale, point)
            tasks.append(t)
            progress_sum += t.progress
            if t.state == "Stopped":
                assert t.end_time is not None
                ends.append(t.end_time)
                worst = max(worst, t.result, key=lambda r: _RANK.get(r, 0))
            else:
                all_done = False
        n = len(self.plan.vms)
        failure = ""
        if all_done and elapsed >= 5.0:
            end = max(ends) if ends else self.started + 5.0 / scale
            state, result, progress = "Stopped", worst, 100
            failed = sum(t.result == "Failed" for t in tasks)
            if failed:
                failure = f"{failed} of {n} VMs failed to fail over (simulated)"
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
            failure_message=failure,
        )


def _vm_task(
    vm: VmSpec, result: str, begin: float, elapsed: float, started: float, scale: float, point: Point | None
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
        point_id=None if point is None else point.id,
        point_name=None if point is None else point.name,
        failure_message=_failure(vm, res, point),
    )


def _failure(vm: VmSpec, result: str, point: Point | None) -> str:
    """Why a VM's failover failed, as EM would say it (a simulated message)."""
    if result != "Failed":
        return ""
    if point is None:
        return f"No restore point found for VM {vm.name} (simulated)"
    return vm.failure_message or f"Failed to power on replica of {vm.name}: not enough resources (simulated)"


def fixed_session_points(scenario: Scenario) -> list[Point]:
    """The points the scenario's fixed sessions (e.g. the documentation's example) name."""
    plan_by_name = {p.name: p for p in scenario.plans}
    out = []
    for fixed in scenario.sessions:
        plan = plan_by_name[fixed.view.plan]
        for t in fixed.view.tasks:
            if t.point_id is None:
                continue
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
