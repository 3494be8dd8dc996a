"""The EM logon session and its transport: httpx, `X-RestSvcSessionId` only (no cookies), whole-answer
time-outs and size limits, every request counted. `client.py` builds the API calls on it."""

from __future__ import annotations

import base64
import http.cookiejar
import logging
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote

import httpx

from exporter.em import answers
from exporter.em.address import normalize_base_url
from exporter.em.answers import TOKEN_HEADER
from exporter.em.errors import EMError, ParseError, Reason
from exporter.em.stats import RequestStats
from exporter.logs import register_secret
from exporter.secret import Secret

if TYPE_CHECKING:  # types only: the session needs it not at run time
    from exporter.metrics.offload import Offload

log = logging.getLogger(__name__)
_T = TypeVar("_T")

XML = "application/xml"
# Route templates for the `endpoint` label: never an ID, so the label set stays bounded.
EP_ROOT = "/api/"
EP_LOGON = "/api/sessionMngr"
EP_LOGOUT = "/api/logonSessions/{id}"


def tls_verify(ca_file: str | None, insecure_skip_verify: bool) -> ssl.SSLContext | bool:
    if insecure_skip_verify:
        return False
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    return True


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


class EMSession:
    """One EM logon session over one HTTP connection pool: logged on when first needed, reused, renewed
    once on 401, ended on close. Thread-safe: the poller and the action endpoints share it."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: Secret,
        *,
        verify: ssl.SSLContext | bool = True,
        timeout: float = 30.0,
        max_body_bytes: int = 64 * 1024 * 1024,
        stats: RequestStats | None = None,
        offload: Offload | None = None,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self._origin = self.base_url[: -len("/api")]
        self._username = username
        self._password = password
        # the Basic credentials as they cross the wire, should a library ever log a request's headers
        register_secret(base64.b64encode(f"{username}:{password.reveal()}".encode()).decode())
        self.timeout = timeout  # of every request, whole answer included
        self._max_body = max_body_bytes
        self.stats = stats or RequestStats()
        self._offload = offload
        self._http = _http_client(verify, timeout)
        # Sees every answer but the logon's and the logout's (`capture`); never any header.
        self.recorder: Callable[[str, str, int, str, bytes], None] | None = None
        self._token: str | None = None
        self._logon_id: str | None = None
        self._logon_lock = threading.Lock()

    # -- session handling -------------------------------------------------------------

    def logon(self) -> None:
        with self._logon_lock:
            self._logon_locked()

    def _logon_locked(self) -> None:
        self.stats.logon()
        resp, body = self.send(
            "POST",
            "/sessionMngr/?v=latest",
            EP_LOGON,
            auth=(self._username, self._password.reveal()),
            headers={"Content-Length": "0"},
        )
        self._token, self._logon_id = answers.logon_answer(resp, body, self._username)
        register_secret(self._token)  # it calls EM directly, past every guard: never in a log
        log.info("logged on to EM %s as %s", self.base_url, self._username)

    def logout(self) -> bool:
        """End our EM logon session so it does not linger for EM's 15-minute idle timeout. False if EM
        did not confirm it (logged, never raised: this runs on the way out)."""
        with self._logon_lock:
            token, logon_id = self._token, self._logon_id
            self._token = self._logon_id = None
        return _end_logon(self, logon_id, token) if token and logon_id else True

    def close(self) -> None:
        self.logout()
        self._http.close()

    # -- transport ----------------------------------------------------------------------

    def send(
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
        try:
            with self._http.stream(method, url, headers=headers, content=content, auth=auth) as resp:
                body = _read_body(resp, endpoint, self._max_body, self.timeout)
        except EMError as exc:
            self.stats.error(endpoint, exc.reason)
            raise
        except (httpx.HTTPError, ssl.SSLError) as exc:
            err = _transport_error(exc, endpoint, self._origin, self.timeout)
            self.stats.error(endpoint, err.reason)
            raise err from None
        self.stats.count(endpoint, str(resp.status_code), len(body), charged=endpoint != EP_LOGON)
        if self.recorder is not None and endpoint not in (EP_LOGON, EP_LOGOUT):
            self.recorder(method, path, resp.status_code, resp.headers.get("content-type", ""), body)
        return resp, body

    def request(
        self,
        method: str,
        path: str,
        endpoint: str,
        *,
        expect: Iterable[int] = (200,),
        content: bytes | None = None,
        once: bool = False,
    ) -> bytes:
        """An authenticated call. Logs on if needed; on 401 logs on again once and retries, unless
        `once`: a request that may act (a start) is never sent twice, whatever the first answer was."""
        for attempt in (1, 2):
            with self._logon_lock:
                if self._token is None:
                    try:
                        self._logon_locked()
                    except EMError as exc:
                        exc.sent = False  # the request itself never left
                        raise
                token = self._token
            headers = {TOKEN_HEADER: token or ""}
            if content is not None:
                headers["Content-Type"] = XML
            resp, body = self.send(method, path, endpoint, headers=headers, content=content)
            if resp.status_code == 401 and attempt == 1 and not once:
                log.info("EM answered 401 on %s: logon session expired, logging on again", endpoint)
                with self._logon_lock:
                    if self._token == token:  # nobody renewed it meanwhile
                        self._token = None
                continue
            problem = answers.unusable_answer(resp, body, endpoint, expect)
            if problem is not None:
                if problem.reason == "content_type":
                    self.stats.error(endpoint, "content_type")
                raise problem
            return body
        raise AssertionError("unreachable")

    def get_parsed(self, path: str, endpoint: str, parser: Callable[[bytes], _T]) -> _T:
        body = self.request("GET", path, endpoint)
        try:
            if self._offload is not None and len(body) >= self._offload.parse_min_bytes:
                return self._offload.run(parser, body)
            return parser(body)
        except ParseError as exc:
            self.stats.error(endpoint, "parse")
            raise EMError("parse", f"{endpoint}: {exc}") from None


def _end_logon(session: EMSession, logon_id: str, token: str) -> bool:
    try:
        resp, _ = session.send(
            "DELETE", f"/logonSessions/{quote(logon_id, safe='')}", EP_LOGOUT, headers={TOKEN_HEADER: token}
        )
    except EMError as exc:
        log.warning("EM logout failed: %s", exc)
        return False
    if resp.status_code not in (200, 204):
        log.warning("EM logout answered HTTP %d", resp.status_code)
        return False
    log.info("logged out of EM")
    return True


def _http_client(verify: ssl.SSLContext | bool, timeout: float) -> httpx.Client:
    return httpx.Client(
        verify=verify,
        timeout=httpx.Timeout(timeout),
        headers={"Accept": XML, "User-Agent": "veeam-failover-exporter"},
        follow_redirects=False,
        cookies=http.cookiejar.CookieJar(policy=_NoCookies()),
    )


def _read_body(resp: httpx.Response, endpoint: str, max_body: int, timeout: float) -> bytes:
    """The whole answer, within the size limit and the time-out for all of it (a server that trickles
    bytes never trips the per-read time-out)."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_bytes():
        size += len(chunk)
        if size > max_body:
            raise EMError("too_large", f"{endpoint}: answer larger than {max_body} bytes")
        if time.monotonic() > deadline:
            raise EMError("timeout", f"{endpoint}: answer took longer than {timeout:g}s")
        chunks.append(chunk)
    return b"".join(chunks)


def _transport_error(exc: Exception, endpoint: str, origin: str, timeout: float) -> EMError:
    """No usable answer: the reason (a bounded label value) and a message without secrets."""
    if isinstance(exc, httpx.ConnectTimeout):  # no connection: the request never left
        return EMError("timeout", f"{endpoint}: no connection within {timeout:g}s", sent=False)
    if isinstance(exc, httpx.TimeoutException):
        return EMError("timeout", f"{endpoint}: no answer within {timeout:g}s")
    if isinstance(exc, httpx.ConnectError):
        tls = "CERTIFICATE" in str(exc).upper() or "SSL" in str(exc).upper()
        detail = f"TLS verification failed ({_short(exc)}); set em.ca_file" if tls else _short(exc)
        reason: Reason = "tls" if tls else "connect"
        return EMError(reason, f"{endpoint}: cannot connect to {origin}: {detail}", sent=False)
    return EMError("protocol", f"{endpoint}: {type(exc).__name__}: {_short(exc)}")


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
