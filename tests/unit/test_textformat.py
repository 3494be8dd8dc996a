"""textformat.py writes exactly what prometheus_client writes, for any snapshot, in both formats."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.exposition import generate_latest as generate_text
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import CollectorRegistry

from exporter.em.model import SESSION_RESULTS, SESSION_STATES, Plan, Session, VmTask
from exporter.metrics import textformat
from exporter.metrics.collectors import FailoverCollector, HealthCollector
from exporter.polling.snapshot import Store

ODD = st.text(alphabet=st.sampled_from('ab"\\\n{}=, é\u2028\t'), max_size=6)
STATES = st.sampled_from([*SESSION_STATES, "Paused"]) | ODD
RESULTS = st.sampled_from([*SESSION_RESULTS, "Cancelled"]) | ODD
TIMES = st.none() | st.floats(min_value=-1e10, max_value=1e10, allow_nan=False) | st.sampled_from([0.0, -0.0])


@st.composite
def snapshots(draw: Any) -> Store:
    plans: list[Plan] = []
    sessions: list[Session] = []
    points: dict[str, float] = {}
    for i in range(draw(st.integers(0, 3))):
        name, server = draw(ODD), draw(ODD)
        vms = draw(st.lists(ODD, max_size=4))
        plans.append(Plan(id=f"p{i}", name=name, backup_server=server, tenant=draw(ODD), vms=tuple(vms)))
        if not draw(st.booleans()):
            continue
        tasks = []
        for vm in vms:
            point = draw(st.none() | st.sampled_from(["pt1", "pt2"]))
            tasks.append(
                VmTask(
                    vm=vm,
                    state=draw(STATES),
                    result=draw(RESULTS),
                    progress=draw(st.integers(-5, 150)),
                    start=draw(TIMES),
                    end=draw(TIMES),
                    restore_point_id=point,
                    restore_point_name=draw(st.sampled_from(["", "vm@2026-01-02 03:04:05", "vm@junk"])),
                )
            )
        sessions.append(
            Session(
                id=draw(ODD),
                plan=name,
                backup_server=server,
                state=draw(STATES),
                result=draw(RESULTS),
                progress=draw(st.integers(0, 100)),
                start=draw(TIMES),
                end=draw(TIMES),
                tasks=tuple(tasks),
            )
        )
    if draw(st.booleans()):
        points["pt1"] = draw(st.floats(allow_nan=False, allow_infinity=True))
    store = Store()
    store.publish(
        ready=True,
        up=draw(st.booleans()),
        plans=tuple(plans),
        sessions=tuple(sessions),
        restore_points=MappingProxyType(points),
        last_success=time.time(),
        poll_duration=draw(st.floats(min_value=0, max_value=1e6)),
        poll_errors={draw(ODD): draw(st.integers(0, 10))},
    )
    return store


def registry(store: Store) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(HealthCollector(store))
    reg.register(FailoverCollector(store))
    return reg


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshots())
def test_both_formats_are_byte_for_byte_prometheus_clients(store: Store) -> None:
    reg = registry(store)
    assert textformat.encode(reg, openmetrics=True) == generate_openmetrics(reg)  # type: ignore[no-untyped-call]
    assert textformat.encode(reg, openmetrics=False) == generate_text(reg)


class Odd:
    """Families the fast path leaves to prometheus_client, among ones it writes itself."""

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("plain_gauge", 'help with "quotes" \\ and\nnewline', value=-0.0)
        yield GaugeMetricFamily("with_unit_seconds", "unit", value=1, unit="seconds")
        c = CounterMetricFamily("with_created", "created", labels=["a"], created=12.5)
        c.add_metric(["x"], 3, created=12.5)
        yield c
        yield InfoMetricFamily("build", "info", value={"version": "1"})
        yield HistogramMetricFamily("latency", "h", buckets=[("1.0", 2), ("+Inf", 3)], sum_value=4.5)
        g = GaugeMetricFamily("stamped", "timestamped", labels=["a"])
        g.add_metric(["y"], 2, timestamp=1700000000.5)
        yield g
        yield CounterMetricFamily("plain_counter", "c", value=float("inf"))
        n = GaugeMetricFamily("nan_gauge", "n", labels=["b"])
        n.add_metric(["z"], float("nan"))
        n.add_metric(["w"], 1e21)
        yield n


def test_families_it_does_not_write_itself_come_out_as_prometheus_client_writes_them() -> None:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(Odd())
    om = textformat.encode(reg, openmetrics=True)
    assert om == generate_openmetrics(reg)  # type: ignore[no-untyped-call]
    assert om.count(b"# EOF\n") == 1 and om.endswith(b"# EOF\n")
    assert textformat.encode(reg, openmetrics=False) == generate_text(reg)


@pytest.mark.parametrize(
    ("accept", "fast"),
    [
        ("", True),
        ("text/plain", True),
        ("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5", True),
        ("application/openmetrics-text", True),
        ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8", True),
        ("application/openmetrics-text;version=1.0.0;escaping=dots", False),
        ("application/openmetrics-text;version=2.0.0", False),
        ("text/plain;version=1.0.0;escaping=dots", False),
    ],
)
def test_the_fast_writer_is_used_only_where_it_is_exact(accept: str, fast: bool) -> None:
    _, content_type = choose_encoder(accept)
    assert (textformat.encoder_for(content_type) is not None) == fast
