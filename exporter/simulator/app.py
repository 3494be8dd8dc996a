"""The simulated EM REST API as an ASGI app: real HTTP, EM's paths, status codes, headers and bodies."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from exporter.simulator import cloud_routes, control_routes, logon_routes, query_routes
from exporter.simulator.logons import Logon
from exporter.simulator.query_routes import CLOUD_QUERY_TYPES
from exporter.simulator.replay import Replay
from exporter.simulator.responder import Responder, request_path
from exporter.simulator.world import World

_UID_ONLY = re.compile(r'UID=="[^"]*"(,UID=="[^"]*")*', re.IGNORECASE)
_UID_VALUE = re.compile(r'UID=="([^"]*)"', re.IGNORECASE)
TOKEN = "X-RestSvcSessionId"  # noqa: S105 - a header name
Handler = Callable[[Responder, Request, Logon], Awaitable[Response]]
PlainHandler = Callable[[Responder, Request], Awaitable[Response]]


class Simulator:
    """The EM simulator as an ASGI app (`.app`): the route table, authentication and roles. What every
    answer goes through is the Responder (`.em`); the handlers live in logon_routes, cloud_routes,
    query_routes and control_routes."""

    def __init__(self, world: World, replay: Replay | None = None) -> None:
        self.em = Responder(world, replay)
        self.world, self.profile, self.replay = world, self.em.profile, replay
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
            Route("/api/backupServers/{id}", auth(cloud_routes.server), methods=[em]),
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

    def _plain(self, handler: PlainHandler) -> Callable[[Request], Awaitable[Response]]:
        async def call(request: Request) -> Response:
            return await handler(self.em, request)

        return call

    def _auth(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def wrapped(request: Request) -> Response:
            self.em.count(request)
            fault = await self.em.fault(request)
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
            logon = self.world.logon_book.authenticate(token)
            if logon is None:
                return self.em.error(
                    request, 401, "Authorization header expected but not found, or found but expired."
                )
            if self.world.logon_book.role(logon.username) == "restore_operator" and _is_cloud(request):
                return self.em.error(request, 403, "Access denied.")
            return await handler(self.em, request, logon)

        return wrapped


def _is_cloud(request: Request) -> bool:
    path = request_path(request)
    if path == "/api/query":
        return request.query_params.get("type", "").lower() in CLOUD_QUERY_TYPES
    return path.startswith("/api/cloud")
