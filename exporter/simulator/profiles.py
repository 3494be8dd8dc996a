"""EM profiles: the ways real Enterprise Managers of different versions may differ on the wire.

Each knob is a place where Veeam's documentation is silent or where versions are known to differ
(docs/em-compatibility.md explains each, with its source). Where a profile's value is an inference
rather than a documented fact, it is deliberately the harder choice for a client, so the exporter is
tested against the worst plausible EM of that version.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EMProfile:
    name: str
    summary: str
    api_versions: tuple[str, ...] = ("v1_5", "v1_6", "v1_7")
    # PagingInfo on a query with no result: PagesCount 0 or 1, or None for no PagingInfo at all.
    empty_pages_count: int | None = 1
    # How a DateTime filter value is read: the server's UTC offset for values it reads as local time,
    # and whether a value's own zone (`Z`) is honoured. 0 / True: everything is UTC, as the docs say
    # since 9.0 (every profile); a test plays a local-time server to hold the client's slack to it.
    filter_utc_offset_seconds: float = 0.0
    filter_zone_honoured: bool = True
    # Which forms of a UID filter value match: the URN, the bare GUID, or both.
    uid_filter_forms: frozenset[str] = frozenset({"urn", "guid"})
    # False: a UID filter on CloudVmReplicaPoint matches nothing; only GET /cloud/vmReplicaPoints/{id} works.
    point_query_by_uid: bool = True
    point_item: str = "CloudReplica"  # the XSD's name for items of CloudVmReplicaPoints
    time_digits: int = 3  # fraction digits of ...UTC timestamps: 3 (v12), 6 (v13), 7 (older examples)
    point_name_fraction: bool = False  # replica point names `vm@2025-08-15 20:00:24.003406` (13.x)
    cookie_wins: bool = True  # a cookie token is used over the header (documented)
    json_case: str = "pascal"  # "camel" in 13.x
    link_host: str | None = None  # links announce this host:port instead of the one asked
    server_header: str = "Microsoft-HTTPAPI/2.0"
    # EM's own collection from each backup server (documented default 15 minutes); 0: live, as the
    # default profile (and the demo) show it. A scenario's collection_interval_seconds overrides it.
    collection_interval_seconds: float = 0.0
    # VM tasks in the query service's session answers: "always", "while_running" (the 13.1 query
    # examples: Stopped and Failed sessions carry an empty <CloudFailoverTasks />) or "never"; and in a
    # finished session's entity: "kept", or "dropped" (the finished Success example of
    # cloudfailoversessions/{ID} has none either). EM does not say which it means (docs/em-compatibility.md).
    # a replica point's VmName element (the XSD has it; the 13.1 examples carry only the VmDisplayName
    # attribute and no VmName)
    point_vm_name: bool = True
    # Whether an entity's action links (a plan's Start, a backup server's collect) show only for users
    # whose role may take them ("by_role") or for everyone ("always"): EM does not say
    action_links: str = "always"
    tasks_in_query: str = "always"
    tasks_when_ended: str = "kept"


PROFILES: dict[str, EMProfile] = {
    p.name: p
    for p in (
        EMProfile(
            name="default",
            summary="the simulator's reading of the current (13.x) documentation",
        ),
        EMProfile(
            name="em95",
            collection_interval_seconds=900.0,
            summary="9.5 U4 (API v1_4): no PagingInfo on empty results, bare-GUID UID filters, "
            "7-digit fractions, links naming localhost, no VM tasks in query answers",
            api_versions=("v1", "v1_1", "v1_2", "v1_3", "v1_4"),
            empty_pages_count=None,
            uid_filter_forms=frozenset({"guid"}),
            time_digits=7,
            link_host="localhost:9398",
            tasks_in_query="never",
        ),
        EMProfile(
            name="em10",
            collection_interval_seconds=900.0,
            summary="10 (API v1_5): PagesCount 0 on empty results, URN UID filters only, "
            "CloudVmReplicaPoint query items, 7-digit fractions",
            api_versions=("v1_5",),
            empty_pages_count=0,
            uid_filter_forms=frozenset({"urn"}),
            point_item="CloudVmReplicaPoint",
            time_digits=7,
        ),
        EMProfile(
            name="em11",
            collection_interval_seconds=900.0,
            summary="11 (API v1_6): empty page with PagesCount 1, UTC filters, replica points found by "
            "GET only (UID filters match nothing), links naming another host",
            api_versions=("v1_5", "v1_6"),
            empty_pages_count=1,
            point_query_by_uid=False,
            link_host="em-internal.corp.example:9398",
        ),
        EMProfile(
            name="em12",
            collection_interval_seconds=900.0,
            summary="12 (API v1_7): millisecond timestamps, PagesCount 1 on empty results, URN or GUID "
            "UID filters, PascalCase JSON, no VM tasks in query answers of finished sessions",
            empty_pages_count=1,
            tasks_in_query="while_running",
        ),
        EMProfile(
            name="em13",
            collection_interval_seconds=900.0,
            summary="13 (API v1_7): microsecond timestamps and replica point names with fractions, "
            "PagesCount 0 on empty results, UTC filters, camelCase JSON, links naming localhost, no VM "
            "tasks in query answers of finished sessions, replica points with VmDisplayName and no VmName",
            empty_pages_count=0,
            tasks_in_query="while_running",
            time_digits=6,
            point_name_fraction=True,
            point_vm_name=False,
            json_case="camel",
            link_host="localhost:9398",
        ),
    )
}

# Every version we model, oldest first: the loopback tests run the exporter against each.
VERSION_PROFILES: tuple[str, ...] = ("em95", "em10", "em11", "em12", "em13")


def get_profile(name: str) -> EMProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown EM profile {name!r}; known: {', '.join(PROFILES)}") from None
