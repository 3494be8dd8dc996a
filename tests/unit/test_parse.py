"""The wire-format edge: EM XML in, typed objects out, and nothing hostile gets through."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.em import answers, parse, timefmt
from exporter.em.errors import ParseError
from tests.helpers import utc as ts

SEED = (Path(__file__).parent / "fixtures" / "seed_session.xml").read_bytes()
SEED_TASK = (Path(__file__).parent / "fixtures" / "seed_task_finished.xml").read_bytes()


def test_seed_session_reads_exactly() -> None:
    s = parse.parse_session(SEED)
    assert s.id == "a986d473-0248-4884-9832-17ec982ee393"
    assert s.plan == "ABC Company Failover Plan"
    assert s.backup_server == "srv13.tech.local"
    assert (s.state, s.result, s.progress, s.end) == ("Working", "None", 0, None)
    assert s.start == pytest.approx(ts("2020-05-06T20:29:45") + 0.077)
    assert [(t.vm, t.state, t.result, t.progress) for t in s.tasks] == [
        ("filesrv03", "Working", "None", 0),
        ("filesrv04", "Starting", "None", 0),
    ]
    assert s.tasks[0].restore_point_id == "c1beab6b-2b18-47f1-9e71-354ab8a49fc2"
    assert s.tasks[0].restore_point_name == "filesrv03@2020-02-13 05:00:46"
    assert s.tasks[1].start == pytest.approx(ts("2020-05-06T20:29:50") + 0.14)


def test_seed_task_links_the_session() -> None:
    t = parse.parse_task(SEED_TASK)
    assert (t.id, t.state, t.operation, t.success, t.message) == (
        "task-1",
        "Finished",
        "StartCloudFailoverPlan",
        True,
        "Ok",
    )
    assert t.related_session_id == "a986d473-0248-4884-9832-17ec982ee393"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2015-12-29T15:13:37.7418767Z", ts("2015-12-29T15:13:37") + 0.7418767),  # .NET's 7 digits
        ("2026-06-16T06:33:10.659559Z", ts("2026-06-16T06:33:10") + 0.659559),  # v13: microseconds
        ("2024-05-01T10:00:00", ts("2024-05-01T10:00:00")),  # no zone: the fields are UTC
        ("2024-05-01T12:00:00+02:00", ts("2024-05-01T10:00:00")),
        ("1753-01-01T00:00:00Z", None),  # EM's "never"
        ("", None),
    ],
)
def test_timestamps(text: str, expected: float | None) -> None:
    got = timefmt.parse_time(text)
    assert got == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01T00:00:00Z", "2024-05-01T25:00:00Z", "2024-05-01"])
def test_bad_timestamps_are_errors(text: str) -> None:
    with pytest.raises(ParseError, match="bad timestamp"):
        timefmt.parse_time(text)


def test_point_time_from_name() -> None:
    assert timefmt.point_time_from_name("filesrv03@2020-02-13 05:00:46") == ts("2020-02-13T05:00:46")
    assert timefmt.point_time_from_name("vm@with@at@2020-02-13 05:00:46") == ts("2020-02-13T05:00:46")
    assert timefmt.point_time_from_name("no date here") is None
    assert timefmt.point_time_from_name("vm@2020-02-30 05:00:46") is None


def test_unknown_enum_values_are_kept() -> None:
    body = SEED.replace(b"<State>Working</State>", b"<State>Pausing</State>", 1)
    assert parse.parse_session(body).state == "Pausing"


def test_progress_is_clamped_and_checked() -> None:
    assert (
        parse.parse_session(SEED.replace(b"<Progress>0</Progress>", b"<Progress>250</Progress>", 1)).progress
        == 100
    )
    with pytest.raises(ParseError, match="Progress is not a number"):
        parse.parse_session(SEED.replace(b"<Progress>0</Progress>", b"<Progress>lots</Progress>", 1))


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<CloudFailoverSession Name="x">&lol2;</CloudFailoverSession>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<CloudFailoverSession Name="&xxe;"><State>Working</State></CloudFailoverSession>"""


@pytest.mark.parametrize("body", [BOMB, XXE])
def test_hostile_xml_is_refused(body: bytes) -> None:
    with pytest.raises(ParseError, match="refused unsafe XML"):
        parse.parse_session(body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<CloudFailoverSession", "malformed XML"),
        (b"<html><body>proxy error</body></html>", "expected <CloudFailoverSession>, got <html>"),
        (
            b'<CloudFailoverSession xmlns="http://www.veeam.com/ent/v1.0" Name="p" UID="urn:x:1"/>',
            "missing <State>",
        ),
    ],
)
def test_malformed_answers_name_the_problem(body: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse.parse_session(body)


def test_one_bad_session_does_not_hide_the_others() -> None:
    good = SEED.replace(b' xmlns="http://www.veeam.com/ent/v1.0"', b"")
    bad = good.replace(b"<Progress>0</Progress>", b"<Progress>x</Progress>", 1).replace(
        b"a986d473", b"bbbbbbbb"
    )
    body = (
        b'<QueryResult xmlns="http://www.veeam.com/ent/v1.0"><Entities><CloudFailoverSessions>'
        + good
        + bad
        + b'</CloudFailoverSessions></Entities><PagingInfo PageNum="1" PageSize="100" PagesCount="1"/>'
        b"</QueryResult>"
    )
    page = parse.parse_session_query(body)
    assert [s.id for s in page.items] == ["a986d473-0248-4884-9832-17ec982ee393"]
    assert len(page.errors) == 1 and "Progress is not a number" in page.errors[0]


def test_error_messages_from_xml_and_json() -> None:
    xml = (
        b'<Error Message="Object reference not set." StatusCode="500" xmlns="http://www.veeam.com/ent/v1.0"/>'
    )
    assert answers.parse_error_message(xml) == "Object reference not set."
    js = b'{"FirstChanceExceptionMessage":null,"Message":"Node [root] does not exist.","StatusCode":400}'
    assert answers.parse_error_message(js, "application/json") == "Node [root] does not exist."
    assert answers.parse_error_message(b"<<<") == "unreadable error body"


def test_deeply_nested_and_oversized_documents_do_not_crash() -> None:
    deep = b"<CloudFailoverSession>" + b"<a>" * 200_000 + b"</a>" * 200_000 + b"</CloudFailoverSession>"
    with pytest.raises(ParseError):  # parsed without recursion limits; then refused for what it lacks
        parse.parse_session(deep)
    wide = b"<QueryResult><Entities><CloudFailoverSessions>" + b"<x/>" * 500_000 + b"</CloudFailoverSessions>"
    page = parse.parse_session_query(wide + b"</Entities></QueryResult>")  # unknown items are ignored
    assert page.items == () and page.errors == ()
