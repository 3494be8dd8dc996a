"""EM XML -> typed objects. The only module that reads the wire format.

EM answers are untrusted input: defusedxml refuses DTDs, entity declarations and external
references, so a hostile or broken EM cannot expand entities or make us fetch anything. Every
failure becomes a `ParseError` whose message names what was wrong, never the raw body.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import TypeVar

from exporter.em.errors import ParseError
from exporter.em.model import Page, Plan, ReplicaPoint, Session, Task, VmTask
from exporter.em.timefmt import parse_time
from exporter.em.xmldoc import (
    child,
    children,
    document_root,
    field_text,
    fields_of,
    id_from_href,
    id_from_uid,
    links,
    local,
    parse_document,
    text_of,
)

T = TypeVar("T")


def _progress(el: ET.Element, raw: str | None = None) -> int:
    if raw is None:
        raw = text_of(el, "Progress", required=False, default="0")
    try:
        value = int(float(raw))
    except ValueError:
        raise ParseError(f"{local(el.tag)}: Progress is not a number: {raw[:20]!r}") from None
    return min(100, max(0, value))


def _backup_server(el: ET.Element) -> str:
    for link in links(el):
        if link.get("Rel") == "Up" and link.get("Type") == "BackupServerReference":
            return link.get("Name") or id_from_href(link.get("Href")) or ""
    return ""


def _backup_server_id(el: ET.Element) -> str:
    for link in links(el):
        if link.get("Rel") == "Up" and link.get("Type") == "BackupServerReference":
            return id_from_href(link.get("Href")) or ""
    return ""


def _entity_id(el: ET.Element) -> str:
    ident = id_from_uid(el.get("UID")) or id_from_href(el.get("Href"))
    if not ident:
        raise ParseError(f"{local(el.tag)}: no UID or Href")
    return ident


def _plan(el: ET.Element) -> Plan:
    name = el.get("Name")
    if not name:
        raise ParseError("CloudFailoverPlan: no Name")
    vms: list[str] = []
    info = child(el, "CloudFailoverPlanInfo")
    includes = None if info is None else child(info, "Includes")
    if includes is not None:
        for vm in includes:
            vm_name = text_of(vm, "Name", required=False)
            if vm_name:
                vms.append(vm_name)
    return Plan(
        id=_entity_id(el),
        name=name,
        backup_server=_backup_server(el),
        tenant=text_of(el, "TenantName", required=False),
        vms=tuple(vms),
        backup_server_id=_backup_server_id(el),
    )


def parse_plans(body: bytes) -> tuple[tuple[Plan, ...], tuple[str, ...]]:
    """`GET /cloud/cloudFailoverPlans?format=Entity` -> plans, and one message per plan we could not read."""
    root = document_root(body, "CloudFailoverPlans")
    return _each(children(root, "CloudFailoverPlan"), _plan)


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
    f = fields_of(el)
    link = f.get("VmReplicaPointLink")
    return VmTask(
        vm=vm,
        state=field_text(f.get("State"), el, "State"),
        result=field_text(f.get("Result"), el, "Result", False, "None"),
        progress=_progress(el, field_text(f.get("Progress"), el, "Progress", False, "0")),
        start=parse_time(field_text(f.get("CreationTimeUTC"), el, "CreationTimeUTC", False)),
        end=parse_time(field_text(f.get("EndTimeUTC"), el, "EndTimeUTC", False)),
        restore_point_id=None if link is None else id_from_href(link.get("Href")),
        restore_point_name=None if link is None else link.get("Name"),
        failure_message=field_text(f.get("FailureMessage"), el, "FailureMessage", False, "").strip(),
    )


def _session(el: ET.Element) -> Session:
    name = el.get("Name") or el.get("CloudFailoverPlanName")
    if not name:
        raise ParseError("CloudFailoverSession: no Name")
    tasks_el = child(el, "CloudFailoverTasks")
    tasks: tuple[VmTask, ...] = ()
    if tasks_el is not None:
        # The wrapper and its items share the name CloudFailoverTasks (XSD). A bad VM item fails the
        # whole session: showing a session with a VM silently missing would be a lie.
        tasks = tuple(_vm_task(t) for t in children(tasks_el, "CloudFailoverTasks"))
    return Session(
        id=_entity_id(el),
        plan=name,
        backup_server=_backup_server(el),
        state=text_of(el, "State"),
        result=text_of(el, "Result", required=False, default="None"),
        progress=_progress(el),
        start=parse_time(text_of(el, "CreationTimeUTC", required=False)),
        end=parse_time(text_of(el, "EndTimeUTC", required=False)),
        tasks=tasks,
        failure_message=text_of(el, "FailureMessage", required=False, default="").strip(),
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
    return _session(document_root(body, "CloudFailoverSession"))


def _paging(root: ET.Element) -> tuple[int, int | None, str | None]:
    """PageNum, PagesCount (None when EM gives none) and the Next link as EM wrote it."""
    info = child(root, "PagingInfo")
    if info is None:
        return 1, None, None
    try:
        page_num = int(info.get("PageNum") or 1)
        raw_count = info.get("PagesCount")
        pages_count = None if raw_count is None or not raw_count.strip() else int(raw_count)
    except ValueError:
        raise ParseError("PagingInfo: PageNum/PagesCount not numbers") from None
    next_link = None
    for link in links(info):
        if link.get("Rel") == "Next" and link.get("Href"):
            next_link = link.get("Href")
    return page_num, pages_count, next_link


def _query_entities(body: bytes, collection: str, item: str, read: Callable[[ET.Element], T]) -> Page[T]:
    root = document_root(body, "QueryResult")
    page_num, pages_count, next_path = _paging(root)
    entities = child(root, "Entities")
    wrapper = None if entities is None else child(entities, collection)
    items: tuple[T, ...] = ()
    errors: tuple[str, ...] = ()
    if wrapper is not None:
        items, errors = _each(children(wrapper, item), read)
    return Page(items=items, page_num=page_num, pages_count=pages_count, next_path=next_path, errors=errors)


def parse_session_query(body: bytes) -> Page[Session]:
    """`GET /query?type=CloudFailoverSession&format=Entities` -> one page of sessions."""
    return _query_entities(body, "CloudFailoverSessions", "CloudFailoverSession", _session)


def parse_reference_query(body: bytes) -> Page[str]:
    """`GET /query?...&format=References` -> one page of entity IDs."""
    root = document_root(body, "QueryResult")
    page_num, pages_count, next_path = _paging(root)
    refs = child(root, "Refs")
    items: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    if refs is not None:
        items, errors = _each(children(refs, "Ref"), _entity_id)
    return Page(items=items, page_num=page_num, pages_count=pages_count, next_path=next_path, errors=errors)


def _replica_point(el: ET.Element) -> ReplicaPoint:
    f = fields_of(el)
    created = parse_time(field_text(f.get("CreationTimeUTC"), el, "CreationTimeUTC"))
    if created is None:
        raise ParseError("CloudVmReplicaPoint: no CreationTimeUTC")
    name = el.get("Name") or ""
    return ReplicaPoint(
        id=_entity_id(el),
        name=name,
        created=created,
        vm=_point_vm(el, field_text(f.get("VmName"), el, "VmName", False), name),
        backup_server=_backup_server(el),
        state=field_text(f.get("State"), el, "State", False),
    )


def _point_vm(el: ET.Element, vm_name: str, name: str) -> str:
    # The XSD has a VmName child, but the documentation's examples omit it: the VmDisplayName attribute,
    # the Up link to the point's CloudReplica (named after the VM) and the name before '@' say the same.
    if vm_name:
        return vm_name
    if el.get("VmDisplayName"):
        return el.get("VmDisplayName") or ""
    for link in links(el):
        if link.get("Rel") == "Up" and link.get("Type") == "CloudReplicaReference" and link.get("Name"):
            return link.get("Name") or ""
    return name.rpartition("@")[0]


def parse_replica_point(body: bytes) -> ReplicaPoint:
    """`GET /cloud/vmReplicaPoints/{id}?format=Entity`."""
    root = parse_document(body)
    if local(root.tag) not in ("CloudVmReplicaPoint", "CloudReplica"):
        raise ParseError(f"expected <CloudVmReplicaPoint>, got <{local(root.tag)[:64]}>")
    return _replica_point(root)


def parse_replica_point_query(body: bytes) -> Page[ReplicaPoint]:
    """`GET /query?type=CloudVmReplicaPoint&format=Entities`. Items are named CloudReplica (XSD quirk)."""
    page = _query_entities(body, "CloudVmReplicaPoints", "CloudReplica", _replica_point)
    if page.items or page.errors:
        return page
    # Be lenient about the quirk being fixed one day.
    return _query_entities(body, "CloudVmReplicaPoints", "CloudVmReplicaPoint", _replica_point)


def parse_task(body: bytes) -> Task:
    root = document_root(body, "Task")
    related = None
    for link in links(root):
        if link.get("Rel") == "Related" and link.get("Type") == "CloudFailoverSession":
            related = id_from_href(link.get("Href"))
    result = child(root, "Result")
    success = None
    message = ""
    if result is not None:
        success = (result.get("Success") or "").lower() == "true"
        message = text_of(result, "Message", required=False)
    return Task(
        id=text_of(root, "TaskId"),
        state=text_of(root, "State"),
        operation=text_of(root, "Operation", required=False),
        success=success,
        message=message,
        related_session_id=related,
    )


def parse_action_links(body: bytes) -> dict[str, str]:
    """An entity's links by Rel (`Start`, `Edit`, ...): what EM offers to do with it."""
    root = parse_document(body)
    return {str(link.get("Rel")): str(link.get("Href") or "") for link in links(root) if link.get("Rel")}
