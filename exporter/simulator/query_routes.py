"""The simulated EM's query service: filters, sort order and paging over sessions, points and plans."""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from exporter.simulator import render
from exporter.simulator.answers import wants_json
from exporter.simulator.logons import Logon
from exporter.simulator.points import Point
from exporter.simulator.query import FilterError, Record, compile_filter
from exporter.simulator.responder import Responder
from exporter.simulator.views import SessionView

_UID_ONLY = re.compile(r'UID=="[^"]*"(,UID=="[^"]*")*', re.IGNORECASE)
_UID_VALUE = re.compile(r'UID=="([^"]*)"', re.IGNORECASE)
CLOUD_QUERY_TYPES = frozenset({"cloudfailoversession", "cloudfailoverplan", "cloudvmreplicapoint"})


async def query(sim: Responder, request: Request, caller: Logon) -> Response:
    q = request.query_params
    qtype = q.get("type", "").lower()
    base = sim.base(request)
    entities = q.get("format", "References").lower() == "entities"
    digits = sim.profile.time_digits
    # a node, or how to make it: 100,000 points are filtered and sorted by record, and only the page
    # asked for is rendered
    items: list[tuple[Record, render.Node | Callable[[], render.Node]]]
    if sim.replay is not None and qtype in CLOUD_QUERY_TYPES:
        replayed, collection, item_name = _replayed(sim, qtype, entities, q.get("filter", ""))
        items = list(replayed)
    elif qtype == "cloudfailoversession":
        items = [
            (
                _session_record(s),
                render.session_entity(base, s, digits, with_tasks=sim.shows_tasks(s, in_query=True))
                if entities
                else render.session_ref(base, s),
            )
            for s in sim.world.sessions()
        ]
        collection, item_name = "CloudFailoverSessions", "CloudFailoverSession"
    elif qtype == "cloudvmreplicapoint":
        item = sim.profile.point_item
        items = [
            (
                _point_record(p, state),
                partial(render.point_entity, base, p, item, digits, state, sim.profile.point_vm_name)
                if entities
                else partial(render.point_ref, base, p),
            )
            for p, state in _point_candidates(sim, q.get("filter", ""))
        ]
        collection, item_name = "CloudVmReplicaPoints", sim.profile.point_item
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
            for p in sim.world.plans.values()
        ]
        collection, item_name = "CloudFailoverPlans", "CloudFailoverPlan"
    else:
        return sim.error(request, 400, f"Unknown query type '{q.get('type', '')[:40]}'.")
    try:
        if q.get("filter"):
            pred = compile_filter(
                q["filter"],
                local_offset=sim.profile.filter_utc_offset_seconds,
                honour_zone=sim.profile.filter_zone_honoured,
                uid_forms=sim.profile.uid_filter_forms
                if qtype != "cloudvmreplicapoint" or sim.profile.point_query_by_uid
                else frozenset(),
            )
            items = [it for it in items if pred(it[0])]
        sort_field, desc = (q.get("sortDesc"), True) if q.get("sortDesc") else (q.get("sortAsc"), False)
        if sort_field:
            key = sort_field.lower()
            items.sort(key=lambda it: _sort_key(it[0], key), reverse=desc)
        if qtype == "cloudfailoversession" and sim.world.faults.duplicate_sessions:
            items = items * 2
            random.Random(len(items)).shuffle(items)  # out of order, whatever was asked
        page_size = int(q.get("pageSize", "100"))
        page = int(q.get("page", "1"))
    except (FilterError, ValueError) as exc:
        return sim.error(request, 400, f"Invalid query: {exc}")
    if page_size < 1 or page < 1:
        return sim.error(request, 400, "Invalid query: pageSize and page start at 1.")
    pages = max(1, math.ceil(len(items) / page_size))
    chosen = items[(page - 1) * page_size : page * page_size]
    if qtype == "cloudfailoversession" and sim.world.faults.page_forever:
        pages = page + 1  # there is always one more page, repeating the last ones
        chosen = chosen or items[-page_size:]
    params = {k: v for k, v in q.items() if k not in ("page", "pageSize")}
    prefix = f"{base}/query?{urlencode(params)}&pageSize={page_size}&page="
    node = render.query_result(
        [n() if callable(n) else n for _, n in chosen],
        collection if entities else None,
        page,
        page_size,
        pages,
        lambda n: f"{prefix}{n}",
        sim.profile.empty_pages_count,
    )
    if wants_json(request):
        return Response(json.dumps(_query_json(node, item_name)).encode(), media_type="application/json")
    return sim.respond(request, node)


def _replayed(
    sim: Responder, qtype: str, entities: bool, flt: str
) -> tuple[list[tuple[Record, render.Node]], str, str]:
    assert sim.replay is not None
    if qtype == "cloudfailoversession":
        return sim.replay.session_items(entities), "CloudFailoverSessions", "CloudFailoverSession"
    if qtype == "cloudvmreplicapoint":
        item = sim.profile.point_item
        return sim.replay.point_items(_uid_ids(flt), entities, item), "CloudVmReplicaPoints", item
    return sim.replay.plan_items(entities), "CloudFailoverPlans", "CloudFailoverPlan"


def _point_candidates(sim: Responder, flt: str) -> list[tuple[Point, str]]:
    ids = _uid_ids(flt)
    if ids is not None and not sim.profile.point_query_by_uid:
        return []
    return sim.world.replica_points(ids)


def _uid_ids(flt: str) -> list[str] | None:
    """The IDs a filter of UID equalities only names (either form), else None: such a filter is answered
    from an index, as a database would; the whole filter still runs on what it finds."""
    if not _UID_ONLY.fullmatch(flt):
        return None
    return list(dict.fromkeys(uid.rpartition(":")[2] for uid in _UID_VALUE.findall(flt)))


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


def _point_record(p: Point, state: str) -> Record:
    return {
        "uid": f"urn:veeam:CloudVmReplicaPoint:{p.id}",
        "name": p.name,
        "vmname": p.vm,
        "creationtime": p.created,
        "pointtype": "Increment",
        "state": state,
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
