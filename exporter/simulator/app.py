"""The simulated EM REST API as an ASGI app: real HTTP, EM's paths, status codes, headers and bodies."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from exporter.simulator import cloud_routes, control_routes, logon_routes, query_routes, render
from exporter.simulator.answers import faulty, wants_json
from exporter.simulator.faults import Faults
from exporter.simulator.logons import Logon
from exporter.simulator.query_routes import CLOUD_QUERY_TYPES
from exporter.simulator.replay import Replay
from exporter.simulator.world import World

_UID_ONLY = re.compile(r'UID=="[^"]*"(,UID=="[^"]*")*', re.IGNORECASE)
_UID_VALUE = re.compile(r'UID=="([^"]*)"', re.IGNORECASE)
TOKEN = "X-RestSvcSessionId"  # noqa: S105 - a header name
Handler = Callable[["Simulator", Request, Logon], Awaitable[Response]]
PlainHandler = Callable[["Simulator", Request], Awaitable[Response]]


def _base(request: Request, link_host: str | None = None) -> str:
    # Links name the host EM thinks it has, and no path prefix a reverse proxy in front may add.
    return f"{request.url.scheme}://{link_host or request.url.netloc}/api"


class Simulator:
    """The EM simulator as an ASGI app (`.app`): the route table and what every answer goes through
    (faults, authentication, roles, the profile's headers and JSON casing). The handlers live in
    logon_routes, cloud_routes, query_routes and control_routes."""

    def __init__(self, world: World, replay: Replay | None = None) -> None:
        self.world = world
        self.profile = world.scenario.profile
        self.replay = replay  # serve a capture's answers instead of the scenario's
        em, auth, plain = "GET", self._auth, self._plain
        routes = [
            Route("/api", plain(logon_routes.root), methods=[em]),
            Route("/api/", plain(logon_routes.root), methods=[em]),
            Route("/api/sessionMngr", plain(logon_routes.logon), methods=["POST"]),
            Route("/api/sessionMngr/", plain(logon_routes.logon), methods=["POST"]),
            Route("/api/logonSessions", auth(logon_routes.list_logons), methods=[em]),
            Route("/api/logonSessions/{id}", auth(logon_routes.logout), methods=["DELETE"]),
            Route("/api/cloud/cloudFailoverPlans", auth(cloud_routes.plans), methods=[em]),
            Route("/api/cloud/cloudFailoverPlans/{id}", auth(cloud_routes.plan), methods=[em]),
            Route("/api/cloud/cloudFailoverPlans/{id}", auth(cloud_routes.plan_action), methods=["POST"]),
            Route("/api/cloud/failoverSessions", auth(cloud_routes.sessions), methods=[em]),
            Route("/api/cloud/failoverSessions/{id}", auth(cloud_routes.session), methods=[em]),
            Route("/api/cloud/vmReplicaPoints", auth(cloud_routes.points), methods=[em]),
            Route("/api/cloud/vmReplicaPoints/{id}", auth(cloud_routes.point), methods=[em]),
            Route("/api/backupServers/{id}", auth(cloud_routes.server_action), methods=["POST"]),
            Route("/api/query", auth(query_routes.query), methods=[em]),
            Route("/api/tasks/{id}", auth(cloud_routes.task), methods=[em]),
            Route("/api/tasks/{id}", auth(cloud_routes.delete_task), methods=["DELETE"]),
            Route("/_sim/faults", plain(control_routes.set_faults), methods=["POST"]),
            Route("/_sim/expire-tokens", plain(control_routes.expire_tokens), methods=["POST"]),
            Route("/_sim/stats", plain(control_routes.stats), methods=[em]),
            Route("/_sim/replica-state", plain(control_routes.set_replica_state), methods=["POST"]),
        ]
        self.app = Starlette(routes=routes)

    # -- plumbing ---------------------------------------------------------------------------

    def base(self, request: Request) -> str:
        return _base(request, self.profile.link_host)

    @property
    def _json_case(self) -> str:
        return self.world.scenario.json_case or self.profile.json_case

    def respond(
        self,
        request: Request,
        node: render.Node,
        status: int = 200,
        *,
        collection_item: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        if wants_json(request):
            body = render.json_document(node, self._json_case, collection_item=collection_item)
            media = "application/json; charset=utf-8"
        else:
            body = render.xml_document(node)
            media = "application/xml; charset=utf-8"
        hdrs = {"Server": self.profile.server_header, **(headers or {})}
        faults: Faults | None = getattr(request.state, "faults", None)
        if faults is not None and status < 300:
            return faulty(body, status, media, hdrs, faults)
        return Response(body, status_code=status, media_type=media, headers=hdrs)

    def error(
        self, request: Request, status: int, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        hdrs = {"Server": self.profile.server_header, **(headers or {})}
        if wants_json(request):
            return Response(
                render.error_json(status, message),
                status_code=status,
                media_type="application/json; charset=utf-8",
                headers=hdrs,
            )
        return Response(
            render.xml_document(render.error_node(status, message)),
            status_code=status,
            media_type="application/xml; charset=utf-8",
            headers=hdrs,
        )

    def count(self, request: Request) -> None:
        key = f"{request.method} {_path(request)}"
        with self.world.lock:
            if _path(request) == "/api/query":
                key += f"?type={request.query_params.get('type', '')}"
                self.world.queries.append(unquote(request.url.query))
            self.world.requests[key] += 1

    async def fault(self, request: Request) -> Response | None:
        # The request is in before EM works slowly on it: a client that hangs up then does not undo it.
        await request.body()
        faults = self.world.faults
        delay = faults.latency + (random.uniform(0, faults.jitter) if faults.jitter else 0.0)
        if delay:
            await asyncio.sleep(delay)
        with self.world.lock:
            active = faults.take(request.method)
        if active is None:
            return None
        if active.status is not None:
            return self.error(request, active.status, "The service is temporarily overloaded (simulated).")
        if active.garbage:
            return Response(
                b"<html><body>Gateway says no</bod", status_code=200, media_type="application/xml"
            )
        request.state.faults = active  # _respond applies the rest to the answer
        return None

    def _plain(self, handler: PlainHandler) -> Callable[[Request], Awaitable[Response]]:
        async def call(request: Request) -> Response:
            return await handler(self, request)

        return call

    def _auth(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def wrapped(request: Request) -> Response:
            self.count(request)
            fault = await self.fault(request)
            if fault is not None:
                return fault
            with self.world.lock:
                left = self.world.faults.expire_tokens_in
                if left is not None:
                    self.world.faults.expire_tokens_in = left - 1
                    if left <= 0:  # EM restarted, or its idle timeout struck, in the middle of a poll
                        self.world.faults.expire_tokens_in = None
                        self.world.logons.clear()
            cookie, header = request.cookies.get(TOKEN), request.headers.get(TOKEN)
            if request.headers.get("cookie"):
                with self.world.lock:
                    self.world.cookie_requests += 1
            # EM takes the cookie over the header when a client sends both (documented).
            token = (cookie or header) if self.profile.cookie_wins else (header or cookie)
            logon = self.world.authenticate(token)
            if logon is None:
                return self.error(
                    request, 401, "Authorization header expected but not found, or found but expired."
                )
            if self.world.role(logon.username) == "restore_operator" and _is_cloud(request):
                return self.error(request, 403, "Access denied.")
            return await handler(self, request, logon)

        return wrapped


def _path(request: Request) -> str:
    """The path EM sees: without the prefix of a reverse proxy (a Mount) in front of it."""
    root = request.scope.get("root_path", "")
    path = request.url.path
    return path[len(root) :] if root and path.startswith(root) else path


def _is_cloud(request: Request) -> bool:
    path = _path(request)
    if path == "/api/query":
        return request.query_params.get("type", "").lower() in CLOUD_QUERY_TYPES
    return path.startswith("/api/cloud")
