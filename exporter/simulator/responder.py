"""What every simulated EM answer goes through: faults, request counts, the profile's headers and JSON
casing, EM's error bodies. The route handlers (logon_routes, cloud_routes, query_routes,
control_routes) take a Responder; app.py holds the route table and authentication."""

from __future__ import annotations

import asyncio
import random
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response

from exporter.simulator import render
from exporter.simulator.answers import faulty, wants_json
from exporter.simulator.faults import Faults
from exporter.simulator.replay import Replay
from exporter.simulator.views import SessionView
from exporter.simulator.world import World


class Responder:
    """The simulated EM's world and profile, and how it answers."""

    def __init__(self, world: World, replay: Replay | None = None) -> None:
        self.world = world
        self.profile = world.scenario.profile
        self.replay = replay  # serve a capture's answers instead of the scenario's

    def shows_tasks(self, session: SessionView, *, in_query: bool) -> bool:
        """Whether this EM writes the session's VM tasks (profiles.py: tasks_in_query, tasks_when_ended)."""
        ended = session.state == "Stopped"
        if ended and self.profile.tasks_when_ended == "dropped":
            return False
        if not in_query:
            return True
        return {"always": True, "while_running": not ended, "never": False}[self.profile.tasks_in_query]

    def base(self, request: Request) -> str:
        # Links name the host EM thinks it has, and no path prefix a reverse proxy in front may add.
        return f"{request.url.scheme}://{self.profile.link_host or request.url.netloc}/api"

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
        key = f"{request.method} {request_path(request)}"
        with self.world.lock:
            if request_path(request) == "/api/query":
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


def request_path(request: Request) -> str:
    """The path EM sees: without the prefix of a reverse proxy (a Mount) in front of it."""
    root = request.scope.get("root_path", "")
    path = request.url.path
    return path[len(root) :] if root and path.startswith(root) else path
