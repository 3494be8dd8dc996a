"""The EM REST API calls the exporter makes: plans, the query service's session pages and counts, replica
points, a plan's start and its task. Answers are parsed at the edge (`parse.py`) into typed objects.

Thread-safe: the poller and the action endpoints share one client and one EM logon session.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from exporter.em import parse
from exporter.em.errors import EMError, ParseError
from exporter.em.model import Page, Plan, ReplicaPoint, Session, Task
from exporter.em.session import EP_ROOT, EMSession, tls_verify
from exporter.em.stats import RequestStats
from exporter.em.timefmt import em_time
from exporter.secret import Secret

if TYPE_CHECKING:  # types only: the client needs neither at run time
    from exporter.config import EMSettings
    from exporter.metrics.offload import Offload

log = logging.getLogger(__name__)
_T = TypeVar("_T")
Recorder = Callable[[str, str, int, str, bytes], None]

EP_PLANS = "/api/cloud/cloudFailoverPlans"
EP_START = "/api/cloud/cloudFailoverPlans/{id}?action=start"
EP_SESSION_QUERY = "/api/query?type=CloudFailoverSession"
EP_SESSION_COUNT = "/api/query?type=CloudFailoverSession&format=References"
EP_POINT_QUERY = "/api/query?type=CloudVmReplicaPoint"
EP_POINT = "/api/cloud/vmReplicaPoints/{id}"
EP_TASK = "/api/tasks/{id}"

# EM has no documented way to fetch many points by ID; OR-ing UID filters keeps it to one request
# per this many new points, and the request line (about 8 KB) under HTTP.sys's default 16 KB limit.
POINTS_PER_QUERY = 80


def creation_filter(since: float) -> str:
    """EM's filter syntax as its own links write it: `field>=value`, the value in double quotes."""
    return f'CreationTime>="{em_time(since)}"'


def client_for(em: EMSettings, offload: Offload | None = None) -> EMClient:
    """The client for these settings: the one `run`, `doctor` and `capture` all use."""
    return EMClient(
        em.url,
        em.username,
        em.password,
        verify=tls_verify(em.ca_file, em.insecure_skip_verify),
        timeout=em.timeout_seconds,
        max_body_bytes=em.max_body_bytes,
        page_size=em.page_size,
        offload=offload,
    )


