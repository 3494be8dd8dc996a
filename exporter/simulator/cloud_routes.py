"""The simulated EM's Cloud Connect resources: plans (and their start), sessions, replica points, tasks."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from exporter.em.errors import ParseError
from exporter.em.timefmt import parse_time
from exporter.em.xmldoc import parse_document
from exporter.simulator import plan_actions, render
from exporter.simulator.logons import Logon
from exporter.simulator.responder import Responder


async def plans(sim: Responder, request: Request, caller: Logon) -> Response:
    base = sim.base(request)
    plans = list(sim.world.plans.values())
    entity = request.query_params.get("format", "").lower() == "entity"
    if sim.replay is not None:
        nodes = [n for _, n in sim.replay.plan_items(entity)]
        name = "CloudFailoverPlans" if entity else "EntityReferences"
        item = "CloudFailoverPlan" if entity else "Ref"
        return sim.respond(request, (name, {}, nodes), collection_item=item)
    if entity:
        return sim.respond(
            request,
            ("CloudFailoverPlans", {}, [render.plan_entity(base, p) for p in plans]),
            collection_item="CloudFailoverPlan",
        )
    return sim.respond(
        request,
        ("EntityReferences", {}, [render.plan_ref(base, p) for p in plans]),
        collection_item="Ref",
    )


async def plan(sim: Responder, request: Request, caller: Logon) -> Response:
    plan = sim.world.plans.get(request.path_params["id"])
    if plan is None:
        return sim.error(request, 404, "Cloud failover plan not found.")
    base = sim.base(request)
    if request.query_params.get("format", "").lower() == "entity":
        return sim.respond(request, render.plan_entity(base, plan, actions=may_act(sim, caller)))
    return sim.respond(request, render.plan_ref(base, plan))


def may_act(sim: Responder, caller: Logon) -> bool:
    """Whether action links show for this caller (profiles.py: action_links)."""
    if sim.profile.action_links == "always":
        return True
    return sim.world.logon_book.role(caller.username) == "portal_administrator"


async def server(sim: Responder, request: Request, caller: Logon) -> Response:
    server_id = request.path_params["id"]
    name = sim.world.servers.get(server_id)
    if name is None:
        return sim.error(request, 404, "Backup server not found.")
    return sim.respond(
        request, render.backup_server_entity(sim.base(request), server_id, name, may_act(sim, caller))
    )


async def plan_action(sim: Responder, request: Request, caller: Logon) -> Response:
    if sim.replay is not None:
        return sim.error(request, 403, "A replayed Enterprise Manager starts nothing.")
    action = request.query_params.get("action", "")
    if action not in ("start", "test", "undo"):
        return sim.error(request, 400, f"Unsupported action '{action[:40]}'.")
    if sim.world.logon_book.role(caller.username) != "portal_administrator":
        return sim.error(request, 403, "Access denied.")
    if action != "start":  # test and undo take no body (documented)
        plan_id = request.path_params["id"]
        act = plan_actions.test_plan if action == "test" else plan_actions.undo_plan
        found = act(sim.world, plan_id, caller)
        if found is None:
            return sim.error(request, 404, "Cloud failover plan not found.")
        return sim.respond(request, render.task_node(sim.base(request), found, "Running"), 202)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    try:
        start_now, start_date = _start_spec(ctype, raw)
    except ValueError as exc:
        return sim.error(request, 400, str(exc))
    task = plan_actions.start_plan(sim.world, request.path_params["id"], start_now, start_date, caller)
    if task is None:
        return sim.error(request, 404, "Cloud failover plan not found.")
    return sim.respond(request, render.task_node(sim.base(request), task, "Running"), 202)


async def server_action(sim: Responder, request: Request, caller: Logon) -> Response:
    """POST /api/backupServers/{ID}?action=collect: EM collects from that backup server now (202, Task)."""
    action = request.query_params.get("action", "")
    if action != "collect":
        return sim.error(request, 400, f"Unsupported action '{action[:40]}'.")
    if sim.world.logon_book.role(caller.username) != "portal_administrator":
        return sim.error(request, 403, "Access denied.")
    refused = sim.world.faults.collect_status
    if refused is not None:
        return sim.error(request, refused, "Data collection failed.")
    task = sim.world.collect(request.path_params["id"], caller)
    if task is None:
        return sim.error(request, 404, "Backup server not found.")
    return sim.respond(request, render.task_node(sim.base(request), task, "Running"), 202)


async def sessions(sim: Responder, request: Request, caller: Logon) -> Response:
    base = sim.base(request)
    # The reference collection lists the last 30 days only (documented).
    cutoff = sim.world.clock() - 30 * 86400
    views = [s for s in sim.world.sessions() if (s.creation_time or 0) >= cutoff]
    if request.query_params.get("format", "").lower() == "entity":
        return sim.respond(
            request,
            (
                "CloudFailoverSessions",
                {},
                [
                    render.session_entity(
                        base, s, sim.profile.time_digits, with_tasks=sim.shows_tasks(s, in_query=False)
                    )
                    for s in views
                ],
            ),
            collection_item="CloudFailoverSession",
        )
    return sim.respond(
        request,
        ("EntityReferences", {}, [render.session_ref(base, s) for s in views]),
        collection_item="Ref",
    )


async def session(sim: Responder, request: Request, caller: Logon) -> Response:
    s = sim.world.session(request.path_params["id"])
    if s is None:
        return sim.error(request, 404, "Cloud failover session not found.")
    base = sim.base(request)
    if request.query_params.get("format", "").lower() == "entity":
        entity = render.session_entity(
            base, s, sim.profile.time_digits, with_tasks=sim.shows_tasks(s, in_query=False)
        )
        return sim.respond(request, entity)
    return sim.respond(request, render.session_ref(base, s))


async def points(sim: Responder, request: Request, caller: Logon) -> Response:
    base = sim.base(request)
    pts = sim.world.replica_points()
    item = sim.profile.point_item
    digits = sim.profile.time_digits
    if request.query_params.get("format", "").lower() == "entity":
        vm_name = sim.profile.point_vm_name
        nodes = [render.point_entity(base, p, item, digits, state, vm_name) for p, state in pts]
        return sim.respond(request, ("CloudVmReplicaPoints", {}, nodes), collection_item=item)
    return sim.respond(
        request, ("EntityReferences", {}, [render.point_ref(base, p) for p, _ in pts]), collection_item="Ref"
    )


async def point(sim: Responder, request: Request, caller: Logon) -> Response:
    if sim.replay is not None:
        found = sim.replay.point_items([request.path_params["id"]], True, "CloudVmReplicaPoint")
        if not found:
            return sim.error(request, 404, "Replica point not found.")
        return sim.respond(request, found[0][1])
    found_here = sim.world.replica_points([request.path_params["id"]])
    if not found_here:
        return sim.error(request, 404, "Replica point not found.")
    p, state = found_here[0]
    base = sim.base(request)
    if request.query_params.get("format", "").lower() == "entity":
        node = render.point_entity(
            base, p, digits=sim.profile.time_digits, state=state, vm_name=sim.profile.point_vm_name
        )
        return sim.respond(request, node)
    return sim.respond(request, render.point_ref(base, p))


async def task(sim: Responder, request: Request, caller: Logon) -> Response:
    found = sim.world.task(request.path_params["id"], caller)
    if found is None:
        return sim.error(request, 404, "Task not found.")
    task, state = found
    return sim.respond(request, render.task_node(sim.base(request), task, state))


async def delete_task(sim: Responder, request: Request, caller: Logon) -> Response:
    if not sim.world.delete_task(request.path_params["id"], caller):
        return sim.error(request, 404, "Task not found.")
    return Response(status_code=204)


def _start_spec(content_type: str, raw: bytes) -> tuple[bool, float | None]:
    if content_type == "application/json":
        try:
            data: Any = json.loads(raw.decode("utf-8-sig"))
        except (ValueError, UnicodeDecodeError):
            raise ValueError("Request body is not valid JSON.") from None
        start_now = data.get("StartNow") is True if isinstance(data, dict) else False
        date_raw = data.get("StartDate") if isinstance(data, dict) else None
    elif content_type == "application/xml":
        try:
            root = parse_document(raw)
        except ParseError:
            raise ValueError("Node [root] does not exist.") from None
        if root.tag.rpartition("}")[2] != "CloudFailoverPlanManagementSpec":
            raise ValueError("Node [root] does not exist.")
        fields = {c.tag.rpartition("}")[2]: (c.text or "").strip() for c in root}
        start_now = fields.get("StartNow", "").lower() == "true"
        date_raw = fields.get("StartDate")
    else:
        raise ValueError("Content-Type must be application/xml or application/json.")
    start_date = None
    if not start_now:
        if not date_raw:
            raise ValueError("Either StartNow or StartDate must be specified.")
        try:
            start_date = parse_time(str(date_raw))
        except ParseError:
            raise ValueError("StartDate is not a valid date.") from None
    return start_now, start_date
