"""The query service's replica points: by ID (what a failover session names), newest first (what each
plan VM last has), and of one VM. Parsed at the edge into `ReplicaPoint`s.

EM has no documented way to fetch many points by ID; OR-ing UID filters keeps it to one request per
POINTS_PER_QUERY new points, and the request line (about 8 KB) under HTTP.sys's default 16 KB limit.
Newest-first pages carry no DateTime filter: EM before 13.x does not say whether it reads a filter's
DateTime as UTC or as its local time, and a sort order is the same either way (the reader cuts on
CreationTimeUTC itself).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from exporter.em import parse
from exporter.em.errors import EMError
from exporter.em.model import Page, ReplicaPoint
from exporter.em.paging import pages

if TYPE_CHECKING:  # the session is passed in; only its type is needed here
    from exporter.em.session import EMSession

EP_POINT_QUERY = "/api/query?type=CloudVmReplicaPoint"
EP_POINT_NEWEST = "/api/query?type=CloudVmReplicaPoint&sortDesc=CreationTime"
EP_POINT_OF_VM = "/api/query?type=CloudVmReplicaPoint&filter=VmName"
EP_POINT = "/api/cloud/vmReplicaPoints/{id}"
POINTS_PER_QUERY = 80


class ReplicaPointQueries:
    def __init__(self, session: EMSession, page_size: int, max_pages: int) -> None:
        self.session = session
        self.page_size = page_size
        self.max_pages = max_pages

    def by_ids(self, ids: Iterable[str], form: str = "urn") -> tuple[list[ReplicaPoint], tuple[str, ...]]:
        """The points with these IDs, one query per POINTS_PER_QUERY of them. `form` is how the UID
        values are written: "urn" (`urn:veeam:CloudVmReplicaPoint:<id>`) or "guid" (bare)."""
        wanted = sorted(set(ids))
        points: list[ReplicaPoint] = []
        errors: list[str] = []
        prefix = "urn:veeam:CloudVmReplicaPoint:" if form == "urn" else ""
        for i in range(0, len(wanted), POINTS_PER_QUERY):
            chunk = wanted[i : i + POINTS_PER_QUERY]
            params = {
                "type": "CloudVmReplicaPoint",
                "format": "Entities",
                "pageSize": str(max(self.page_size, len(chunk))),
                "filter": ",".join(f'UID=="{prefix}{pid}"' for pid in chunk),
            }
            for page in pages(self.session, _query(params), EP_POINT_QUERY, _parse_page, self.max_pages):
                points.extend(page.items)
                errors.extend(page.errors)
        return points, tuple(errors)

    def by_id(self, point_id: str) -> ReplicaPoint | None:
        """`GET /cloud/vmReplicaPoints/{id}?format=Entity`; None if EM has no such point (404)."""
        try:
            return self.session.get_parsed(
                f"/cloud/vmReplicaPoints/{quote(point_id, safe='')}?format=Entity",
                EP_POINT,
                parse.parse_replica_point,
            )
        except EMError as exc:
            if exc.status == 404:
                return None
            raise

    def newest(self, page: int) -> Page[ReplicaPoint]:
        """Page `page` (from 1) of every point, newest first."""
        params = {
            "type": "CloudVmReplicaPoint",
            "format": "Entities",
            "sortDesc": "CreationTime",
            "pageSize": str(self.page_size),
            "page": str(page),
        }
        return self.session.get_parsed(_query(params), EP_POINT_NEWEST, _parse_page)

    def of_vm(self, vm: str) -> Page[ReplicaPoint]:
        """The first page of the points of VMs of this name (on any backup server), newest first."""
        params = {
            "type": "CloudVmReplicaPoint",
            "format": "Entities",
            "sortDesc": "CreationTime",
            "pageSize": str(self.page_size),
            # a value in double quotes, a literal quote doubled (EMR query syntax)
            "filter": 'VmName=="{}"'.format(vm.replace('"', '""')),
        }
        return self.session.get_parsed(_query(params), EP_POINT_OF_VM, _parse_page)


def _query(params: dict[str, str]) -> str:
    return "/query?" + urlencode(params, quote_via=quote)


def _parse_page(body: bytes) -> Page[ReplicaPoint]:
    return parse.parse_replica_point_query(body)
