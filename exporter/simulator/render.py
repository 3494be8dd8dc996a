"""EM resources as XML (element order per RestAPI.xsd) and as JSON (EM's no-root-wrapper convention)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape, quoteattr

from exporter.simulator.scenario_model import stable_id

if TYPE_CHECKING:  # what is rendered; the renderers need none of it at run time
    from exporter.simulator.points import Point
    from exporter.simulator.scenario_model import PlanSpec
    from exporter.simulator.tasks import SimTask
    from exporter.simulator.views import SessionView

NS = "http://www.veeam.com/ent/v1.0"
_NS_ATTRS = (
    f'xmlns="{NS}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)
PROLOG = '<?xml version="1.0" encoding="utf-8"?>\n'


def em_time(ts: float | None, digits: int = 3) -> str | None:
    """`...UTC` timestamps as EM writes them: 3 fraction digits in v12, 6 in v13, 7 in older examples."""
    if ts is None:
        return None
    scale = 10**digits
    units = round(ts * scale)
    whole, frac = divmod(units, scale)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{frac:0{digits}d}Z"


@dataclass(frozen=True)
class Link:
    rel: str
    href: str
    name: str | None = None
    type: str | None = None


# A tiny tree both renderers walk: (element name, attributes, children or text).
Node = tuple[str, dict[str, str | None], "list[Node] | str | None"]


def _links(links: Iterable[Link]) -> Node:
    return (
        "Links",
        {},
        [("Link", {"Href": lk.href, "Name": lk.name, "Type": lk.type, "Rel": lk.rel}, None) for lk in links],
    )


def _leaf(name: str, value: object) -> Node:
    return (name, {}, None if value is None else str(value))


def to_xml(node: Node, root: bool = True) -> str:
    name, attrs, content = node
    attr = "".join(f" {k}={quoteattr(v)}" for k, v in attrs.items() if v is not None)
    if root:
        attr += " " + _NS_ATTRS
    if content is None or content == []:
        return f"<{name}{attr} />"
    if isinstance(content, str):
        return f"<{name}{attr}>{escape(content)}</{name}>"
    inner = "".join(to_xml(c, root=False) for c in content)
    return f"<{name}{attr}>{inner}</{name}>"


def xml_document(node: Node) -> bytes:
    return (PROLOG + to_xml(node)).encode()


def json_value(node: Node) -> Any:
    name, attrs, content = node
    if name == "Links":
        assert isinstance(content, list)
        return [
            {
                k: v
                for k, v in (
                    ("Rel", a.get("Rel")),
                    ("Href", a.get("Href")),
                    ("Name", a.get("Name")),
                    ("Type", a.get("Type")),
                )
            }
            for _, a, _ in content
        ]
    if (isinstance(content, str) or content is None) and not attrs:
        return _scalar(content)
    obj: dict[str, Any] = {}
    if isinstance(content, list):
        names = [c[0] for c in content]
        if len(content) > 1 and len(set(names)) == 1 and names[0] != "Links":
            # A repeated element becomes an object holding one plural-named array.
            return {_plural(names[0]): [json_value(c) for c in content]}
        for child in content:
            obj[child[0]] = json_value(child)
    for k, v in attrs.items():
        obj[k] = v
    return obj


def _plural(name: str) -> str:
    return name if name.endswith("s") else name + "s"


def _scalar(text: str | None) -> Any:
    if text is None:
        return None
    if text in ("true", "false"):
        return text == "true"
    if text.isdigit():
        return int(text)
    return text


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {_camel_key(k): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def _camel_key(key: str) -> str:
    if key.isupper():
        return key.lower()
    return key[:1].lower() + key[1:]


def json_document(node: Node, case: str = "pascal", *, collection_item: str | None = None) -> bytes:
    """EM JSON: no root wrapper. `collection_item` names the array of a collection root."""
    name, _, content = node
    if collection_item is not None:
        items = [
            json_value(c) for c in (content if isinstance(content, list) else []) if c[0] == collection_item
        ]
        value: Any = {_plural(collection_item) if name != "EntityReferences" else "Refs": items}
    else:
        value = json_value(node)
        if isinstance(value, dict) and name in ("CloudFailoverSession",):
            tasks = value.get("CloudFailoverTasks")
            # One item is still a list: a client must not have to guess.
            if (
                isinstance(tasks, dict)
                and "CloudFailoverTasks" in tasks
                and not isinstance(tasks["CloudFailoverTasks"], list)
            ):
                tasks["CloudFailoverTasks"] = [tasks["CloudFailoverTasks"]]
    if case == "camel":
        value = _camel(value)
    return json.dumps(value).encode()


# -- resources --------------------------------------------------------------------------------


def backup_server_link(base: str, name: str) -> Link:
    return Link("Up", f"{base}/backupServers/{stable_id('server', name)}", name, "BackupServerReference")


def backup_server_entity(base: str, server_id: str, name: str, actions: bool = True) -> Node:
    """`GET /backupServers/{ID}?format=Entity`: its Start link asks EM to collect from it."""
    href = f"{base}/backupServers/{server_id}"
    links = [Link("Alternate", href, name, "BackupServerReference")]
    if actions:
        links.append(Link("Start", f"{href}?action=collect", name, "BackupServer"))
    node: Node = (
        "BackupServer",
        {
            "Href": f"{href}?format=Entity",
            "Type": "BackupServer",
            "Name": name,
            "UID": f"urn:veeam:BackupServer:{server_id}",
        },
        [_links(links), _leaf("Description", ""), _leaf("Port", 9392), _leaf("Version", "13.0")],
    )
    return node


def plan_entity(base: str, plan: PlanSpec, root: bool = True, actions: bool = True) -> Node:
    """A plan; `actions` False: without the links of what the caller may not do (profiles.py)."""
    href = f"{base}/cloud/cloudFailoverPlans/{plan.id}"
    links = [
        backup_server_link(base, plan.backup_server),
        Link("Alternate", href, plan.name, "CloudFailoverPlanReference"),
    ]
    if actions:
        links += [
            Link("Edit", href, plan.name, "CloudFailoverPlanReference"),
            Link("Start", f"{href}?action=start"),
            Link("Test", f"{href}?action=test"),
            Link("Undo", f"{href}?action=undo"),
            Link("Delete", href, plan.name, "CloudFailoverPlanReference"),
        ]
    vms: list[Node] = [
        (
            "CloudFailoveredVm",
            {"Href": f"{href}/includes/{stable_id('vm', plan.id, vm.name)}", "Type": "CloudFailoveredVm"},
            [
                _leaf("FailoverPlanVMId", stable_id("vm", plan.id, vm.name)),
                _leaf("Name", vm.name),
                _leaf("Order", i),
            ],
        )
        for i, vm in enumerate(plan.vms)
    ]
    return (
        "CloudFailoverPlan",
        {
            "Href": f"{href}?format=Entity",
            "Type": "CloudFailoverPlan",
            "Name": plan.name,
            "UID": f"urn:veeam:CloudFailoverPlan:{plan.id}",
        },
        [
            _links(links),
            _leaf("TenantUid", f"urn:veeam:CloudTenant:{stable_id('tenant', plan.tenant)}"),
            _leaf("TenantName", plan.tenant),
            _leaf("Description", f"Created by {plan.tenant}\\admin"),
            (
                "CloudFailoverPlanOptions",
                {},
                [
                    _leaf("PostFailoverPlanCommandEnabled", "false"),
                    _leaf("PostFailoverPlanCommand", None),
                    _leaf("PreFailoverPlanCommandEnabled", "false"),
                    _leaf("PreFailoverPlanCommand", None),
                ],
            ),
            ("CloudFailoverPlanInfo", {}, [("Includes", {}, vms)]),
        ],
    )


def plan_ref(base: str, plan: PlanSpec) -> Node:
    # As documented (sic): Type FailoverPlanReference and an Href under managedServers. Clients must take
    # the ID from the UID or follow the Alternate link.
    return (
        "Ref",
        {
            "UID": f"urn:veeam:FailoverPlan:{plan.id}",
            "Name": plan.name,
            "Href": f"{base}/managedServers/{plan.id}",
            "Type": "FailoverPlanReference",
        },
        [
            _links(
                [
                    backup_server_link(base, plan.backup_server),
                    Link(
                        "Alternate",
                        f"{base}/cloud/cloudFailoverPlans/{plan.id}?format=Entity",
                        plan.name,
                        "CloudFailoverPlan",
                    ),
                    Link(
                        "Related",
                        f"{base}/cloud/tenants/{stable_id('tenant', plan.tenant)}?format=Entity",
                        plan.tenant,
                        "CloudTenant",
                    ),
                ]
            )
        ],
    )


def session_entity(base: str, s: SessionView, digits: int = 3, *, with_tasks: bool = True) -> Node:
    """A session as EM writes it; `with_tasks` False: `<CloudFailoverTasks />` (profiles.py says when)."""
    href = f"{base}/cloud/failoverSessions/{s.id}"
    tasks: list[Node] = []
    for t in s.tasks if with_tasks else ():
        task_children: list[Node] = []
        if t.point_id is not None:
            task_children.append(
                (
                    "VmReplicaPointLink",
                    {
                        "Href": f"{base}/cloud/vmReplicaPoints/{t.point_id}",
                        "Name": t.point_name,
                        "Type": "CloudVmReplicaPointReference",
                        "Rel": "Related",
                    },
                    None,
                )
            )
        task_children.append(_leaf("CreationTimeUTC", em_time(t.creation_time, digits)))
        if t.end_time is not None:
            task_children.append(_leaf("EndTimeUTC", em_time(t.end_time, digits)))
        task_children += [_leaf("State", t.state), _leaf("Result", t.result), _leaf("Progress", t.progress)]
        if t.failure_message:
            task_children.append(_leaf("FailureMessage", t.failure_message))
        tasks.append(("CloudFailoverTasks", {"VmName": t.vm}, task_children))
    children: list[Node] = [
        _links(
            [
                backup_server_link(base, s.backup_server),
                Link("Alternate", href, s.plan, "CloudFailoverSessionReference"),
            ]
        ),
        _leaf("JobType", "FailoverPlan"),
        _leaf("CreationTimeUTC", em_time(s.creation_time, digits)),
    ]
    if s.end_time is not None:
        children.append(_leaf("EndTimeUTC", em_time(s.end_time, digits)))
    children += [_leaf("State", s.state), _leaf("Result", s.result), _leaf("Progress", s.progress)]
    if s.failure_message:
        children.append(_leaf("FailureMessage", s.failure_message))
    children.append(("CloudFailoverTasks", {}, tasks))
    return (
        "CloudFailoverSession",
        {
            "Href": f"{href}?format=Entity",
            "Type": "CloudFailoverSession",
            "Name": s.plan,
            "UID": f"urn:veeam:CloudFailoverSession:{s.id}",
        },
        children,
    )


def session_ref(base: str, s: SessionView) -> Node:
    href = f"{base}/cloud/failoverSessions/{s.id}"
    return (
        "Ref",
        {
            "UID": f"urn:veeam:CloudFailoverSession:{s.id}",
            "Name": s.plan,
            "Href": href,
            "Type": "CloudFailoverSessionReference",
        },
        [
            _links(
                [
                    backup_server_link(base, s.backup_server),
                    Link("Alternate", f"{href}?format=Entity", s.plan, "CloudFailoverSession"),
                ]
            )
        ],
    )


def point_entity(
    base: str,
    p: Point,
    item_name: str = "CloudVmReplicaPoint",
    digits: int = 3,
    state: str = "Ready",
    vm_name: bool = True,
) -> Node:
    href = f"{base}/cloud/vmReplicaPoints/{p.id}"
    return (
        item_name,
        {
            "Href": f"{href}?format=Entity",
            "Type": "CloudVmReplicaPoint",
            "Name": p.name,
            "UID": f"urn:veeam:CloudVmReplicaPoint:{p.id}",
            "VmDisplayName": p.vm,
        },
        [
            _links(
                [
                    backup_server_link(base, p.backup_server),
                    Link(
                        "Up",
                        f"{base}/cloud/replicas/{stable_id('replica', p.plan_id, p.vm)}",
                        p.vm,
                        "CloudReplicaReference",
                    ),
                    Link("Alternate", href, p.name, "CloudVmReplicaPointReference"),
                ]
            ),
            _leaf("CreationTimeUTC", em_time(p.created, digits)),
            *([_leaf("VmName", p.vm)] if vm_name else []),
            _leaf("PointType", "Increment"),
            _leaf("State", state),
        ],
    )


def point_ref(base: str, p: Point) -> Node:
    href = f"{base}/cloud/vmReplicaPoints/{p.id}"
    return (
        "Ref",
        {
            "UID": f"urn:veeam:CloudVmReplicaPoint:{p.id}",
            "Name": p.name,
            "Href": href,
            "Type": "CloudVmReplicaPointReference",
        },
        [
            _links(
                [
                    backup_server_link(base, p.backup_server),
                    Link("Alternate", f"{href}?format=Entity", p.name, "CloudVmReplicaPoint"),
                ]
            )
        ],
    )


def task_node(base: str, task: SimTask, state: str) -> Node:
    """`state`: Running, OperationFinished (done on the backup server, not collected by EM yet), Finished."""
    href = f"{base}/tasks/{task.id}"
    links = [Link("Delete", href, None, "Task")]
    finished = state == "Finished"
    children: list[Node] = []
    if finished and task.collection is None and not task.undo:
        links.append(
            Link(
                "Related",
                f"{base}/cloud/failoverSessions/{task.session_id}?format=Entity",
                task.plan_name,
                "CloudFailoverSession",
            )
        )
    children = [
        _links(links),
        _leaf("TaskId", task.id),
        _leaf("State", state),
        _leaf("Operation", task.operation),
    ]
    if finished:
        children.append(("Result", {"Success": "true"}, [_leaf("Message", task.message)]))
    elif state == "OperationFinished":
        children.append(("Result", {"Success": "true"}, [_leaf("Message", "OperationFinished")]))
    return ("Task", {"Href": href, "Type": "Task"}, children)


def error_node(status: int, message: str) -> Node:
    return ("Error", {"Message": message, "StatusCode": str(status)}, None)


def error_json(status: int, message: str) -> bytes:
    return json.dumps(
        {
            "FirstChanceExceptionMessage": None,
            "Message": message,
            "StackTrace": None,
            "Status": None,
            "StatusCode": status,
        }
    ).encode()


def logon_node(base: str, session_id: str, username: str) -> Node:
    return (
        "LogonSession",
        {"Href": f"{base}/logonSessions/{session_id}", "Type": "LogonSession"},
        [
            _links(
                [
                    Link("Up", f"{base}/", None, "EnterpriseManager"),
                    Link("Down", f"{base}/backupServers", None, "BackupServerReferenceList"),
                    Link("Down", f"{base}/cloud", None, "CloudConnectService"),
                    Link("Down", f"{base}/tasks", None, "TaskReferenceList"),
                    Link("Down", f"{base}/querySvc", None, "QuerySvc"),
                    Link("Delete", f"{base}/logonSessions/{session_id}", None, None),
                ]
            ),
            _leaf("UserName", username),
            _leaf("SessionId", session_id),
        ],
    )


def enterprise_manager(base: str, api_versions: Iterable[str] = ("v1_5", "v1_6", "v1_7")) -> Node:
    versions: list[Node] = [
        (
            "SupportedVersion",
            {"Name": v},
            [_links([Link("Create", f"{base}/sessionMngr/?v={v}", None, "LogonSession")])],
        )
        for v in api_versions
    ]
    return (
        "EnterpriseManager",
        {},
        [
            _links(
                [
                    Link("Down", f"{base}/logonSessions", None, "LogonSessionList"),
                    Link("Create", f"{base}/sessionMngr/?v=latest", None, "LogonSession"),
                ]
            ),
            ("SupportedVersions", {}, versions),
        ],
    )


def query_result(
    items: list[Node],
    collection: str | None,
    page: int,
    page_size: int,
    pages: int,
    page_href: Callable[[int], str],
    empty_pages_count: int | None = 1,
) -> Node:
    """`collection` names the Entities wrapper; None means a References answer. An empty result says
    PagesCount `empty_pages_count`, or has no PagingInfo at all when that is None (EM versions differ)."""
    body: Node = ("Refs", {}, items) if collection is None else ("Entities", {}, [(collection, {}, items)])
    if not items and page == 1:
        if empty_pages_count is None:
            return ("QueryResult", {}, [body])
        pages = empty_pages_count
    paging_links = [Link("First", page_href(1))]
    if page < pages:
        paging_links.append(Link("Next", page_href(page + 1)))
    if page > 1:
        paging_links.append(Link("Previous", page_href(page - 1)))
    paging_links.append(Link("Last", page_href(max(1, pages))))
    return (
        "QueryResult",
        {},
        [
            body,
            (
                "PagingInfo",
                {"PageNum": str(page), "PageSize": str(page_size), "PagesCount": str(pages)},
                [_links(paging_links)],
            ),
        ],
    )
