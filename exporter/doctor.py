"""`veeam-failover-exporter doctor`: first contact with a real EM, one check a line, each with what to do.

The checks run in the order a connection is made (name, port, TLS, API, logon, data), and a check
whose ground failed is skipped with the reason. Required checks decide the exit code; the others
(WARN) say what this EM does differently and how the exporter copes. Nothing secret is ever printed:
messages come from EMError, whose texts never hold the password or the token.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlsplit

from exporter.config import Config
from exporter.em.client import EMClient, client_for, creation_filter
from exporter.em.errors import EMError
from exporter.em.model import Plan, Session
from exporter.polling.points import LOOKUP_FORMS

Status = Literal["OK", "WARN", "FAIL", "SKIP"]
DATA_AGE_WARN_SECONDS = 30 * 86400.0
CERT_EXPIRY_WARN_DAYS = 30
CLOCK_SKEW_WARN_SECONDS = 300.0


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    hint: str = ""

    def line(self) -> str:
        text = f"{self.status:<4}  {self.name:<18} {self.detail}"
        return text + (f"\n      {'':<18} -> {self.hint}" if self.hint else "")


@dataclass
class _Found:
    """What earlier checks learnt, for the later ones."""

    plans: tuple[Plan, ...] = ()
    sessions: tuple[Session, ...] = ()


def run_checks(config: Config) -> Iterator[Check]:
    em = config.em
    parts = urlsplit(em.url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)

    dns = _dns(host)
    yield dns
    if dns.status == "FAIL":
        return
    tcp = _tcp(host, port, em.timeout_seconds)
    yield tcp
    if tcp.status == "FAIL":
        return
    if parts.scheme == "https":
        tls = _tls(host, port, em.ca_file, em.insecure_skip_verify, em.timeout_seconds)
        yield tls
        if tls.status == "FAIL":
            return
    client = client_for(em)
    try:
        yield _api(client)
        logon = _logon(client, em.username)
        yield logon
        if logon.status == "FAIL":
            return
        found = _Found()
        plans = _plans(client, found)
        yield plans
        if plans.status != "FAIL":
            yield from _queries(client, found)
            yield _data_age(found)
        yield Check("token idle expiry", "SKIP", "not probed: EM ends an idle logon after 15 minutes")
        yield _logout(client)
    finally:
        client.close()


def _dns(host: str) -> Check:
    try:
        addresses = sorted({info[4][0] for info in socket.getaddrinfo(host, None)})
    except OSError as exc:
        return Check(
            "dns",
            "FAIL",
            f"cannot resolve {host!r}: {exc.strerror or exc}",
            "check em.url's host name",
        )
    return Check("dns", "OK", f"{host} -> {', '.join(str(a) for a in addresses[:4])}")


def _tcp(host: str, port: int, timeout: float) -> Check:
    started = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=min(timeout, 10.0)):
            pass
    except OSError as exc:
        return Check(
            "tcp",
            "FAIL",
            f"cannot connect to {host}:{port}: {exc.strerror or exc}",
            "is EM running, and its REST API port (9398 since VBR 10) open from here?",
        )
    return Check("tcp", "OK", f"{host}:{port} answers ({(time.monotonic() - started) * 1000:.0f} ms)")


def _tls(host: str, port: int, ca_file: str | None, insecure: bool, timeout: float) -> Check:
    if insecure:
        return Check(
            "tls",
            "WARN",
            "certificate not verified (em.insecure_skip_verify)",
            "set em.ca_file to the CA that signed EM's certificate instead",
        )
    ctx = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    try:
        with (
            socket.create_connection((host, port), timeout=min(timeout, 10.0)) as raw,
            ctx.wrap_socket(raw, server_hostname=host) as tls_sock,
        ):
            cert = tls_sock.getpeercert() or {}
    except ssl.SSLCertVerificationError as exc:
        return Check(
            "tls",
            "FAIL",
            f"EM's certificate is not trusted: {exc.verify_message}",
            "set em.ca_file to the CA bundle that signed EM's certificate (EM's own self-signed "
            "certificate: export it from the EM server)",
        )
    except (ssl.SSLError, OSError) as exc:
        return Check("tls", "FAIL", f"TLS handshake failed: {exc}", "is this port EM's HTTPS port (9398)?")
    not_after = cert.get("notAfter")
    if not isinstance(not_after, str):
        return Check("tls", "OK", "certificate trusted")
    expires = ssl.cert_time_to_seconds(not_after)
    days = (expires - time.time()) / 86400
    when = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d")
    if days < CERT_EXPIRY_WARN_DAYS:
        return Check("tls", "WARN", f"certificate trusted, expires {when} ({days:.0f} days)", "renew it")
    return Check("tls", "OK", f"certificate trusted for {host}, expires {when}")


def _api(client: EMClient) -> Check:
    try:
        versions = client.api_versions()
    except EMError as exc:
        return Check("api", "FAIL", str(exc), "is em.url EM's REST API (https://<em>:9398)?")
    if "v1_5" not in versions and "v1_6" not in versions and "v1_7" not in versions:
        return Check(
            "api",
            "WARN",
            f"API versions {', '.join(versions) or 'none listed'}: older than VBR 10",
            "this EM is out of Veeam support; the exporter may still work (see the compatibility notes)",
        )
    return Check("api", "OK", f"API versions {', '.join(versions)}")


def _logon(client: EMClient, username: str) -> Check:
    try:
        client.session.logon()
    except EMError as exc:
        if exc.status == 401:
            hint = "wrong user name or password (EM answered 401); domain accounts as user@domain"
        elif exc.status == 403:
            hint = (
                "EM knows the account but it has no EM role: add it to Portal Administrators in EM "
                "(Configuration > Roles)"
            )
        else:
            hint = "EM could not log the account on; see the message"
        return Check("logon", "FAIL", str(exc), hint)
    return Check("logon", "OK", f"logged on as {username!r}")


def _plans(client: EMClient, found: _Found) -> Check:
    try:
        plans, errors = client.plans()
    except EMError as exc:
        hint = (
            "the account needs the Portal Administrator role to see Cloud Connect resources"
            if exc.status == 403
            else "see the message"
        )
        return Check("plans", "FAIL", str(exc), hint)
    found.plans = plans
    if not plans:
        return Check(
            "plans",
            "FAIL",
            "EM lists no cloud failover plans",
            "Cloud Connect resources need a Windows EM, a Cloud Connect service-provider licence on the "
            "backup server, a Portal Administrator account, and at least one cloud failover plan",
        )
    servers = sorted({p.backup_server for p in plans})
    detail = f"{len(plans)} cloud failover plan(s) on {len(servers)} backup server(s)"
    if errors:
        return Check("plans", "WARN", f"{detail}; {len(errors)} could not be read: {errors[0]}")
    return Check("plans", "OK", detail)


def _queries(client: EMClient, found: _Found) -> Iterator[Check]:
    yield _guard("session query", lambda: _session_query(client, found))
    yield _guard("empty results", lambda: _empty_results(client))
    yield _guard("session count", lambda: _session_count(client))
    yield _guard("datetime filter", lambda: _datetime_filter(client, found))
    yield _guard("replica points", lambda: _replica_points(client, found))


def _guard(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except EMError as exc:
        return Check(name, "FAIL", str(exc), "the poller makes this request every poll")


def _session_query(client: EMClient, found: _Found) -> Check:
    sessions: list[Session] = []
    errors: list[str] = []
    for page in client.session_pages(time.time() - 30 * 86400):
        sessions.extend(page.items)
        errors.extend(page.errors)
    found.sessions = tuple(sorted(sessions, key=lambda s: s.start or 0.0, reverse=True))
    detail = f"{len(sessions)} failover session(s) in the last 30 days"
    if errors:
        return Check("session query", "WARN", f"{detail}; {len(errors)} unreadable: {errors[0]}")
    return Check("session query", "OK", detail)


def _empty_results(client: EMClient) -> Check:
    page = client.session_reference_page('CreationTime>="2999-01-01T00:00:00Z"', page_size=1)
    shape = "no PagingInfo" if page.pages_count is None else f"PagesCount={page.pages_count}"
    if page.items:
        return Check(
            "empty results",
            "WARN",
            f"a filter no session can match returned {len(page.items)} item(s)",
            "EM did not apply the CreationTime filter: each poll reads more than it needs",
        )
    return Check("empty results", "OK", f"an empty result says {shape} (accepted)")


def _session_count(client: EMClient) -> Check:
    count = client.session_count(time.time() - 30 * 86400)
    if count is None:
        return Check(
            "session count",
            "WARN",
            "a page of one reference does not say how many there are",
            "quiet polls cannot count: every poll reads the session pages (more requests)",
        )
    return Check("session count", "OK", f"counting works ({count} in the last 30 days)")


def _datetime_filter(client: EMClient, found: _Found) -> Check:
    """Ask for the newest session back by its own CreationTimeUTC: a server reading the value as UTC
    finds it at that second and not one second later; a server reading local time is off by hours."""
    known = next((s for s in found.sessions if s.start is not None), None)
    if known is None or known.start is None:
        return Check("datetime filter", "SKIP", "no session in the last 30 days to measure with")
    t = float(int(known.start))

    def finds(at: float) -> bool:
        page = client.session_reference_page(f"{creation_filter(at)};Name=={_quote(known.plan)}", 100)
        return known.id in page.items

    if finds(t) and not finds(t + 1):
        return Check("datetime filter", "OK", "DateTime values are read as UTC (the Z form)")
    # Which whole-hour shift makes the boundary fall right? Positive: the server is that far east.
    for hours in range(1, 15):
        for sign in (-1, 1):
            shift = sign * hours * 3600.0
            if finds(t + shift) and not finds(t + shift + 1):
                zone = f"UTC{'+' if sign > 0 else '-'}{hours}"
                return Check(
                    "datetime filter",
                    "WARN",
                    f"DateTime values are read as the server's local time ({zone}), not UTC",
                    "covered while poll.filter_time_slack_seconds (14 h) exceeds the offset",
                )
    return Check(
        "datetime filter",
        "WARN",
        "could not tell how EM reads DateTime filter values",
        "the exporter filters sessions on CreationTimeUTC itself; keep poll.filter_time_slack_seconds",
    )


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _replica_points(client: EMClient, found: _Found) -> Check:
    point_id = next((t.restore_point_id for s in found.sessions for t in s.tasks if t.restore_point_id), None)
    if point_id is None:
        return Check("replica points", "SKIP", "no failover session with a VM to look a point up by")
    for form in LOOKUP_FORMS:
        try:
            if form == "entity":
                ok = client.replica_point(point_id) is not None
            else:
                ok = bool(client.replica_points([point_id], form)[0])
        except EMError as exc:
            if exc.reason != "http_4xx":
                raise
            ok = False
        if ok:
            how = {"urn": "UID filters with the URN", "guid": "UID filters with the bare GUID"}
            text = how.get(form, "GET /cloud/vmReplicaPoints/{id} only (one request per point)")
            status: Status = "OK" if form != "entity" else "WARN"
            return Check("replica points", status, f"found by {text}")
    return Check(
        "replica points",
        "WARN",
        "a session's replica point could not be read in any form",
        "restore point times will come from the points' names (read as UTC)",
    )


def _data_age(found: _Found) -> Check:
    newest = next((s.start for s in found.sessions if s.start is not None), None)
    if newest is None:
        return Check("data age", "SKIP", "no failover session in the last 30 days")
    age = time.time() - newest
    when = datetime.fromtimestamp(newest, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if age < -CLOCK_SKEW_WARN_SECONDS:
        return Check(
            "data age",
            "WARN",
            f"the newest session starts in the future ({when})",
            "EM's clock, or this machine's, is off",
        )
    return Check("data age", "OK", f"newest failover session created {when} ({_ago(age)} ago)")


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _logout(client: EMClient) -> Check:
    if client.session.logout():
        return Check("logout", "OK", "logon session ended")
    return Check("logout", "WARN", "EM did not confirm the logout", "the session ends after 15 idle minutes")


def as_json(checks: list[Check]) -> list[dict[str, str]]:
    return [asdict(c) for c in checks]


def passed(checks: list[Check]) -> bool:
    return not any(c.status == "FAIL" for c in checks)