class EMClient:
    """The EM API calls the exporter makes, each parsed at the edge into typed objects."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: Secret,
        *,
        verify: ssl.SSLContext | bool = True,
        timeout: float = 30.0,
        max_body_bytes: int = 64 * 1024 * 1024,
        page_size: int = 100,
        max_pages: int = 1000,
        stats: RequestStats | None = None,
        offload: Offload | None = None,
    ) -> None:
        self.session = EMSession(
            base_url,
            username,
            password,
            verify=verify,
            timeout=timeout,
            max_body_bytes=max_body_bytes,
            stats=stats,
            offload=offload,
        )
        self.page_size = page_size
        self._max_pages = max_pages

    # The session's parts callers use: counters, the base URL, the capture hook, logon and logout.
    @property
    def stats(self) -> RequestStats:
        return self.session.stats

    @property
    def base_url(self) -> str:
        return self.session.base_url

    @property
    def timeout(self) -> float:
        return self.session.timeout

    @property
    def recorder(self) -> Recorder | None:
        return self.session.recorder

    @recorder.setter
    def recorder(self, value: Recorder | None) -> None:
        self.session.recorder = value

    def logon(self) -> None:
        self.session.logon()

    def logout(self) -> bool:
        return self.session.logout()

    def close(self) -> None:
        self.session.close()

    def plans(self) -> tuple[tuple[Plan, ...], tuple[str, ...]]:
        return self.session.get_parsed("/cloud/cloudFailoverPlans?format=Entity", EP_PLANS, parse.parse_plans)

    def session_pages(self, since: float | None) -> Iterator[Page[Session]]:
        """Failover sessions created at or after `since`, newest first, following the query service's paging.

        Real servers page at 100 whatever the docs say, so we ask for a page size and follow `Next`.
        """
        params = {
            "type": "CloudFailoverSession",
            "format": "Entities",
            "sortDesc": "CreationTime",
            "pageSize": str(self.page_size),
        }
        if since is not None:
            params["filter"] = creation_filter(since)
        yield from self._pages(
            "/query?" + urlencode(params, quote_via=quote), EP_SESSION_QUERY, parse.parse_session_query
        )

    def session_count(self, since: float) -> int | None:
        """How many failover sessions were created at or after `since`, in one small request: a page of
        one reference, whose PagesCount is then the number of sessions. None when this answer cannot
        say (the caller then reads the sessions themselves)."""
        return count_from_page(self.session_reference_page(creation_filter(since), page_size=1))

    def session_reference_page(self, flt: str, page_size: int) -> Page[str]:
        """The first page of session references matching an EM filter expression."""
        params = {
            "type": "CloudFailoverSession",
            "format": "References",
            "filter": flt,
            "pageSize": str(page_size),
        }
        return self.session.get_parsed(
            "/query?" + urlencode(params, quote_via=quote), EP_SESSION_COUNT, parse.parse_reference_query
        )

    def api_versions(self) -> tuple[str, ...]:
        """`GET /api/` (no logon needed): the API versions this EM offers."""
        resp, body = self.session.send("GET", "/", EP_ROOT)
        if resp.status_code != 200:
            msg = parse.parse_error_message(body, resp.headers.get("content-type", ""))
            raise EMError("http_4xx" if resp.status_code < 500 else "http_5xx", f"GET /api/: {msg}")
        try:
            return parse.parse_api_versions(body)
        except ParseError as exc:
            raise EMError("parse", f"GET /api/: {exc}") from None

    def _pages(self, path: str, endpoint: str, parser: Callable[[bytes], Page[_T]]) -> Iterator[Page[_T]]:
        """Every page of a query, following `Next`. No `Next`, or a page with no items, ends the result
        whatever PagesCount says: EM versions differ on empty results (PagesCount 0 or 1, or no
        PagingInfo at all), and none of those is an error."""
        seen: set[str] = set()
        next_path: str | None = path
        announced: int | None = None  # PagesCount on the first page, if it gave one
        while next_path is not None:
            if len(seen) >= self._max_pages:
                raise EMError(
                    "paging", f"{endpoint}: more than {self._max_pages} pages; stopped following Next"
                )
            seen.add(next_path)
            page = self.session.get_parsed(next_path, endpoint, parser)
            announced = page.pages_count if announced is None else announced
            if announced and len(seen) > announced:
                # an EM that pages forever: it said how many pages there are, believe that
                raise EMError("paging", f"{endpoint}: EM offers page {len(seen)} of {announced}; stopped")
            yield page
            if not page.items and not page.errors:
                return
            next_path = self.api_relative(page.next_path)
            if next_path in seen:
                raise EMError("paging", f"{endpoint}: the Next link points back to a page already read")

    def api_relative(self, link: str | None) -> str | None:
        """An EM link, made relative to our base URL's `/api`. EM writes absolute links naming the host
        it believes it has (often `localhost`) and no path prefix a reverse proxy in front of it adds,
        so only what follows `/api/` in the link is used."""
        if link is None:
            return None
        parts = urlsplit(link)
        path = parts.path
        base_path = urlsplit(self.base_url).path
        if path.startswith(base_path + "/"):
            rest = path[len(base_path) :]
        elif "/api/" in path:
            rest = path[path.index("/api/") + len("/api") :]
        else:
            raise EMError("paging", "EM link outside the API path")
        return rest + ("?" + parts.query if parts.query else "")

    def replica_points(
        self, ids: Iterable[str], form: str = "urn"
    ) -> tuple[list[ReplicaPoint], tuple[str, ...]]:
        """The replica points with these IDs, one query per POINTS_PER_QUERY of them. `form` is how the
        UID values are written: "urn" (`urn:veeam:CloudVmReplicaPoint:<id>`) or "guid" (bare)."""
        wanted = sorted(set(ids))
        points: list[ReplicaPoint] = []
        errors: list[str] = []
        prefix = "urn:veeam:CloudVmReplicaPoint:" if form == "urn" else ""
        for i in range(0, len(wanted), POINTS_PER_QUERY):
            chunk = wanted[i : i + POINTS_PER_QUERY]
            flt = ",".join(f'UID=="{prefix}{pid}"' for pid in chunk)
            params = {
                "type": "CloudVmReplicaPoint",
                "format": "Entities",
                "pageSize": str(max(self.page_size, len(chunk))),
                "filter": flt,
            }
            for page in self._pages(
                "/query?" + urlencode(params, quote_via=quote),
                EP_POINT_QUERY,
                parse.parse_replica_point_query,
            ):
                points.extend(page.items)
                errors.extend(page.errors)
        return points, tuple(errors)

    def replica_point(self, point_id: str) -> ReplicaPoint | None:
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

    def start_plan(self, plan_id: str, start_date: datetime | None = None) -> Task:
        """POST ?action=start. XML elements in XSD order; exactly one of StartNow / StartDate."""
        if start_date is None:
            spec = "<StartNow>true</StartNow>"
        else:
            stamp = start_date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            spec = f"<StartDate>{stamp}</StartDate>"
        content = (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            '<CloudFailoverPlanManagementSpec xmlns="http://www.veeam.com/ent/v1.0">'
            f"{spec}</CloudFailoverPlanManagementSpec>"
        ).encode()
        body = self.session.request(
            "POST",
            f"/cloud/cloudFailoverPlans/{quote(plan_id, safe='')}?action=start",
            EP_START,
            expect=(202,),
            content=content,
        )
        try:
            return parse.parse_task(body)
        except ParseError as exc:
            raise EMError("parse", f"{EP_START}: {exc}") from None

    def task(self, task_id: str) -> Task:
        return self.session.get_parsed(f"/tasks/{quote(task_id, safe='')}", EP_TASK, parse.parse_task)


def count_from_page(page: Page[str]) -> int | None:
    """The number of items a query has, from its first page asked with pageSize=1: the page's item
    count when everything fits on it, PagesCount when EM paged at one item, None when the answer does
    not say (no PagingInfo but a Next link; or more than one item and more pages)."""
    n = len(page.items) + len(page.errors)
    if n == 0:
        return 0
    if n == 1 and page.pages_count is not None:
        return max(page.pages_count, 1)
    if page.next_path is None and (page.pages_count is None or page.pages_count <= 1):
        return n  # EM ignored pageSize and answered all of them
    return None
