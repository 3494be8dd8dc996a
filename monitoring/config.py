"""Every selector, threshold, dashboard UID and link pattern of the monitoring shipped with the exporter.

Both generators read here (alerts/generate_rules.py, dashboards/generate_dashboards.py), as
kubernetes-mixin's config.libsonnet is read by its rules and dashboards: change a value here, run the
generators, and the rules, their promtool tests' expectations and the dashboards' colours agree.
"""

from __future__ import annotations

from typing import Any

# The mixin's _config (mixin/config.libsonnet is generated from this): the exporter's selector, every
# threshold, and the runbook links. Keys are camelCase as jsonnet mixins name them. Values are only put
# into rule text, never computed with: the mixin puts its own in their place.
Config = dict[str, Any]
CONFIG: Config = {
    # every expression selects the exporter's series with this (its scrape job, as the Helm chart's
    # ServiceMonitor and examples/prometheus.yml name it)
    "selector": 'job="veeam-failover-exporter"',
    "runbookURLPattern": (
        "https://github.com/veeam-failover-exporter/veeam-failover-exporter/blob/main/docs/runbooks.md#%s"
    ),
    # how long a finished failover's bad outcome keeps alerting (it stays the plan's latest result)
    "recentSeconds": 24 * 3600,
    # a failover running longer than this is too slow
    "maxDurationSeconds": 3600,
    # a running failover whose progress has not moved for this long has stalled
    "stallWindow": "15m",
    # a VM failing over to a restore point older than this (relative to its failover start) misses the RPO
    "rpoSeconds": 3600,
    # EM unreadable for this long pages
    "emDownFor": "5m",
    # the exporter's last good read of EM older than this is stale
    "staleSeconds": 600,
    # EM's own data of a backup server with a failover running, older than this (EM collects every 15
    # minutes by default: this is one collection missed)
    "emDataAgeSeconds": 1200,
    # start requests refused or failed within this window alert
    "actionsWindow": "15m",
    # a kill switch left on this long is worth a reminder (an info alert)
    "killSwitchReminderAfter": "1h",
    # readiness: a plan VM's newest replica point older than its plan's RPO (veeam_failover_plan_rpo_seconds)
    # this long alerts (the exporter asks EM for that VM by name first, in case it missed a point)
    "rpoAtRiskFor": "10m",
    # a plan VM EM has no replica point of at all, for this long (a VM just added gets its first run)
    "unprotectedFor": "1h",
    # a VM left in Failover this long: the undo or the permanent failover forgotten (info)
    "inDRAfterSeconds": 12 * 3600,
    # dashboards: the data age turns orange past this (red past staleSeconds)
    "dataAgeWarningSeconds": 120,
    # dashboards: a data-loss window turns red past this (orange past rpoSeconds)
    "dataLossCriticalSeconds": 4 * 3600,
}

# The dashboards, by stable UID (their links point at each other through these).
DASHBOARD_UIDS = {
    "overview": "veeam-failover-overview",
    "session": "veeam-failover-session",
}
