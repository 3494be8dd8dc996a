"""Snapshot -> Prometheus metric families. Fresh families on every collect; nothing here talks to EM.

A collector a concern (as node_exporter does): how our polling of EM goes, what EM says about cloud
failover; the start requests this exporter decided have theirs in actions.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.em.errors import REASONS
from exporter.em.model import (
    FAILURE_MESSAGE_CHARS,
    SESSION_RESULTS,
    SESSION_STATES,
    Plan,
    Session,
    VmTask,
    failure_text,
    plan_name_conflicts,
)
from exporter.em.timefmt import point_time_from_name
from exporter.metrics.textformat import RowGauge
from exporter.polling.snapshot import Snapshot, Store, as_shown
from exporter.readiness.collector import readiness_families

_CACHED = " Read from EM by the background poller; served from its last snapshot."


class HealthCollector(Collector):
    """How talking to EM goes: up, poll timing, requests by endpoint and code, logons."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        snap = self.store.current()
        build = GaugeMetricFamily(
            "veeam_failover_exporter_build_info", "Exporter version; always 1.", labels=["version"]
        )
        build.add_metric([__version__], 1)
        yield build
        yield GaugeMetricFamily(
            "veeam_em_up",
            "1 if the last poll of Enterprise Manager fully succeeded, else 0.",
            value=1 if snap.up else 0,
        )
        yield GaugeMetricFamily(
            "veeam_em_last_successful_poll_timestamp_seconds",
            "When the last fully successful poll of EM started (Unix time; 0 if never).",
            value=snap.last_success or 0,
        )
        yield GaugeMetricFamily(
            "veeam_em_poll_duration_seconds", "Wall time of the last poll of EM.", value=snap.poll_duration
        )
        yield GaugeMetricFamily(
            "veeam_em_poll_requests", "HTTP requests to EM made by the last poll.", value=snap.poll_requests
        )
        errors = CounterMetricFamily(
            "veeam_em_poll_errors", "Polls that failed or partly failed, by reason.", labels=["reason"]
        )
        # every reason from the start, at 0, so rate() works at once
        for reason in sorted(set(REASONS) | set(snap.poll_errors)):
            errors.add_metric([reason], snap.poll_errors.get(reason, 0))
        yield errors
        em = snap.em
        requests = CounterMetricFamily(
            "veeam_em_requests",
            "HTTP requests to EM by route template and status code.",
            labels=["endpoint", "code"],
        )
        for (endpoint, code), n in sorted(em.requests.items()):
            requests.add_metric([endpoint, code], n)
        yield requests
        failures = CounterMetricFamily(
            "veeam_em_request_errors",
            "Requests to EM that got no usable HTTP answer (time-out, connect, TLS, size).",
            labels=["endpoint", "reason"],
        )
        for (endpoint, reason), n in sorted(em.errors.items()):
            failures.add_metric([endpoint, reason], n)
        yield failures
        yield CounterMetricFamily("veeam_em_logons", "Logons to EM (POST /api/sessionMngr).", value=em.logons)
        yield CounterMetricFamily(
            "veeam_em_received_bytes", "Bytes of EM answer bodies received.", value=em.bytes_received
        )


