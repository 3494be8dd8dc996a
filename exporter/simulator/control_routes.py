"""The simulator's own controls (not part of EM): fault switches, forgetting logons, request counts."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from exporter.simulator.app import Simulator


async def set_faults(sim: Simulator, request: Request) -> Response:
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


async def expire_tokens(sim: Simulator, request: Request) -> Response:
    sim.world.expire_tokens()
    return JSONResponse({"ok": True})


async def stats(sim: Simulator, request: Request) -> Response:
    with sim.world.lock:
        return JSONResponse(
            {
                "requests": dict(sim.world.requests),
                "starts": len(sim.world.starts),
                "logouts": sim.world.logouts,
                "logons": len(sim.world.logons),
            }
        )
