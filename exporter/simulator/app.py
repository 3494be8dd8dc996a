"""The simulated EM REST API as an ASGI app: real HTTP, EM's paths, status codes, headers and bodies."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import unquote, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from exporter.em.errors import ParseError
from exporter.em.parse import parse_document
from exporter.em.timefmt import parse_time
from exporter.simulator import render
from exporter.simulator.query import FilterError, Record, compile_filter
from exporter.simulator.replay import Replay
from exporter.simulator.views import SessionView
from exporter.simulator.world import Faults, Logon, Point, World

_UID_ONLY = re.compile(r'UID=="[^"]*"(,UID=="[^"]*")*', re.IGNORECASE)
_UID_VALUE = re.compile(r'UID=="([^"]*)"', re.IGNORECASE)
TOKEN = "X-RestSvcSessionId"  # noqa: S105 - a header name
Handler = Callable[[Request, Logon], Awaitable[Response]]


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _base(request: Request, link_host: str | None = None) -> str:
    # Links name the host EM thinks it has, and no path prefix a reverse proxy in front may add.
    return f"{request.url.scheme}://{link_host or request.url.netloc}/api"


_CLOUD_QUERY_TYPES = frozenset({"cloudfailoversession", "cloudfailoverplan", "cloudvmreplicapoint"})


class Simulator:
    def __init__(self, world: World, replay: Replay | None = None) -> None:
        self.world = world
        self.profile = world.scenario.profile
        self.replay = replay  # serve a capture's answers instead of the scenario's
        routes = [
            Route("/api", self.root, methods=["GET"]),
            Route("/api/", self.root, methods=["GET"]),
            Route("/api/sessionMngr", self.logon, methods=["POST"]),
            Route("/api/sessionMngr/", self.logon, methods=["POST"]),
            Route("/api/logonSessions", self._auth(self.list_logons), methods=["GET"]),
            Route("/api/logonSessions/{id}", self._auth(self.logout), methods=["DELETE"]),
            Route("/api/cloud/cloudFailoverPlans", self._auth(self.plans), methods=["GET"]),
            Route("/api/cloud/cloudFailoverPlans/{id}", self._auth(self.plan), methods=["GET"]),
            Route("/api/cloud/cloudFailoverPlans/{id}", self._auth(self.plan_action), methods=["POST"]),
            Route("/api/cloud/failoverSessions", self._auth(self.sessions), methods=["GET"]),
            Route("/api/cloud/failoverSessions/{id}", self._auth(self.session), methods=["GET"]),
            Route("/api/cloud/vmReplicaPoints", self._auth(self.points), methods=["GET"]),
            Route("/api/cloud/vmReplicaPoints/{id}", self._auth(self.point), methods=["GET"]),
            Route("/api/query", self._auth(self.query), methods=["GET"]),
            Route("/api/tasks/{id}", self._auth(self.task), methods=["GET"]),
            Route("/api/tasks/{id}", self._auth(self.delete_task), methods=["DELETE"]),
            Route("/_sim/faults", self.set_faults, methods=["POST"]),
            Route("/_sim/expire-tokens", self.expire_tokens, methods=["POST"]),
            Route("/_sim/stats", self.stats, methods=["GET"]),
        ]
        self.app = Starlette(routes=routes)

    # -- plumbing ---------------------------------------------------------------------------

    def _base(self, request: Request) -> str:
        return _base(request, self.profile.link_host)

    @property
    def _json_case(self) -> str:
        return self.world.scenario.json_case or self.profile.json_case

    def _respond(
        self,
        request: Request,
        node: render.Node,
        status: int = 200,
        *,
        collection_item: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        if _wants_json(request):
            body = render.json_document(node, self._json_case, collection_item=collection_item)
            media = "application/json; charset=utf-8"
        else:
            body = render.xml_document(node)
            media = "application/xml; charset=utf-8"
        hdrs = {"Server": self.profile.server_header, **(headers or {})}
        faults: Faults | None = getattr(request.state, "faults", None)
        if faults is not None and status < 300:
            return _faulty(body, status, media, hdrs, faults)
        return Response(body, status_code=status, media_type=media, headers=hdrs)

    def _error(
        self, request: Request, status: int, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        hdrs = {"Server": self.profile.server_header, **(headers or {})}
        if _wants_json(request):
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

    def _count(self, request: Request) -> None:
        key = f"{request.method} {_path(request)}"
        with self.world.lock:
            if _path(request) == "/api/query":
                key += f"?type={request.query_params.get('type', '')}"
                self.world.queries.append(unquote(request.url.query))
            self.world.requests[key] += 1

    async def _fault(self, request: Request) -> Response | None:
        # The request is in before EM works slowly on it: a client that hangs up then does not undo it.
        await request.body()
        faults = self.world.faults
        delay = faults.latency + (random.uniform(0, faults.jitter) if faults.jitter else 0.0)
        if delay:
            await asyncio.sleep(delay)
        with self.world.lock:
            active = faults.take()
        if active is None:
            return None
        if active.status is not None:
            return self._error(request, active.status, "The service is temporarily overloaded (simulated).")
        if active.garbage:
            return Response(
                b"<html><body>Gateway says no</bod", status_code=200, media_type="application/xml"
            )
        request.state.faults = active  # _respond applies the rest to the answer
        return None

    def _auth(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def wrapped(request: Request) -> Response:
            self._count(request)
            fault = await self._fault(request)
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
                return self._error(
                    request, 401, "Authorization header expected but not found, or found but expired."
                )
            if self.world.role(logon.username) == "restore_operator" and _is_cloud(request):
                return self._error(request, 403, "Access denied.")
            return await handler(request, logon)

        return wrapped

    # -- logon --------------------------------------------------------------------------------

    async def root(self, request: Request) -> Response:
        self._count(request)
        if self.replay is not None and self.replay.api_root is not None:
            return Response(self.replay.api_root, media_type="application/xml; charset=utf-8")
        return self._respond(
            request, render.enterprise_manager(self._base(request), self.profile.api_versions)
        )

    async def logon(self, request: Request) -> Response:
        self._count(request)
        fault = await self._fault(request)
        if fault is not None:
            return fault
        challenge = {"WWW-Authenticate": "Basic Realm=RestSvc"}
        if self.world.faults.refuse_logon:
            return self._error(request, 401, "Login failed (simulated).", challenge)
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("basic "):
            return self._error(request, 401, "Authentication required.", challenge)
        try:
            user, _, password = base64.b64decode(auth[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return self._error(request, 401, "Malformed Basic credentials.", challenge)
        logon = self.world.logon(user, password)
        if logon is None:
            return self._error(request, 401, "Login failed: wrong user name or password.", challenge)
        if self.world.role(user) == "none":
            self.world.logout(logon.session_id, logon)
            return self._error(request, 403, "Access denied. The account has no Enterprise Manager role.")
        base = self._base(request)
        return self._respond(
            request,
            render.logon_node(base, logon.session_id, logon.username),
            201,
            headers={
                TOKEN: logon.token,
                "Set-Cookie": f"{TOKEN}={logon.token}; Path=/api;",
                "Location": f"{base}/logonSessions/{logon.session_id}",
            },
        )

    async def list_logons(self, request: Request, caller: Logon) -> Response:
        base = self._base(request)
        with self.world.lock:
            mine = [lg for lg in self.world.logons.values() if lg.username == caller.username]
        return self._respond(
            request,
            ("LogonSessions", {}, [render.logon_node(base, lg.session_id, lg.username) for lg in mine]),
            collection_item="LogonSession",
        )

    async def logout(self, request: Request, caller: Logon) -> Response:
        if not self.world.logout(request.path_params["id"], caller):
            return self._error(request, 404, "Logon session not found.")
        return Response(status_code=204, headers={"Server": "Microsoft-HTTPAPI/2.0"})

    # -- plans ----------------------------------------------------------------------------------

    async def plans(self, request: Request, caller: Logon) -> Response:
        base = self._base(request)
        plans = list(self.world.plans.values())
        entity = request.query_params.get("format", "").lower() == "entity"
        if self.replay is not None:
            nodes = [n for _, n in self.replay.plan_items(entity)]
            name = "CloudFailoverPlans" if entity else "EntityReferences"
            item = "CloudFailoverPlan" if entity else "Ref"
            return self._respond(request, (name, {}, nodes), collection_item=item)
        if entity:
            return self._respond(
                request,
                ("CloudFailoverPlans", {}, [render.plan_entity(base, p) for p in plans]),
                collection_item="CloudFailoverPlan",
            )
        return self._respond(
            request,
            ("EntityReferences", {}, [render.plan_ref(base, p) for p in plans]),
            collection_item="Ref",
        )

    async def plan(self, request: Request, caller: Logon) -> Response:
        plan = self.world.plans.get(request.path_params["id"])
        if plan is None:
            return self._error(request, 404, "Cloud failover plan not found.")
        base = self._base(request)
        if request.query_params.get("format", "").lower() == "entity":
            return self._respond(request, render.plan_entity(base, plan))
        return self._respond(request, render.plan_ref(base, plan))

    async def plan_action(self, request: Request, caller: Logon) -> Response:
        if self.replay is not None:
            return self._error(request, 403, "A replayed Enterprise Manager starts nothing.")
        action = request.query_params.get("action", "")
        if action != "start":
            return self._error(request, 400, f"Unsupported action '{action[:40]}'.")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        raw = await request.body()
        try:
            start_now, start_date = _start_spec(ctype, raw)
        except ValueError as exc:
            return self._error(request, 400, str(exc))
        task = self.world.start_plan(request.path_params["id"], start_now, start_date, caller)
        if task is None:
            return self._error(request, 404, "Cloud failover plan not found.")
        return self._respond(request, render.task_node(self._base(request), task, "Running"), 202)

    # -- sessions, points, tasks ------------------------------------------------------------------

    async def sessions(self, request: Request, caller: Logon) -> Response:
        base = self._base(request)
        # The reference collection lists the last 30 days only (documented).
        cutoff = self.world.clock() - 30 * 86400
        views = [s for s in self.world.sessions() if (s.creation_time or 0) >= cutoff]
        if request.query_params.get("format", "").lower() == "entity":
            return self._respond(
                request,
                (
                    "CloudFailoverSessions",
                    {},
                    [render.session_entity(base, s, self.profile.time_digits) for s in views],
                ),
                collection_item="CloudFailoverSession",
            )
        return self._respond(
            request,
            ("EntityReferences", {}, [render.session_ref(base, s) for s in views]),
            collection_item="Ref",
        )

    async def session(self, request: Request, caller: Logon) -> Response:
        s = self.world.session(request.path_params["id"])
        if s is None:
            return self._error(request, 404, "Cloud failover session not found.")
        base = self._base(request)
        if request.query_params.get("format", "").lower() == "entity":
            return self._respond(request, render.session_entity(base, s, self.profile.time_digits))
        return self._respond(request, render.session_ref(base, s))

    async def points(self, request: Request, caller: Logon) -> Response:
        base = self._base(request)
        pts = list(self.world.points.values())
        item = self.profile.point_item
        digits = self.profile.time_digits
        if request.query_params.get("format", "").lower() == "entity":
            return self._respond(
                request,
                ("CloudVmReplicaPoints", {}, [render.point_entity(base, p, item, digits) for p in pts]),
                collection_item=item,
            )
        return self._respond(
            request, ("EntityReferences", {}, [render.point_ref(base, p) for p in pts]), collection_item="Ref"
        )

    async def point(self, request: Request, caller: Logon) -> Response:
        if self.replay is not None:
            found = self.replay.point_items([request.path_params["id"]], True, "CloudVmReplicaPoint")
            if not found:
                return self._error(request, 404, "Replica point not found.")
            return self._respond(request, found[0][1])
        p = self.world.points.get(request.path_params["id"])
        if p is None:
            return self._error(request, 404, "Replica point not found.")
        base = self._base(request)
        if request.query_params.get("format", "").lower() == "entity":
            return self._respond(request, render.point_entity(base, p, digits=self.profile.time_digits))
        return self._respond(request, render.point_ref(base, p))

    async def task(self, request: Request, caller: Logon) -> Response:
        found = self.world.task(request.path_params["id"], caller)
        if found is None:
            return self._error(request, 404, "Task not found.")
        task, state = found
        return self._respond(request, render.task_node(self._base(request), task, state))

    async def delete_task(self, request: Request, caller: Logon) -> Response:
        if not self.world.delete_task(request.path_params["id"], caller):
            return self._error(request, 404, "Task not found.")
        return Response(status_code=204)

    # -- query service --------------------------------------------------------------------------------

    async def query(self, request: Request, caller: Logon) -> Response:
        q = request.query_params
        qtype = q.get("type", "").lower()
        base = self._base(request)
        entities = q.get("format", "References").lower() == "entities"
        digits = self.profile.time_digits
        items: list[tuple[Record, render.Node]]
        if self.replay is not None and qtype in _CLOUD_QUERY_TYPES:
            items, collection, item_name = self._replayed(qtype, entities, q.get("filter", ""))
        elif qtype == "cloudfailoversession":
            items = [
                (
                    _session_record(s),
                    render.session_entity(base, s, digits) if entities else render.session_ref(base, s),
                )
                for s in self.world.sessions()
            ]
            collection, item_name = "CloudFailoverSessions", "CloudFailoverSession"
        elif qtype == "cloudvmreplicapoint":
            items = [
                (
                    _point_record(p),
                    render.point_entity(base, p, self.profile.point_item, digits)
                    if entities
                    else render.point_ref(base, p),
                )
                for p in self._point_candidates(q.get("filter", ""))
            ]
            collection, item_name = "CloudVmReplicaPoints", self.profile.point_item
        elif qtype == "cloudfailoverplan":
            items = [
                (
                    {
                        "uid": f"urn:veeam:CloudFailoverPlan:{p.id}",
                        "name": p.name,
                        "cloudtenantname": p.tenant,
                        "backupservername": p.backup_server,
                    },
                    render.plan_entity(base, p) if entities else render.plan_ref(base, p),
                )
                for p in self.world.plans.values()
            ]
            collection, item_name = "CloudFailoverPlans", "CloudFailoverPlan"
        else:
            return self._error(request, 400, f"Unknown query type '{q.get('type', '')[:40]}'.")
        try:
            if q.get("filter"):
                pred = compile_filter(
                    q["filter"],
                    local_offset=self.profile.filter_utc_offset_seconds,
                    honour_zone=self.profile.filter_zone_honoured,
                    uid_forms=self.profile.uid_filter_forms
                    if qtype != "cloudvmreplicapoint" or self.profile.point_query_by_uid
                    else frozenset(),
                )
                items = [it for it in items if pred(it[0])]
            sort_field, desc = (q.get("sortDesc"), True) if q.get("sortDesc") else (q.get("sortAsc"), False)
            if sort_field:
                key = sort_field.lower()
                items.sort(key=lambda it: _sort_key(it[0], key), reverse=desc)
            if qtype == "cloudfailoversession" and self.world.faults.duplicate_sessions:
                items = items * 2
                random.Random(len(items)).shuffle(items)  # out of order, whatever was asked
            page_size = int(q.get("pageSize", "100"))
            page = int(q.get("page", "1"))
        except (FilterError, ValueError) as exc:
            return self._error(request, 400, f"Invalid query: {exc}")
        if page_size < 1 or page < 1:
            return self._error(request, 400, "Invalid query: pageSize and page start at 1.")
        pages = max(1, math.ceil(len(items) / page_size))
        chosen = items[(page - 1) * page_size : page * page_size]
        if qtype == "cloudfailoversession" and self.world.faults.page_forever:
            pages = page + 1  # there is always one more page, repeating the last ones
            chosen = chosen or items[-page_size:]
        params = {k: v for k, v in q.items() if k not in ("page", "pageSize")}
        prefix = f"{base}/query?{urlencode(params)}&pageSize={page_size}&page="
        node = render.query_result(
            [n for _, n in chosen],
            collection if entities else None,
            page,
            page_size,
            pages,
            lambda n: f"{prefix}{n}",
            self.profile.empty_pages_count,
        )
        if _wants_json(request):
            return Response(json.dumps(_query_json(node, item_name)).encode(), media_type="application/json")
        return self._respond(request, node)

    def _replayed(
        self, qtype: str, entities: bool, flt: str
    ) -> tuple[list[tuple[Record, render.Node]], str, str]:
        assert self.replay is not None
        if qtype == "cloudfailoversession":
            return self.replay.session_items(entities), "CloudFailoverSessions", "CloudFailoverSession"
        if qtype == "cloudvmreplicapoint":
            item = self.profile.point_item
            return self.replay.point_items(_uid_ids(flt), entities, item), "CloudVmReplicaPoints", item
        return self.replay.plan_items(entities), "CloudFailoverPlans", "CloudFailoverPlan"

    def _point_candidates(self, flt: str) -> list[Point]:
        ids = _uid_ids(flt)
        if ids is None:
            return list(self.world.points.values())
        if not self.profile.point_query_by_uid:
            return []
        return [self.world.points[i] for i in ids if i in self.world.points]

    # -- control (not part of EM) -----------------------------------------------------------------------

    async def set_faults(self, request: Request) -> Response:
        try:
            data = json.loads(await request.body() or b"{}")
        except ValueError:
            return JSONResponse({"error": "body must be JSON"}, status_code=400)
        if not isinstance(data, dict):
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        try:
            with self.world.lock:
                self.world.faults.update(data)
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"ok": True})

    async def expire_tokens(self, request: Request) -> Response:
        self.world.expire_tokens()
        return JSONResponse({"ok": True})

    async def stats(self, request: Request) -> Response:
        with self.world.lock:
            return JSONResponse(
                {
                    "requests": dict(self.world.requests),
                    "starts": len(self.world.starts),
                    "logouts": self.world.logouts,
                    "logons": len(self.world.logons),
                }
            )


def _uid_ids(flt: str) -> list[str] | None:
    """The IDs a filter of UID equalities only names (either form), else None: such a filter is answered
    from an index, as a database would; the whole filter still runs on what it finds."""
    if not _UID_ONLY.fullmatch(flt):
        return None
    return list(dict.fromkeys(uid.rpartition(":")[2] for uid in _UID_VALUE.findall(flt)))


def _path(request: Request) -> str:
    """The path EM sees: without the prefix of a reverse proxy (a Mount) in front of it."""
    root = request.scope.get("root_path", "")
    path = request.url.path
    return path[len(root) :] if root and path.startswith(root) else path


def _is_cloud(request: Request) -> bool:
    path = _path(request)
    if path == "/api/query":
        return request.query_params.get("type", "").lower() in _CLOUD_QUERY_TYPES
    return path.startswith("/api/cloud")


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


def _session_record(s: SessionView) -> Record:
    return {
        "uid": f"urn:veeam:CloudFailoverSession:{s.id}",
        "name": s.plan,
        "type": "CloudFailoverSession",
        "creationtime": s.creation_time,
        "endtime": s.end_time,
        "state": s.state,
        "result": s.result,
        "backupservername": s.backup_server,
    }


def _point_record(p: Point) -> Record:
    return {
        "uid": f"urn:veeam:CloudVmReplicaPoint:{p.id}",
        "name": p.name,
        "vmname": p.vm,
        "creationtime": p.created,
        "pointtype": "Increment",
        "state": "Ready",
    }


def _sort_key(rec: Record, key: str) -> tuple[int, Any]:
    v = rec.get(key)
    return (0, "") if v is None else (1, v)


def _query_json(node: render.Node, item_name: str) -> Any:
    _, _, children = node
    assert isinstance(children, list)
    body, paging = children if len(children) == 2 else (children[0], None)
    out: dict[str, Any] = {"Refs": None, "Entities": None, "Resources": None, "Links": []}
    name, _, content = body
    assert isinstance(content, list)
    if name == "Refs":
        out["Refs"] = {"Refs": [render.json_value(c) for c in content]}
    else:
        coll_name, _, items = content[0]
        assert isinstance(items, list)
        out["Entities"] = {coll_name: {coll_name: [render.json_value(c) for c in items]}}
    if paging is None:
        return out
    _, attrs, links = paging
    assert isinstance(links, list)
    out["PagingInfo"] = {
        "Links": render.json_value(links[0]),
        "PageNum": int(attrs["PageNum"] or 1),
        "PageSize": int(attrs["PageSize"] or 100),
        "PagesCount": int(attrs["PagesCount"] or 1),
    }
    return out


_ENUMS = re.compile(rb"<(State|Result)>[A-Za-z]+</")


def _faulty(body: bytes, status: int, media: str, headers: dict[str, str], f: Faults) -> Response:
    """An answer with the active faults applied."""
    if f.unknown_enums:
        body = _ENUMS.sub(lambda m: b"<" + m.group(1) + b">Hibernating</", body)
    if f.truncate:
        body = body[: len(body) // 2]
    if f.content_type:
        media = f.content_type
    if f.reset:
        return _Reset(body)
    if f.huge_bytes:
        head, _, tail = body.partition(b"?>")
        filler = max(0, f.huge_bytes - len(body))

        async def huge() -> AsyncIterator[bytes]:
            yield head + b"?>"
            for i in range(0, filler, 1 << 20):
                yield b" " * min(1 << 20, filler - i)  # whitespace: still valid XML, only big
            yield tail

        return StreamingResponse(huge(), status_code=status, media_type=media, headers=headers)
    if f.trickle:

        async def trickle() -> AsyncIterator[bytes]:
            for i in range(0, len(body), 64):
                yield body[i : i + 64]
                await asyncio.sleep(f.trickle)

        return StreamingResponse(trickle(), status_code=status, media_type=media, headers=headers)
    return Response(body, status_code=status, media_type=media, headers=headers)


class _Reset(Response):
    """Promises the whole body, sends half, and drops the connection."""

    def __init__(self, body: bytes) -> None:
        super().__init__(body, media_type="application/xml")
        self._half = body[: len(body) // 2]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/xml"),
                    (b"content-length", str(len(self.body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self._half, "more_body": True})
        raise ConnectionResetError("simulated connection reset")
