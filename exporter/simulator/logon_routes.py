"""The simulated EM's entry point and logon sessions: GET /api/, logon, logon list, logout."""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request
from starlette.responses import Response

from exporter.simulator import render
from exporter.simulator.logons import Logon
from exporter.simulator.responder import Responder

TOKEN = "X-RestSvcSessionId"  # noqa: S105 - a header name


async def root(sim: Responder, request: Request) -> Response:
    sim.count(request)
    if sim.replay is not None and sim.replay.api_root is not None:
        return Response(sim.replay.api_root, media_type="application/xml; charset=utf-8")
    return sim.respond(request, render.enterprise_manager(sim.base(request), sim.profile.api_versions))


async def logon(sim: Responder, request: Request) -> Response:
    sim.count(request)
    fault = await sim.fault(request)
    if fault is not None:
        return fault
    challenge = {"WWW-Authenticate": "Basic Realm=RestSvc"}
    if sim.world.faults.refuse_logon:
        return sim.error(request, 401, "Login failed (simulated).", challenge)
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("basic "):
        return sim.error(request, 401, "Authentication required.", challenge)
    try:
        user, _, password = base64.b64decode(auth[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return sim.error(request, 401, "Malformed Basic credentials.", challenge)
    logon = sim.world.logon_book.logon(user, password)
    if logon is None:
        return sim.error(request, 401, "Login failed: wrong user name or password.", challenge)
    if sim.world.logon_book.role(user) == "none":
        sim.world.logout(logon.session_id, logon)
        return sim.error(request, 403, "Access denied. The account has no Enterprise Manager role.")
    base = sim.base(request)
    return sim.respond(
        request,
        render.logon_node(base, logon.session_id, logon.username),
        201,
        headers={
            TOKEN: logon.token,
            "Set-Cookie": f"{TOKEN}={logon.token}; Path=/api;",
            "Location": f"{base}/logonSessions/{logon.session_id}",
        },
    )


async def list_logons(sim: Responder, request: Request, caller: Logon) -> Response:
    base = sim.base(request)
    with sim.world.lock:
        mine = [lg for lg in sim.world.logons.values() if lg.username == caller.username]
    return sim.respond(
        request,
        ("LogonSessions", {}, [render.logon_node(base, lg.session_id, lg.username) for lg in mine]),
        collection_item="LogonSession",
    )


async def logout(sim: Responder, request: Request, caller: Logon) -> Response:
    if not sim.world.logout(request.path_params["id"], caller):
        return sim.error(request, 404, "Logon session not found.")
    return Response(status_code=204, headers={"Server": "Microsoft-HTTPAPI/2.0"})
