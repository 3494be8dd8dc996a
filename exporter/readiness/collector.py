"""Readiness families: every plan VM's newest replica point and its State, each plan's RPO and health.

Built from the snapshot only (plans from the poller, points from the readiness reader); the rows are
per plan VM, so they render with the failover families (in the helper process when large).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.em.errors import REASONS
from exporter.em.model import REPLICA_POINT_STATES, Plan, Session
from exporter.metrics.textformat import RowGauge
from exporter.polling.snapshot import Snapshot
from exporter.readiness.state import LatestPoint, Readiness, in_dr_since

_READ = " Read from EM's replica points by the readiness reader; served from its last snapshot."
_V = ["backup_server", "plan", "vm"]
_P = ["backup_server", "plan"]


def readiness_families(snap: Snapshot, plans: list[Plan]) -> Iterator[Metric]:
    r = snap.readiness
    yield from _reader_families(r)
    yield from _vm_families(plans, r, {(s.backup_server, s.plan): s for s in snap.sessions})
    yield from _plan_families(plans, r, snap.plan_vm_changes)


def _reader_families(r: Readiness) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "veeam_failover_readiness_complete",
        "1 once the first read of replica points has covered every plan VM (until then a VM without a "
        "point may only not be read yet).",
        value=1 if r.complete else 0,
    )
    yield GaugeMetricFamily(
        "veeam_failover_readiness_last_read_timestamp_seconds",
        "When the last read of replica points began (Unix time; 0 if never).",
        value=r.read_at or 0,
    )
    yield GaugeMetricFamily(
        "veeam_failover_readiness_last_successful_read_timestamp_seconds",
        "When the last read of replica points that fully succeeded began (Unix time; 0 if never).",
        value=r.read_ok_at or 0,
    )
    yield GaugeMetricFamily(
        "veeam_failover_readiness_read_requests",
        "HTTP requests to EM the last read of replica points made.",
        value=r.read_requests,
    )
    errors = CounterMetricFamily(
        "veeam_failover_readiness_read_errors",
        "Reads of replica points that failed or partly failed, by reason (each 0 from the start).",
        labels=["reason"],
    )
    for reason in sorted(set(REASONS) | set(r.read_errors)):
        errors.add_metric([reason], r.read_errors.get(reason, 0))
    yield errors


def _vm_families(
    plans: list[Plan], r: Readiness, sessions: dict[tuple[str, str], Session]
) -> Iterator[Metric]:
    rows: list[tuple[list[str], LatestPoint | None]] = []
    info = RowGauge(
        "veeam_failover_plan_vm_info",
        "A VM of a cloud failover plan (its CloudFailoverPlanInfo); always 1, from the plans alone.",
        _V,
    )
    has = RowGauge(
        "veeam_failover_plan_vm_has_restore_point",
        "1 if EM has a replica point of the plan VM, 0 if it has none at all (never replicated); absent "
        "while not known yet, and once its points went with a permanent failover." + _READ,
        _V,
    )
    removed = RowGauge(
        "veeam_failover_plan_vm_points_removed",
        "1 for a plan VM whose replica points EM removed after a permanent failover (snapshot replicas): "
        "it runs at the provider for good, it was not never replicated." + _READ,
        _V,
    )
    for p in plans:
        for vm in dict.fromkeys(p.vms):
            lv = [p.backup_server, p.name, vm]
            info.add_metric(lv, 1)
            point = r.latest.get((p.backup_server, vm))
            rows.append((lv, point))
            if (p.backup_server, vm) in r.removed:
                removed.add_metric(lv, 1)
            elif point is not None:
                has.add_metric(lv, 1)
            elif (p.backup_server, vm) in r.none:
                has.add_metric(lv, 0)
    yield info
    yield has
    yield removed
    latest = RowGauge(
        "veeam_failover_plan_vm_latest_restore_point_timestamp_seconds",
        "CreationTimeUTC of the plan VM's newest replica point: what a failover now would lose is "
        "everything since. EM shows points as of its last collection from the backup server." + _READ,
        _V,
    )
    for lv, point in rows:
        if point is not None:
            latest.add_metric(lv, point.created)
    yield latest
    state = RowGauge(
        "veeam_failover_plan_vm_restore_point_state",
        "State of the plan VM's newest replica point, one series per state (Failover: the VM runs in "
        "DR); undocumented values are kept." + _READ,
        [*_V, "state"],
    )
    for lv, point in rows:
        if point is not None:
            for s in REPLICA_POINT_STATES:
                state.add_metric([*lv, s], 1 if s == point.state else 0)
            if point.state not in REPLICA_POINT_STATES:
                state.add_metric([*lv, point.state], 1)
    yield state
    since = RowGauge(
        "veeam_failover_plan_vm_in_dr_since_timestamp_seconds",
        "For a plan VM whose newest point is in Failover: when its failover began (its task in the "
        "plan's latest failover session), or when this exporter first saw it in Failover." + _READ,
        _V,
    )
    for lv, point in rows:
        if point is not None and point.state == "Failover":
            since.add_metric(lv, in_dr_since(point, sessions.get((lv[0], lv[1])), lv[2]))
    yield since


def _plan_families(
    plans: list[Plan], r: Readiness, changes: Mapping[tuple[str, str], int]
) -> Iterator[Metric]:
    rpo = GaugeMetricFamily(
        "veeam_failover_plan_rpo_seconds",
        "The plan's recovery point objective (readiness.rpo_seconds, or the plan's own).",
        labels=_P,
    )
    without = GaugeMetricFamily(
        "veeam_failover_plan_vms_without_restore_point",
        "VMs of the plan EM has no replica point of." + _READ,
        labels=_P,
    )
    oldest = GaugeMetricFamily(
        "veeam_failover_plan_oldest_restore_point_timestamp_seconds",
        "The oldest of the plan VMs' newest replica points: the plan's worst data loss." + _READ,
        labels=_P,
    )
    in_dr = GaugeMetricFamily(
        "veeam_failover_plan_vms_in_failover",
        "VMs of the plan whose newest replica point is in Failover: running in DR now." + _READ,
        labels=_P,
    )
    changed = CounterMetricFamily(
        "veeam_failover_plan_vm_list_changes",
        "Reads of the plans that found this plan's VM list changed since the read before.",
        labels=_P,
    )
    for p in plans:
        lv = [p.backup_server, p.name]
        vms = dict.fromkeys(p.vms)
        points = [r.latest[(p.backup_server, vm)] for vm in vms if (p.backup_server, vm) in r.latest]
        if (p.backup_server, p.name) in r.rpo:
            rpo.add_metric(lv, r.rpo[(p.backup_server, p.name)])
        without.add_metric(lv, sum(1 for vm in vms if (p.backup_server, vm) in r.none))
        if points:
            oldest.add_metric(lv, min(pt.created for pt in points))
        in_dr.add_metric(lv, sum(1 for pt in points if pt.state == "Failover"))
        changed.add_metric(lv, changes.get((p.backup_server, p.name), 0))
    yield from (rpo, without, oldest, in_dr, changed)
