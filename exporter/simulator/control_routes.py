"""The simulator's own controls (not part of EM): fault switches, forgetting logons, request counts."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from exporter.simulator.responder import Responder


async def set_faults(sim: Responder, request: Request) -> Response:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        return JSONResponse({"error": "body must be JSON"}, status_code=400)
    if not isinstance(data, dict):
        return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
    try:
        with sim.world.lock:
            sim.world.faults.update(data)
    except (TypeError, ValueError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({"ok": True})


async def expire_tokens(sim: Responder, request: Request) -> Response:
    sim.world.logon_book.expire()
    return JSONResponse({"ok": True})


async def stats(sim: Responder, request: Request) -> Response:
    with sim.world.lock:
        return JSONResponse(
            {
                "requests": dict(sim.world.requests),
                "starts": len(sim.world.starts),
                "logouts": sim.world.logouts,
                "logons": len(sim.world.logons),
            }
        )


async def set_replica_state(sim: Responder, request: Request) -> Response:
    """`{"plan": name, "state": "Ready"|"Failback"|"PermanentFailover"|..., "remove_points": false}`: what
    an undo, a failback or a permanent failover does to the plan VMs' replicas (EM has no failback call
    of its own); `remove_points`: a permanent failover of snapshot replicas removes their points."""
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        return JSONResponse({"error": "body must be JSON"}, status_code=400)
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("plan"), str)
        or not isinstance(data.get("state"), str)
    ):
        return JSONResponse({"error": "body must be {plan: name, state: State}"}, status_code=400)
    n = sim.world.set_replica_state(data["plan"], data["state"], data.get("remove_points") is True)
    if not n:
        return JSONResponse({"error": "no such plan, or its VMs have no point"}, status_code=404)
    return JSONResponse({"ok": True, "vms": n})
