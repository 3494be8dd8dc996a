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
from urllib.parse import quote, urlencode

from exporter.em import answers, parse
from exporter.em.errors import EMError, ParseError
from exporter.em.model import Page, Plan, ReplicaPoint, Session, Task
from exporter.em.paging import count_from_page, pages
from exporter.em.replica_points import POINTS_PER_QUERY, ReplicaPointQueries
from exporter.em.session import EP_ROOT, EMSession, tls_verify
from exporter.em.stats import RequestStats
from exporter.em.timefmt import creation_filter
from exporter.secret import Secret

if TYPE_CHECKING:  # types only: the client needs neither at run time
    from exporter.config import EMSettings
    from exporter.metrics.offload import Offload

log = logging.getLogger(__name__)
_T = TypeVar("_T")
Recorder = Callable[[str, str, int, str, bytes], None]

EP_PLANS = "/api/cloud/cloudFailoverPlans"
EP_PLAN = "/api/cloud/cloudFailoverPlans/{id}"
EP_START = "/api/cloud/cloudFailoverPlans/{id}?action=start"
EP_SESSION_QUERY = "/api/query?type=CloudFailoverSession"
EP_SESSION_COUNT = "/api/query?type=CloudFailoverSession&format=References"
EP_TASK = "/api/tasks/{id}"
EP_SESSION = "/api/cloud/failoverSessions/{id}"
EP_BACKUP_SERVER = "/api/backupServers/{id}"
EP_COLLECT = "/api/backupServers/{id}?action=collect"


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

    points_per_query = POINTS_PER_QUERY

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
        self.points = ReplicaPointQueries(self.session, page_size, max_pages)

    # What callers use of the session itself: its counters, and closing it (logout included).
    @property
    def stats(self) -> RequestStats:
        return self.session.stats

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
        yield from pages(
            self.session,
            "/query?" + urlencode(params, quote_via=quote),
            EP_SESSION_QUERY,
            parse.parse_session_query,
            self._max_pages,
        )

    def session_entity(self, session_id: str) -> Session:
        """One session as an entity, its VM tasks included where EM writes them (a query answer may not)."""
        path = f"/cloud/failoverSessions/{quote(session_id, safe='')}?format=Entity"
        return self.session.get_parsed(path, EP_SESSION, parse.parse_session)

    def action_links(self, kind: str, entity_id: str) -> dict[str, str]:
        """The links by Rel of a plan (`kind` "plan") or a backup server ("backup server") as EM writes
        them for this account: whether it offers Start (a plan's start, a server's collection)."""
        path, endpoint = {
            "plan": ("/cloud/cloudFailoverPlans/{}?format=Entity", EP_PLAN),
            "backup server": ("/backupServers/{}?format=Entity", EP_BACKUP_SERVER),
        }[kind]
        return self.session.get_parsed(
            path.format(quote(entity_id, safe="")), endpoint, parse.parse_action_links
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
            msg = answers.parse_error_message(body, resp.headers.get("content-type", ""))
            raise EMError("http_4xx" if resp.status_code < 500 else "http_5xx", f"GET /api/: {msg}")
        try:
            return answers.parse_api_versions(body)
        except ParseError as exc:
            raise EMError("parse", f"GET /api/: {exc}") from None

    def replica_points(
        self, ids: Iterable[str], form: str = "urn"
    ) -> tuple[list[ReplicaPoint], tuple[str, ...]]:
        return self.points.by_ids(ids, form)

    def replica_point(self, point_id: str) -> ReplicaPoint | None:
        return self.points.by_id(point_id)

    def start_plan(self, plan_id: str, start_date: datetime | None = None) -> Task:
        """POST ?action=start, sent once. XML elements in XSD order; exactly one of StartNow / StartDate.

        Just before, the plan is read (one GET): an expired logon is renewed there, so the start itself
        rarely meets a 401; and it is never re-sent after one (something in front of EM may answer 401
        after EM acted)."""
        content = _start_spec(start_date)
        path = f"/cloud/cloudFailoverPlans/{quote(plan_id, safe='')}"
        self.session.request("GET", path, EP_PLAN)
        body = self.session.request(
            "POST", f"{path}?action=start", EP_START, expect=(202,), content=content, once=True
        )
        try:
            return parse.parse_task(body)
        except ParseError as exc:
            raise EMError("parse", f"{EP_START}: {exc}") from None

    def collect(self, backup_server_id: str) -> Task:
        """POST ?action=collect: EM collects that backup server's data now (documented: 202 and a Task)."""
        body = self.session.request(
            "POST",
            f"/backupServers/{quote(backup_server_id, safe='')}?action=collect",
            EP_COLLECT,
            expect=(202,),
        )
        try:
            return parse.parse_task(body)
        except ParseError as exc:
            raise EMError("parse", f"{EP_COLLECT}: {exc}") from None

    def task(self, task_id: str) -> Task:
        return self.session.get_parsed(f"/tasks/{quote(task_id, safe='')}", EP_TASK, parse.parse_task)


def _start_spec(start_date: datetime | None) -> bytes:
    """The start request's body: XML elements in XSD order, exactly one of StartNow / StartDate."""
    if start_date is None:
        spec = "<StartNow>true</StartNow>"
    else:
        stamp = start_date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        spec = f"<StartDate>{stamp}</StartDate>"
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<CloudFailoverPlanManagementSpec xmlns="http://www.veeam.com/ent/v1.0">'
        f"{spec}</CloudFailoverPlanManagementSpec>"
    ).encode()
