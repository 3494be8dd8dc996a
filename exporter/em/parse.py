"""EM XML -> typed objects. The only module that reads the wire format.

EM answers are untrusted input: defusedxml refuses DTDs, entity declarations and external
references, so a hostile or broken EM cannot expand entities or make us fetch anything. Every
failure becomes a `ParseError` whose message names what was wrong, never the raw body.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import TypeVar
from urllib.parse import urlsplit

import defusedxml
import defusedxml.ElementTree as SafeET

from exporter.em.errors import ParseError
from exporter.em.model import LogonSession, Page, Plan, ReplicaPoint, Session, Task, VmTask
from exporter.em.timefmt import parse_time

T = TypeVar("T")


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _children(el: ET.Element, name: str) -> Iterator[ET.Element]:
    return (c for c in el if _local(c.tag) == name)


def _child(el: ET.Element, name: str) -> ET.Element | None:
    return next(_children(el, name), None)


def _text(el: ET.Element, name: str, *, required: bool = True, default: str = "") -> str:
    return _field(_child(el, name), el, name, required, default)


def _fields(el: ET.Element) -> dict[str, ET.Element]:
    """Children by local name, the first of each name: one pass instead of one scan per field (a
    10,000-VM session page has 80,000 task fields)."""
    found: dict[str, ET.Element] = {}
    for c in el:
        found.setdefault(_local(c.tag), c)
    return found


def _field(
    c: ET.Element | None, owner: ET.Element, name: str, required: bool = True, default: str = ""
) -> str:
    if c is None or c.text is None:
        if required:
            raise ParseError(f"{_local(owner.tag)}: missing <{name}>")
        return default
    return c.text.strip()


FEED_CHUNK = 64 * 1024


def parse_document(body: bytes) -> ET.Element:
    try:
        parser = SafeET.DefusedXMLParser(forbid_dtd=True)
        # Fed in pieces: expat holds the interpreter for each call, and one 8 MB call would stall the
        # event loop that answers scrapes for the whole parse.
        for i in range(0, len(body), FEED_CHUNK):
            parser.feed(body[i : i + FEED_CHUNK])
        root: ET.Element = parser.close()
    except defusedxml.DefusedXmlException as exc:
        raise ParseError(f"refused unsafe XML ({type(exc).__name__})") from None
    except ET.ParseError as exc:
        raise ParseError(f"malformed XML: {exc}") from None
    return root


def _root(body: bytes, expected: str) -> ET.Element:
    root = parse_document(body)
    if _local(root.tag) != expected:
        raise ParseError(f"expected <{expected}>, got <{_local(root.tag)[:64]}>")
    return root


def _progress(el: ET.Element, raw: str | None = None) -> int:
    if raw is None:
        raw = _text(el, "Progress", required=False, default="0")
    try:
        value = int(float(raw))
    except ValueError:
        raise ParseError(f"{_local(el.tag)}: Progress is not a number: {raw[:20]!r}") from None
    return min(100, max(0, value))


def id_from_href(href: str | None) -> str | None:
    if not href:
        return None
    path = urlsplit(href).path.rstrip("/")
    return path.rpartition("/")[2] or None


def id_from_uid(uid: str | None) -> str | None:
    """`urn:veeam:CloudFailoverSession:<guid>` -> `<guid>`."""
    if not uid:
        return None
    return uid.rpartition(":")[2] or None


def _links(el: ET.Element) -> list[ET.Element]:
    links = _child(el, "Links")
    return [] if links is None else list(_children(links, "Link"))


def _backup_server(el: ET.Element) -> str:
    for link in _links(el):
        if link.get("Rel") == "Up" and link.get("Type") == "BackupServerReference":
            return link.get("Name") or id_from_href(link.get("Href")) or ""
    return ""


def _entity_id(el: ET.Element) -> str:
    ident = id_from_uid(el.get("UID")) or id_from_href(el.get("Href"))
    if not ident:
        raise ParseError(f"{_local(el.tag)}: no UID or Href")
    return ident


def parse_error_message(body: bytes, content_type: str = "") -> str:
    """The `Message` of an EM `Error` body (XML or JSON), or a short description if there is none."""
    if "json" in content_type:
        try:
            data = json.loads(body.decode("utf-8-sig"))
        except (ValueError, UnicodeDecodeError):
            return "unreadable error body"
        if isinstance(data, dict):
            for key in ("Message", "message"):
                if isinstance(data.get(key), str):
                    return str(data[key])[:300]
        return "error body without a message"
    try:
        root = parse_document(body)
    except ParseError:
        return "unreadable error body"
    if _local(root.tag) == "Error" and root.get("Message"):
        return (root.get("Message") or "")[:300]
    return "error body without a message"


def parse_api_versions(body: bytes) -> tuple[str, ...]:
    """`GET /api/` -> the names of the SupportedVersions EM lists (e.g. v1_5, v1_6, v1_7)."""
    root = _root(body, "EnterpriseManager")
    versions = _child(root, "SupportedVersions")
    if versions is None:
        return ()
    return tuple(v.get("Name") or "" for v in _children(versions, "SupportedVersion") if v.get("Name"))


def parse_logon_session(body: bytes) -> LogonSession:
    root = _root(body, "LogonSession")
    return LogonSession(session_id=_text(root, "SessionId"), username=_text(root, "UserName", required=False))


def _plan(el: ET.Element) -> Plan:
    name = el.get("Name")
    if not name:
        raise ParseError("CloudFailoverPlan: no Name")
    vms: list[str] = []
    info = _child(el, "CloudFailoverPlanInfo")
    includes = None if info is None else _child(info, "Includes")
    if includes is not None:
        for vm in includes:
            vm_name = _text(vm, "Name", required=False)
            if vm_name:
                vms.append(vm_name)
    return Plan(
        id=_entity_id(el),
        name=name,
        backup_server=_backup_server(el),
        tenant=_text(el, "TenantName", required=False),
        vms=tuple(vms),
    )


def parse_plans(body: bytes) -> tuple[tuple[Plan, ...], tuple[str, ...]]:
    """`GET /cloud/cloudFailoverPlans?format=Entity` -> plans, and one message per plan we could not read."""
    root = _root(body, "CloudFailoverPlans")
    return _each(_children(root, "CloudFailoverPlan"), _plan)


def _each(
    elements: Iterator[ET.Element], read: Callable[[ET.Element], T]
) -> tuple[tuple[T, ...], tuple[str, ...]]:
    # One unreadable item must not hide the others: keep what parses, report the rest.
    items: list[T] = []
    errors: list[str] = []
    for el in elements:
        try:
            items.append(read(el))
        except ParseError as exc:
            errors.append(str(exc))
    return tuple(items), tuple(errors)


def _vm_task(el: ET.Element) -> VmTask:
    vm = el.get("VmName")
    if not vm:
        raise ParseError("CloudFailoverTasks item: no VmName")
    f = _fields(el)
    link = f.get("VmReplicaPointLink")
    return VmTask(
        vm=vm,
        state=_field(f.get("State"), el, "State"),
        result=_field(f.get("Result"), el, "Result", False, "None"),
        progress=_progress(el, _field(f.get("Progress"), el, "Progress", False, "0")),
        start=parse_time(_field(f.get("CreationTimeUTC"), el, "CreationTimeUTC", False)),
        end=parse_time(_field(f.get("EndTimeUTC"), el, "EndTimeUTC", False)),
        restore_point_id=None if link is None else id_from_href(link.get("Href")),
        restore_point_name=None if link is None else link.get("Name"),
    )


def _session(el: ET.Element) -> Session:
    name = el.get("Name") or el.get("CloudFailoverPlanName")
    if not name:
        raise ParseError("CloudFailoverSession: no Name")
    tasks_el = _child(el, "CloudFailoverTasks")
    tasks: tuple[VmTask, ...] = ()
    if tasks_el is not None:
        # The wrapper and its items share the name CloudFailoverTasks (XSD). A bad VM item fails the
        # whole session: showing a session with a VM silently missing would be a lie.
        tasks = tuple(_vm_task(t) for t in _children(tasks_el, "CloudFailoverTasks"))
    return Session(
        id=_entity_id(el),
        plan=name,
        backup_server=_backup_server(el),
        state=_text(el, "State"),
        result=_text(el, "Result", required=False, default="None"),
        progress=_progress(el),
        start=parse_time(_text(el, "CreationTimeUTC", required=False)),
        end=parse_time(_text(el, "EndTimeUTC", required=False)),
        tasks=tasks,
    )


def parse_session_element(el: ET.Element) -> Session:
    """One CloudFailoverSession element (e.g. from a capture) -> Session."""
    return _session(el)


def parse_plan_element(el: ET.Element) -> Plan:
    return _plan(el)


def parse_replica_point_element(el: ET.Element) -> ReplicaPoint:
    return _replica_point(el)


def parse_session(body: bytes) -> Session:
    """`GET /cloud/failoverSessions/{id}?format=Entity`."""
    return _session(_root(body, "CloudFailoverSession"))


def _paging(root: ET.Element) -> tuple[int, int | None, str | None]:
    """PageNum, PagesCount (None when EM gives none) and the Next link as EM wrote it."""
    info = _child(root, "PagingInfo")
    if info is None:
        return 1, None, None
    try:
        page_num = int(info.get("PageNum") or 1)
        raw_count = info.get("PagesCount")
        pages_count = None if raw_count is None or not raw_count.strip() else int(raw_count)
    except ValueError:
        raise ParseError("PagingInfo: PageNum/PagesCount not numbers") from None
    next_link = None
    for link in _links(info):
        if link.get("Rel") == "Next" and link.get("Href"):
            next_link = link.get("Href")
    return page_num, pages_count, next_link


def _query_entities(body: bytes, collection: str, item: str, read: Callable[[ET.Element], T]) -> Page[T]:
    root = _root(body, "QueryResult")
    page_num, pages_count, next_path = _paging(root)
    entities = _child(root, "Entities")
    wrapper = None if entities is None else _child(entities, collection)
    items: tuple[T, ...] = ()
    errors: tuple[str, ...] = ()
    if wrapper is not None:
        items, errors = _each(_children(wrapper, item), read)
    return Page(items=items, page_num=page_num, pages_count=pages_count, next_path=next_path, errors=errors)


def parse_session_query(body: bytes) -> Page[Session]:
    """`GET /query?type=CloudFailoverSession&format=Entities` -> one page of sessions."""
    return _query_entities(body, "CloudFailoverSessions", "CloudFailoverSession", _session)


def parse_reference_query(body: bytes) -> Page[str]:
    """`GET /query?...&format=References` -> one page of entity IDs."""
    root = _root(body, "QueryResult")
    page_num, pages_count, next_path = _paging(root)
    refs = _child(root, "Refs")
    items: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    if refs is not None:
        items, errors = _each(_children(refs, "Ref"), _entity_id)
    return Page(items=items, page_num=page_num, pages_count=pages_count, next_path=next_path, errors=errors)


def _replica_point(el: ET.Element) -> ReplicaPoint:
    created = parse_time(_text(el, "CreationTimeUTC"))
    if created is None:
        raise ParseError("CloudVmReplicaPoint: no CreationTimeUTC")
    return ReplicaPoint(id=_entity_id(el), name=el.get("Name") or "", created=created)


def parse_replica_point(body: bytes) -> ReplicaPoint:
    """`GET /cloud/vmReplicaPoints/{id}?format=Entity`."""
    root = parse_document(body)
    if _local(root.tag) not in ("CloudVmReplicaPoint", "CloudReplica"):
        raise ParseError(f"expected <CloudVmReplicaPoint>, got <{_local(root.tag)[:64]}>")
    return _replica_point(root)


def parse_replica_point_query(body: bytes) -> Page[ReplicaPoint]:
    """`GET /query?type=CloudVmReplicaPoint&format=Entities`. Items are named CloudReplica (XSD quirk)."""
    page = _query_entities(body, "CloudVmReplicaPoints", "CloudReplica", _replica_point)
    if page.items or page.errors:
        return page
    # Be lenient about the quirk being fixed one day.
    return _query_entities(body, "CloudVmReplicaPoints", "CloudVmReplicaPoint", _replica_point)


def parse_task(body: bytes) -> Task:
    root = _root(body, "Task")
    related = None
    for link in _links(root):
        if link.get("Rel") == "Related" and link.get("Type") == "CloudFailoverSession":
            related = id_from_href(link.get("Href"))
    result = _child(root, "Result")
    success = None
    message = ""
    if result is not None:
        success = (result.get("Success") or "").lower() == "true"
        message = _text(result, "Message", required=False)
    return Task(
        id=_text(root, "TaskId"),
        state=_text(root, "State"),
        operation=_text(root, "Operation", required=False),
        success=success,
        message=message,
        related_session_id=related,
    )
