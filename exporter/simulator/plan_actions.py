"""The plan actions EM documents, acted out on the simulated world: `?action=start` (a failover),
`?action=test` (a test failover: a session of its own, its task a start's, the replicas' State unchanged)
and `?action=undo` (the VMs running from their replicas switch back; its task links no session)."""

from __future__ import annotations

from exporter.simulator.logons import Logon
from exporter.simulator.tasks import SimTask
from exporter.simulator.world import StartRecord, World


def start_plan(
    world: World, plan_id: str, start_now: bool, start_date: float | None, caller: Logon
) -> SimTask | None:
    now = world.clock()
    with world.lock:
        plan = world.plans.get(plan_id)
        if plan is None:
            return None
        world.starts.append(StartRecord(plan_id=plan_id, start_now=start_now, start_date=start_date, at=now))
        session = world._new_session(plan, now, start_date)
        return world.task_book.create(caller, session.id, plan.name, plan.backup_server)


def test_plan(world: World, plan_id: str, caller: Logon) -> SimTask | None:
    """POST ?action=test: a test failover of the plan (a session of its own, the same on the wire)."""
    now = world.clock()
    with world.lock:
        plan = world.plans.get(plan_id)
        if plan is None:
            return None
        world.tests.append((plan_id, now))
        session = world._new_session(plan, now, None, test=True)
        return world.task_book.create(caller, session.id, plan.name, plan.backup_server)


def undo_plan(world: World, plan_id: str, caller: Logon) -> SimTask | None:
    """POST ?action=undo: the plan's VMs that run from their replicas switch back (their State Ready)."""
    with world.lock:
        plan = world.plans.get(plan_id)
        if plan is None:
            return None
        world.undos.append((plan_id, world.clock()))
        world.replication.undo(plan, world.clock())
        return world.task_book.create(caller, "", plan.name, plan.backup_server, undo=True)
