"""HTTP client for the EM REST API: one logon session, reused, renewed once on 401, closed on shutdown.

Thread-safe: the poller and the action endpoints share one client and one EM logon session.
"""

from __future__ import annotations

import http.cookiejar
import logging
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import httpx

from exporter.em import parse
from exporter.em.address import normalize_base_url
from exporter.em.errors import EMError, ParseError
from exporter.em.model import Page, Plan, ReplicaPoint, Session, Task
from exporter.em.stats import RequestStats
from exporter.em.timefmt import em_time
from exporter.secret import Secret

if TYPE_CHECKING:  # types only: the client needs neither at run time
    from exporter.config import EMSettings
    from exporter.metrics.offload import Offload

log = logging.getLogger(__name__)
_T = TypeVar("_T")

XML = "application/xml"
TOKEN_HEADER = "X-RestSvcSessionId"  # noqa: S105 - a header name
# Route templates for the `endpoint` label: never an ID, so the label set stays bounded.
EP_ROOT = "/api/"
EP_LOGON = "/api/sessionMngr"
EP_LOGOUT = "/api/logonSessions/{id}"
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


def tls_verify(ca_file: str | None, insecure_skip_verify: bool) -> ssl.SSLContext | bool:
    if insecure_skip_verify:
        return False
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    return True


def creation_filter(since: float) -> str:
    """EM's filter syntax as its own links write it: `field>=value`, the value in double quotes."""
    return f'CreationTime>="{em_time(since)}"'