class FailoverCollector(Collector):
    """Plans, each plan's latest failover session, and every VM in it.

    While EM cannot be read the last known data stays (its age is the last successful poll's); only
    past `stale_after` seconds of that (0: never) is it left out (snapshot.as_shown, as /status does).
    """

    def __init__(
        self, store: Store, stale_after: float = float("inf"), clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.stale_after = stale_after
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        yield from failover_families(self.current())

    def current(self) -> Snapshot:
        return as_shown(self.store.current(), self.stale_after, self.clock())


def failover_families(snap: Snapshot) -> Iterator[Metric]:
    plans = _unique_plans(snap.plans)
    yield from _plan_families(plans)
    yield _conflict_family(snap.plans)
    yield from _session_families(snap)
    yield from readiness_families(snap, plans)


def _unique_plans(plans: Iterable[Plan]) -> list[Plan]:
    # Sessions name their plan only by name, so series are per (backup server, plan name): where two
    # plans share one, the first EM lists is shown and veeam_failover_plan_name_conflicts says so.
    seen: dict[tuple[str, str], Plan] = {}
    for p in plans:
        seen.setdefault((p.backup_server, p.name), p)
    return list(seen.values())


def _conflict_family(plans: tuple[Plan, ...]) -> Metric:
    family = RowGauge(
        "veeam_failover_plan_name_conflicts",
        "Plan names on this backup server that more than one plan has (different tenants). Sessions "
        "of such plans cannot be told apart: series show the first plan EM lists; start them by ID."
        + _CACHED,
        labels=["backup_server"],
    )
    conflicts = plan_name_conflicts(plans)
    for server in sorted({p.backup_server for p in plans}):
        family.add_metric([server], len(conflicts.get(server, {})))
    return family


def _plan_families(plans: list[Plan]) -> Iterator[Metric]:
    info = RowGauge(
        "veeam_failover_plan_info",
        "Cloud failover plans known to EM; always 1." + _CACHED,
        labels=["backup_server", "plan", "plan_id", "tenant"],
    )
    vms = RowGauge(
        "veeam_failover_plan_vms",
        "VMs in the cloud failover plan (CloudFailoverPlanInfo)." + _CACHED,
        labels=["backup_server", "plan"],
    )
    for p in plans:
        info.add_metric([p.backup_server, p.name, p.id, p.tenant], 1)
        vms.add_metric([p.backup_server, p.name], len(p.vms))
    yield info
    yield vms


def _one_hot(family: GaugeMetricFamily, labels: list[str], value: str, documented: tuple[str, ...]) -> None:
    # One series per documented value, 1 for the current one; an undocumented value from EM is kept.
    for v in documented:
        family.add_metric([*labels, v], 1 if v == value else 0)
    if value not in documented:
        family.add_metric([*labels, value], 1)


# The five families a session and a VM task both have: state, result, progress, start, end. Each is
# built in its own pass over the items and handed on before the next is built: at 10,000 VMs the rows of
# all five at once would be ~30 MB more at the peak of a rendering.
_LIFECYCLE = (
    ("state", "State, one series per state", ("state",)),
    ("result", "Result, one series per result", ("result",)),
    ("progress_ratio", "Progress, 0-1", ()),
    ("start_timestamp_seconds", "CreationTimeUTC", ()),
    ("end_timestamp_seconds", "EndTimeUTC, present once it ended", ()),
)


def _lifecycle_families(
    prefix: str, what: str, labels: list[str], doc: str, items: list[tuple[list[str], Session | VmTask]]
) -> Iterator[Metric]:
    for suffix, text, extra in _LIFECYCLE:
        family = RowGauge(f"{prefix}_{suffix}", f"{what} {text}{doc}", labels=[*labels, *extra])
        for lv, item in items:
            if suffix == "state":
                _one_hot(family, lv, item.state, SESSION_STATES)
            elif suffix == "result":
                _one_hot(family, lv, item.result, SESSION_RESULTS)
            elif suffix == "progress_ratio":
                family.add_metric(lv, item.progress / 100)
            elif suffix == "start_timestamp_seconds":
                if item.start is not None:
                    family.add_metric(lv, item.start)
            elif item.end is not None:
                family.add_metric(lv, item.end)
        yield family
        del family  # handed on: not kept while the next is built


def _session_families(snap: Snapshot) -> Iterator[Metric]:
    s_labels = ["backup_server", "plan"]
    vm_labels = [*s_labels, "vm"]
    info = RowGauge(
        "veeam_failover_session_info",
        "The plan's latest failover session; always 1." + _CACHED,
        labels=[*s_labels, "session_id"],
    )
    sessions: list[tuple[list[str], Session | VmTask]] = []
    tasks: list[tuple[list[str], Session | VmTask]] = []
    for s in snap.sessions:
        lv = [s.backup_server, s.plan]
        info.add_metric([*lv, s.id], 1)
        sessions.append((lv, s))
        tasks.extend(([*lv, t.vm], t) for t in _unique_tasks(s))
    yield info
    del info
    sdoc = " (latest failover session of the plan)." + _CACHED
    yield from _lifecycle_families("veeam_failover_session", "Session", s_labels, sdoc, sessions)
    vdoc = " (per VM task of the plan's latest failover session)." + _CACHED
    yield from _lifecycle_families("veeam_failover_vm", "VM task", vm_labels, vdoc, tasks)
    vm_point = RowGauge(
        "veeam_failover_vm_restore_point_timestamp_seconds",
        "Creation time of the replica point the VM fails over to: the start of the data-loss window. "
        "From the point's CreationTimeUTC, or from the time in its name (read as UTC) until the point "
        "is read or if it cannot be" + vdoc,
        labels=vm_labels,
    )
    for tv, t in tasks:
        assert isinstance(t, VmTask)
        point = snap.restore_points.get(t.restore_point_id or "")
        if point is None:
            point = point_time_from_name(t.restore_point_name)
        if point is not None:
            vm_point.add_metric(tv, point)
    yield vm_point
    yield from _failure_families(sessions, tasks, s_labels, vm_labels)


def _failure_families(
    sessions: list[tuple[list[str], Session | VmTask]],
    tasks: list[tuple[list[str], Session | VmTask]],
    s_labels: list[str],
    vm_labels: list[str],
) -> Iterator[Metric]:
    for name, what, labels, items in (
        ("veeam_failover_session_failure_info", "the session", s_labels, sessions),
        ("veeam_failover_vm_failure_info", "the VM's failover", vm_labels, tasks),
    ):
        family = RowGauge(
            name,
            f"Why {what} failed, as EM's FailureMessage says (at most {FAILURE_MESSAGE_CHARS} "
            "characters); present only while EM gives one; always 1." + _CACHED,
            labels=[*labels, "message"],
        )
        for lv, item in items:
            if item.failure_message:
                family.add_metric([*lv, failure_text(item.failure_message)], 1)
        yield family


def _unique_tasks(s: Session) -> list[VmTask]:
    # EM lists a VM once per session; should it ever repeat one, the later entry wins (duplicate
    # series would make the whole exposition invalid).
    return list({t.vm: t for t in s.tasks}.values())
