"""The guarded start's metrics: requests by outcome, pending decisions and what became of them, the
switches as they hold now, the hourly limit, announcements, audit log health. Read from the engine's
counters and state in memory; nothing here talks to EM or the disk."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.actions.model import VERDICTS
from exporter.polling.snapshot import Store

if TYPE_CHECKING:  # the collector reads the engine's counters; it needs no more of it
    from exporter.actions.engine import Actions


class ActionsCollector(Collector):
    """Start requests by outcome, and when each plan was last started."""

    def __init__(self, actions: Actions, store: Store) -> None:
        self.actions = actions
        self.store = store

    def collect(self) -> Iterator[Metric]:
        counts, last_start = self.actions.stats()
        requests = CounterMetricFamily(
            "veeam_failover_start_requests",
            "Failover start requests by plan (empty if not a known plan), source and outcome.",
            labels=["plan", "source", "outcome"],
        )
        for (plan, source, outcome), n in sorted(counts.items()):
            requests.add_metric([plan, source, outcome], n)
        yield requests
        last = GaugeMetricFamily(
            "veeam_failover_last_start_timestamp_seconds",
            "When this exporter last asked EM to start the plan (kept across restarts by the audit log).",
            labels=["plan"],
        )
        names = {p.id: p.name for p in self.store.current().plans}
        for plan_id, ts in sorted(last_start.items()):
            if plan_id in names:
                last.add_metric([names[plan_id]], ts)
        yield last
        yield GaugeMetricFamily(
            "veeam_failover_starts_last_hour",
            "Plan starts this exporter sent to EM in the last hour, across all plans (ones on their way too)",
            value=self.actions.starts_last_hour(),
        )
        yield GaugeMetricFamily(
            "veeam_failover_start_limit_per_hour",
            "actions.max_starts_per_hour: past it every start is refused until the hour has passed.",
            value=self.actions.settings.max_starts_per_hour,
        )
        yield CounterMetricFamily(
            "veeam_failover_audit_write_errors",
            "Audit log records the disk refused (full, failing); while any is held, its plan cannot start.",
            value=self.actions.write_errors,
        )
        yield from self._approval()

    def _approval(self) -> Iterator[Metric]:
        a = self.actions
        waiting = a.pending_by_plan()
        pending = GaugeMetricFamily(
            "veeam_failover_decisions_pending",
            "Failover starts waiting for an approver (approval mode), by plan.",
            labels=["plan"],
        )
        for plan, n in sorted(waiting.items()):
            pending.add_metric([plan], n)
        yield pending
        verdicts = CounterMetricFamily(
            "veeam_failover_decisions",
            "Pending decisions made, and what became of them: " + ", ".join(VERDICTS) + ".",
            labels=["plan", "verdict"],
        )
        for (plan, verdict), n in sorted(a.verdict_stats().items()):
            verdicts.add_metric([plan, verdict], n)
        yield verdicts
        switches = a.switches()
        yield GaugeMetricFamily(
            "veeam_failover_kill_switch",
            "1 while the kill switch refuses every start (actions.kill_switch, or set at run time).",
            value=int(switches.kill_switch),
        )
        yield GaugeMetricFamily(
            "veeam_failover_dry_run",
            "1 while every start is a dry run (actions.dry_run, or set at run time).",
            value=int(switches.dry_run),
        )
        yield GaugeMetricFamily(
            "veeam_failover_approval_required",
            "1 if actions.approval is required (plans may say otherwise in actions.plans).",
            value=int(a.settings.approval == "required"),
        )
        sent = CounterMetricFamily(
            "veeam_failover_notifications",
            "Announcements to the notification webhooks, by webhook and result (sent, failed, dropped).",
            labels=["receiver", "result"],
        )
        for (receiver, result), n in sorted(a.notification_stats().items()):
            sent.add_metric([receiver, result], n)
        yield sent
