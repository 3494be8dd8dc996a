"""The checks that speak to EM: API versions, logon, plans, the poller's own queries with what this EM does
(empty results, counting, how it reads DateTime values, which replica point lookup it answers), data
age, logout."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from exporter.doctor.model import CLOCK_SKEW_WARN_SECONDS, Check, Found, Status
from exporter.em.timefmt import creation_filter

if TYPE_CHECKING:
    from exporter.em.client import EMClient
from exporter.em.errors import EMError
from exporter.em.model import LOOKUP_FORMS, Session


def api(client: EMClient) -> Check:
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


def logon(client: EMClient, username: str) -> Check:
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


def plans(client: EMClient, found: Found) -> Check:
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


def queries(client: EMClient, found: Found) -> Iterator[Check]:
    yield guard("session query", lambda: session_query(client, found))
    yield guard("empty results", lambda: empty_results(client))
    yield guard("session count", lambda: session_count(client))
    yield guard("datetime filter", lambda: datetime_filter(client, found))
    yield guard("replica points", lambda: replica_points(client, found))


def guard(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except EMError as exc:
        return Check(name, "FAIL", str(exc), "the poller makes this request every poll")


def session_query(client: EMClient, found: Found) -> Check:
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


def empty_results(client: EMClient) -> Check:
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


def session_count(client: EMClient) -> Check:
    count = client.session_count(time.time() - 30 * 86400)
    if count is None:
        return Check(
            "session count",
            "WARN",
            "a page of one reference does not say how many there are",
            "quiet polls cannot count: every poll reads the session pages (more requests)",
        )
    return Check("session count", "OK", f"counting works ({count} in the last 30 days)")


def datetime_filter(client: EMClient, found: Found) -> Check:
    """Ask for the newest session back by its own CreationTimeUTC: a server reading the value as UTC
    finds it at that second and not one second later; a server reading local time is off by hours."""
    known = next((s for s in found.sessions if s.start is not None), None)
    if known is None or known.start is None:
        return Check("datetime filter", "SKIP", "no session in the last 30 days to measure with")
    t = float(int(known.start))

    def finds(at: float) -> bool:
        page = client.session_reference_page(f"{creation_filter(at)};Name=={quote(known.plan)}", 100)
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


def quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def replica_points(client: EMClient, found: Found) -> Check:
    point_id = next((t.restore_point_id for s in found.sessions for t in s.tasks if t.restore_point_id), None)
    for s in found.sessions[:3] if point_id is None else ():
        # EM may leave finished sessions' VM tasks out of query answers: the entity may have them
        tasks = client.session_entity(s.id).tasks
        point_id = next((t.restore_point_id for t in tasks if t.restore_point_id), None)
        if point_id is not None:
            break
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


def data_age(found: Found) -> Check:
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
    return Check("data age", "OK", f"newest failover session created {when} ({ago(age)} ago)")


def ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def logout(client: EMClient) -> Check:
    if client.session.logout():
        return Check("logout", "OK", "logon session ended")
    return Check("logout", "WARN", "EM did not confirm the logout", "the session ends after 15 idle minutes")
