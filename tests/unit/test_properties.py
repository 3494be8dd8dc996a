"""Property-based tests and a short fuzz run (hypothesis, fixed budget): no input makes the parsers,
the webhook decoder, the request decoder, the filter language or the config loader fail other than
with their own clear error."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.actions import alertmanager
from exporter.actions.routes import _start_request
from exporter.config import ConfigError
from exporter.config.load import build_config
from exporter.em import answers, parse, timefmt
from exporter.em.errors import ParseError
from exporter.http.request_body import BadRequest
from exporter.simulator.query import FilterError, compile_filter

pytestmark = pytest.mark.fuzz  # out of the fast loop: scripts/test -m "not e2e and not fuzz"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PARSERS = [
    parse.parse_session,
    parse.parse_plans,
    parse.parse_session_query,
    parse.parse_replica_point_query,
    parse.parse_reference_query,
    parse.parse_task,
    answers.parse_logon_session,
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
NAMES = [
    "CloudFailoverSession",
    "CloudFailoverTasks",
    "State",
    "Result",
    "Progress",
    "CreationTimeUTC",
    "EndTimeUTC",
    "Links",
    "Link",
    "QueryResult",
    "Entities",
    "CloudFailoverSessions",
    "PagingInfo",
    "CloudFailoverPlans",
    "CloudFailoverPlan",
    "Task",
    "TaskId",
    "VmReplicaPointLink",
    "x",
]


@st.composite
def em_xml(draw: Any, depth: int = 0) -> str:
    """XML made of EM's element names, attributes and odd text: structurally valid, semantically anything."""
    name = draw(st.sampled_from(NAMES))
    attrs = draw(
        st.dictionaries(
            st.sampled_from(
                ["Name", "UID", "Href", "VmName", "Rel", "Type", "PageNum", "PagesCount", "Success"]
            ),
            st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12),
            max_size=3,
        )
    )
    text = draw(
        st.sampled_from(
            [
                "",
                "Working",
                "None",
                "100",
                "-5",
                "abc",
                "2024-02-30T00:00:00Z",
                "2024-05-01T10:00:00Z",
                "1e309",
                "\u202e",
            ]
        )
    )
    children = draw(st.lists(em_xml(depth + 1), max_size=3)) if depth < 4 else []
    a = "".join(
        f' {k}="{v.replace("&", "&amp;").replace("<", "&lt;").replace(chr(34), "&quot;")}"'
        for k, v in attrs.items()
    )
    return f"<{name}{a}>{text}{''.join(children)}</{name}>"


@FUZZ
@given(st.binary(max_size=2000))
def test_parsers_only_raise_parse_error_on_bytes(body: bytes) -> None:
    for parser in PARSERS:
        with contextlib.suppress(ParseError):
            parser(body)


@FUZZ
@given(em_xml())
def test_parsers_only_raise_parse_error_on_em_shaped_xml(doc: str) -> None:
    for parser in PARSERS:
        try:
            parser(doc.encode())
        except ParseError as exc:
            assert str(exc)  # a message to log


@FUZZ
@given(st.text(max_size=60))
def test_timestamps(text: str) -> None:
    with contextlib.suppress(ParseError):
        timefmt.parse_time(text)
    assert timefmt.point_time_from_name(text) is None or isinstance(timefmt.point_time_from_name(text), float)


@FUZZ
@given(json_values)
def test_webhook_decoder(data: Any) -> None:
    try:
        alerts = alertmanager.decode(json.dumps(data).encode())
    except alertmanager.PayloadError:
        return
    assert all(isinstance(a.fingerprint, str) and a.fingerprint for a in alerts)


@FUZZ
@given(
    st.fixed_dictionaries({"version": st.just("4")}, optional={"alerts": st.lists(json_values, max_size=3)})
)
def test_webhook_decoder_on_almost_valid_payloads(data: Any) -> None:
    with contextlib.suppress(alertmanager.PayloadError):
        alertmanager.decode(json.dumps(data).encode())


@FUZZ
@given(json_values, st.one_of(st.none(), st.text(max_size=210)))
def test_start_request_decoder(data: Any, key: str | None) -> None:
    try:
        req = _start_request("plan", json.dumps(data).encode(), key, "127.0.0.1")
    except BadRequest as exc:
        assert 400 <= exc.status < 500 and exc.reason
        return
    assert req.plan_ref == "plan" and (req.start_date is None) == (data.get("start_now") is True)


@FUZZ
@given(st.text(alphabet='UIDNamestaeResult=!<>;,()"0123456789 -:T', max_size=40))
def test_filter_language(text: str) -> None:
    try:
        pred = compile_filter(text)
    except FilterError:
        return
    with contextlib.suppress(FilterError):
        pred(
            {
                "uid": "x",
                "name": "n",
                "state": "Working",
                "result": "None",
                "creationtime": 1.0,
                "endtime": None,
            }
        )


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["em", "poll", "actions", "listen_address", "log_level", "x"]),
        json_values,
        max_size=5,
    )
)
def test_config_loader(data: dict[str, Any]) -> None:
    try:
        build_config(data, {}, env={"VEEAM_EM_PASSWORD": "pw"})
    except ConfigError as exc:
        assert str(exc)