class _NoCookies(http.cookiejar.CookiePolicy):
    """EM also sets its token as a cookie, and a cookie wins over the header (documented): a kept
    cookie could send a stale token after a fresh logon. The header alone carries our session."""

    netscape = True
    rfc2965 = hide_cookie2 = False

    def set_ok(self, cookie: http.cookiejar.Cookie, request: urllib.request.Request) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: urllib.request.Request) -> bool:
        return False

    def domain_return_ok(self, domain: str, request: urllib.request.Request) -> bool:
        return False

    def path_return_ok(self, path: str, request: urllib.request.Request) -> bool:
        return False


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
        self.base_url = normalize_base_url(base_url)
        self._origin = self.base_url[: -len("/api")]
        self._username = username
        self._password = password
        self._timeout = timeout
        self._max_body = max_body_bytes
        self.page_size = page_size
        self._max_pages = max_pages
        self.stats = stats or RequestStats()
        self._offload = offload
        self._http = httpx.Client(
            verify=verify,
            timeout=httpx.Timeout(timeout),
            headers={"Accept": XML, "User-Agent": "veeam-failover-exporter"},
            follow_redirects=False,
            cookies=http.cookiejar.CookieJar(policy=_NoCookies()),
        )
        # Sees every answer but the logon's and the logout's (`capture`); never any header.
        self.recorder: Callable[[str, str, int, str, bytes], None] | None = None
        self._token: str | None = None
        self._logon_id: str | None = None
        self._logon_lock = threading.Lock()

    @property
    def timeout(self) -> float:
        return self._timeout

    # -- session handling -------------------------------------------------------------

    def logon(self) -> None:
        with self._logon_lock:
            self._logon_locked()

    def _logon_locked(self) -> None:
        self.stats.logon()
        resp, body = self._send(
            "POST",
            "/sessionMngr/?v=latest",
            EP_LOGON,
            auth=(self._username, self._password.reveal()),
            headers={"Content-Length": "0"},
        )
        if resp.status_code != 201:
            msg = parse.parse_error_message(body, resp.headers.get("content-type", ""))
            refused = resp.status_code in (401, 403)
            hint = " (check the username, the password and the account's EM role)" if refused else ""
            # refused credentials are a logon problem; an overloaded EM is a 5xx like any other
            reason = "logon" if refused else ("http_5xx" if resp.status_code >= 500 else "http_4xx")
            raise EMError(
                reason,
                f"EM refused the logon as {self._username!r}: HTTP {resp.status_code} {msg}{hint}",
                resp.status_code,
            )
        token = resp.headers.get(TOKEN_HEADER)
        if not token:
            raise EMError("logon", f"EM logon answered 201 without a {TOKEN_HEADER} header")
        try:
            session = parse.parse_logon_session(body)
        except ParseError as exc:
            raise EMError("parse", f"EM logon: {exc}") from None
        self._token = token
        self._logon_id = session.session_id
        log.info("logged on to EM %s as %s", self.base_url, self._username)

    def logout(self) -> bool:
        """End our EM logon session so it does not linger for EM's 15-minute idle timeout. False if EM
        did not confirm it (logged, never raised: this runs on the way out)."""
        with self._logon_lock:
            token, logon_id = self._token, self._logon_id
            self._token = self._logon_id = None
        if not (token and logon_id):
            return True
        try:
            resp, _ = self._send(
                "DELETE",
                f"/logonSessions/{quote(logon_id, safe='')}",
                EP_LOGOUT,
                headers={TOKEN_HEADER: token},
            )
        except EMError as exc:
            log.warning("EM logout failed: %s", exc)
            return False
        if resp.status_code not in (200, 204):
            log.warning("EM logout answered HTTP %d", resp.status_code)
            return False
        log.info("logged out of EM")
        return True

    def close(self) -> None:
        self.logout()
        self._http.close()

    # -- transport ----------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        endpoint: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        auth: tuple[str, str] | None = None,
    ) -> tuple[httpx.Response, bytes]:
        url = self.base_url + path
        deadline = time.monotonic() + self._timeout
        try:
            with self._http.stream(method, url, headers=headers, content=content, auth=auth) as resp:
                chunks: list[bytes] = []
                size = 0
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > self._max_body:
                        raise EMError("too_large", f"{endpoint}: answer larger than {self._max_body} bytes")
                    if time.monotonic() > deadline:
                        # A server that trickles bytes never trips the per-read time-out.
                        raise EMError("timeout", f"{endpoint}: answer took longer than {self._timeout:g}s")
                    chunks.append(chunk)
        except EMError as exc:
            self.stats.error(endpoint, exc.reason)
            raise
        except httpx.TimeoutException:
            self.stats.error(endpoint, "timeout")
            raise EMError("timeout", f"{endpoint}: no answer within {self._timeout:g}s") from None
        except httpx.ConnectError as exc:
            reason = "tls" if "CERTIFICATE" in str(exc).upper() or "SSL" in str(exc).upper() else "connect"
            self.stats.error(endpoint, reason)
            detail = (
                f"TLS verification failed ({_short(exc)}); set em.ca_file" if reason == "tls" else _short(exc)
            )
            raise EMError(reason, f"{endpoint}: cannot connect to {self._origin}: {detail}") from None
        except (httpx.HTTPError, ssl.SSLError) as exc:
            self.stats.error(endpoint, "protocol")
            raise EMError("protocol", f"{endpoint}: {type(exc).__name__}: {_short(exc)}") from None
        body = b"".join(chunks)
        self.stats.count(endpoint, str(resp.status_code), len(body))
        if self.recorder is not None and endpoint not in (EP_LOGON, EP_LOGOUT):
            self.recorder(method, path, resp.status_code, resp.headers.get("content-type", ""), body)
        return resp, body

    def _request(
        self,
        method: str,
        path: str,
        endpoint: str,
        *,
        expect: Iterable[int] = (200,),
        content: bytes | None = None,
    ) -> bytes:
        """An authenticated call. Logs on if needed; on 401 logs on again once and retries."""
        for attempt in (1, 2):
            with self._logon_lock:
                if self._token is None:
                    self._logon_locked()
                token = self._token
            headers = {TOKEN_HEADER: token or ""}
            if content is not None:
                headers["Content-Type"] = XML
            resp, body = self._send(method, path, endpoint, headers=headers, content=content)
            if resp.status_code == 401 and attempt == 1:
                log.info("EM answered 401 on %s: logon session expired, logging on again", endpoint)
                with self._logon_lock:
                    if self._token == token:  # nobody renewed it meanwhile
                        self._token = None
                continue
            if resp.status_code not in expect:
                msg = parse.parse_error_message(body, resp.headers.get("content-type", ""))
                kind = "http_5xx" if resp.status_code >= 500 else "http_4xx"
                raise EMError(kind, f"{endpoint}: HTTP {resp.status_code}: {msg}", resp.status_code)
            ctype = resp.headers.get("content-type", "")
            if body and ctype and "xml" not in ctype.lower():
                self.stats.error(endpoint, "content_type")
                raise EMError(
                    "content_type",
                    f"{endpoint}: EM answered {ctype[:60]!r}, expected application/xml "
                    "(a proxy or a login page in between?)",
                )
            return body
        raise AssertionError("unreachable")

    def _get_parsed(self, path: str, endpoint: str, parser: Callable[[bytes], _T]) -> _T:
        body = self._request("GET", path, endpoint)
        try:
            if self._offload is not None and len(body) >= self._offload.parse_min_bytes:
                return self._offload.run(parser, body)
            return parser(body)
        except ParseError as exc:
            self.stats.error(endpoint, "parse")
            raise EMError("parse", f"{endpoint}: {exc}") from None

    # -- the API we use -----------------------------------------------------------------

    def plans(self) -> tuple[tuple[Plan, ...], tuple[str, ...]]:
        return self._get_parsed("/cloud/cloudFailoverPlans?format=Entity", EP_PLANS, parse.parse_plans)

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
        return self._get_parsed(
            "/query?" + urlencode(params, quote_via=quote), EP_SESSION_COUNT, parse.parse_reference_query
        )

    def api_versions(self) -> tuple[str, ...]:
        """`GET /api/` (no logon needed): the API versions this EM offers."""
        resp, body = self._send("GET", "/", EP_ROOT)
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
            page = self._get_parsed(next_path, endpoint, parser)
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
            return self._get_parsed(
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
        body = self._request(
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
        return self._get_parsed(f"/tasks/{quote(task_id, safe='')}", EP_TASK, parse.parse_task)


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


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
