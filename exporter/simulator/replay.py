"""`simulate --replay FILE`: a capture's EM answers served as an EM would, through the simulator's query
service (filters, sort order, paging), so an exporter polling it sees what the user's EM showed.

The captured elements are passed through as they were (unknown fields, odd formats and all); only the
records the query service filters on are read from them with the exporter's own parser. A replayed
EM starts nothing: it is a recording.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from exporter.em import parse, xmldoc
from exporter.em.capture import Capture
from exporter.em.errors import ParseError

if TYPE_CHECKING:
    from exporter.simulator.query import Record
    from exporter.simulator.render import Node


@dataclass
class Replay:
    api_root: bytes | None = None
    plans: list[Node] = field(default_factory=list)
    plan_records: list[Record] = field(default_factory=list)
    sessions: dict[str, tuple[Record, Node]] = field(default_factory=dict)  # by session ID
    points: dict[str, tuple[Record, Node]] = field(default_factory=dict)  # by point ID

    def session_items(self, entities: bool) -> list[tuple[Record, Node]]:
        return [
            (rec, node if entities else _ref(node, "CloudFailoverSessionReference"))
            for rec, node in self._by_time()
        ]

    def _by_time(self) -> list[tuple[Record, Node]]:
        return sorted(self.sessions.values(), key=lambda it: (it[0].get("creationtime") or 0.0, it[0]["uid"]))

    def point_items(self, ids: list[str] | None, entities: bool, item: str) -> list[tuple[Record, Node]]:
        chosen = self.points.values() if ids is None else [self.points[i] for i in ids if i in self.points]
        return [
            (rec, _renamed(node, item) if entities else _ref(node, "CloudVmReplicaPointReference"))
            for rec, node in chosen
        ]

    def plan_items(self, entities: bool) -> list[tuple[Record, Node]]:
        return [
            (rec, node if entities else _ref(node, "CloudFailoverPlanReference"))
            for rec, node in zip(self.plan_records, self.plans, strict=True)
        ]


def load_replay(capture: Capture) -> Replay:
    replay = Replay()
    for answer in capture.answers:
        if answer.status != 200 or "xml" not in answer.content_type.lower() or not answer.body.strip():
            continue
        body = answer.body.encode("utf-8")
        try:
            root = xmldoc.parse_document(body)
        except ParseError:
            continue
        kind = _local(root.tag)
        if kind == "EnterpriseManager":
            replay.api_root = body
        elif kind == "CloudFailoverPlans":
            for el in root:
                if _local(el.tag) == "CloudFailoverPlan":
                    _add_plan(replay, el)
        elif kind == "QueryResult":
            for el in root.iter():
                _add_entity(replay, el)
        else:
            _add_entity(replay, root)
    return replay


def _add_entity(replay: Replay, el: ET.Element) -> None:
    kind = _local(el.tag)
    if kind == "CloudFailoverSession":
        try:
            s = parse.parse_session_element(el)
        except ParseError:
            return
        record: Record = {
            "uid": f"urn:veeam:CloudFailoverSession:{s.id}",
            "name": s.plan,
            "type": "CloudFailoverSession",
            "creationtime": s.start,
            "endtime": s.end,
            "state": s.state,
            "result": s.result,
            "backupservername": s.backup_server,
        }
        replay.sessions[s.id] = (record, to_node(el))
    elif kind in ("CloudVmReplicaPoint", "CloudReplica"):
        try:
            p = parse.parse_replica_point_element(el)
        except ParseError:
            return
        vm = next((c.text or "" for c in el if _local(c.tag) == "VmName"), "") or el.get("VmDisplayName", "")
        replay.points[p.id] = (
            {
                "uid": f"urn:veeam:CloudVmReplicaPoint:{p.id}",
                "name": p.name,
                "vmname": vm,
                "creationtime": p.created,
            },
            to_node(el),
        )
    elif kind == "CloudFailoverPlan":
        _add_plan(replay, el)


def _add_plan(replay: Replay, el: ET.Element) -> None:
    try:
        plan = parse.parse_plan_element(el)
    except ParseError:
        return
    replay.plans.append(to_node(el))
    replay.plan_records.append(
        {
            "uid": el.get("UID", ""),
            "name": plan.name,
            "cloudtenantname": plan.tenant,
            "backupservername": plan.backup_server,
        }
    )


def to_node(el: ET.Element) -> Node:
    """An element as the renderers' tree: EM's own fields, attribute order and text as captured."""
    children = [to_node(c) for c in el]
    attrs: dict[str, str | None] = dict(el.attrib)
    if children:
        return (_local(el.tag), attrs, children)
    text = el.text.strip() if el.text and el.text.strip() else None
    return (_local(el.tag), attrs, text)


def _renamed(node: Node, name: str) -> Node:
    return (name, node[1], node[2])


def _ref(node: Node, ref_type: str) -> Node:
    """The reference form of an entity: its UID, Name, Href (without ?format=Entity) and Links."""
    _, attrs, children = node
    href = (attrs.get("Href") or "").split("?")[0]
    links = [c for c in children if c[0] == "Links"] if isinstance(children, list) else []
    return (
        "Ref",
        {"UID": attrs.get("UID"), "Name": attrs.get("Name"), "Href": href, "Type": ref_type},
        links,
    )


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]
