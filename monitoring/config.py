"""Every selector, threshold, dashboard UID and link pattern of the monitoring shipped with the exporter.

Both generators read here (alerts/generate_rules.py, dashboards/generate_dashboards.py), as
kubernetes-mixin's config.libsonnet is read by its rules and dashboards: change a value here, run the
generators, and the rules, their promtool tests' expectations and the dashboards' colours agree.
"""

from __future__ import annotations

from typing import Any

EXPORTER_JOB = "veeam-failover-exporter"  # the scrape job of the exporter, for its own `up`
RUNBOOK_URL = (
    "https://github.com/veeam-failover-exporter/veeam-failover-exporter/blob/main/docs/runbooks.md#{anchor}"
)

THRESHOLDS: dict[str, Any] = {
    # how long a finished failover's bad outcome keeps alerting (it stays the plan's latest result)
    "recent_seconds": 24 * 3600,
    # a failover running longer than this is too slow
    "max_duration_seconds": 3600,
    # a running failover whose progress has not moved for this long has stalled
    "stall_window": "15m",
    # a VM failing over to a restore point older than this (relative to its failover start) misses the RPO
    "rpo_seconds": 3600,
    # EM unreadable for this long pages
    "em_down_for": "5m",
    # the exporter's last good read of EM older than this is stale
    "stale_seconds": 600,
    # EM's own data of a backup server with a failover running, older than this (EM collects every 15
    # minutes by default: this is one collection missed)
    "em_data_age_seconds": 1200,
    # start requests refused or failed within this window alert
    "actions_window": "15m",
    # a kill switch left on this long is worth a reminder (an info alert)
    "kill_switch_reminder_after": "1h",
    # readiness: a plan VM's newest replica point older than its plan's RPO (veeam_failover_plan_rpo_seconds)
    # this long alerts (the exporter asks EM for that VM by name first, in case it missed a point)
    "rpo_at_risk_for": "10m",
    # a plan VM EM has no replica point of at all, for this long (a VM just added gets its first run)
    "unprotected_for": "1h",
    # a VM left in Failover this long: the undo or the permanent failover forgotten (info)
    "in_dr_after_seconds": 12 * 3600,
    # dashboards: the data age turns orange past this (red past stale_seconds)
    "data_age_warning_seconds": 120,
    # dashboards: a data-loss window turns red past this (orange past rpo_seconds)
    "data_loss_critical_seconds": 4 * 3600,
}

# The dashboards, by stable UID (their links point at each other through these).
DASHBOARD_UIDS = {
    "overview": "veeam-failover-overview",
    "session": "veeam-failover-session",
}
