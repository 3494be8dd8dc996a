"""Every selector, threshold, dashboard UID and link pattern of the monitoring shipped with the exporter.

The rules (monitoring/rules.py), the dashboards (monitoring/dashboards/), the mixin's `_config`, the
chart's `prometheusRule.config` defaults and its schema are all made from SETTINGS, as kubernetes-mixin's
config.libsonnet is read by its rules and dashboards: change a value here, run `python -m monitoring
generate`, and everything agrees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

# what a value is: how the chart's schema checks it
Kind = Literal["selector", "link_pattern", "seconds", "duration"]
SCHEMA: dict[Kind, dict[str, Any]] = {
    "selector": {"type": "string", "minLength": 1},
    "link_pattern": {"type": "string", "pattern": "%s$"},
    "seconds": {"type": "number", "minimum": 0},
    "duration": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h|d))+$"},
}


@dataclass(frozen=True)
class Setting:
    default: str | int
    kind: Kind
    help: str


# Keys are camelCase as jsonnet mixins name them. Values are only put into rule and query text, never
# computed with: the mixin and the chart put their own in their place.
SETTINGS: dict[str, Setting] = {
    "selector": Setting(
        'job="veeam-failover-exporter"',
        "selector",
        "every rule and dashboard query selects the exporter's series with this (its scrape job, as the "
        "Helm chart's ServiceMonitor and docs/monitoring.md name it)",
    ),
    "runbookURLPattern": Setting(
        "https://github.com/veeam-failover-exporter/veeam-failover-exporter/blob/main/docs/runbooks.md#%s",
        "link_pattern",
        "each alert's runbook_url: %s is the alert's name in lower case",
    ),
    "recentSeconds": Setting(
        24 * 3600,
        "seconds",
        "how long a finished failover's bad outcome keeps alerting (it stays the plan's latest result)",
    ),
    "maxDurationSeconds": Setting(3600, "seconds", "a failover running longer than this is too slow"),
    "stallWindow": Setting(
        "15m", "duration", "a running failover whose progress has not moved for this long has stalled"
    ),
    "rpoSeconds": Setting(
        3600,
        "seconds",
        "a VM failing over to a restore point older than this (relative to its failover start) misses "
        "the RPO",
    ),
    "emDownFor": Setting("5m", "duration", "EM unreadable for this long pages"),
    "staleSeconds": Setting(600, "seconds", "the exporter's last good read of EM older than this is stale"),
    "emDataAgeSeconds": Setting(
        1200,
        "seconds",
        "EM's own data of a backup server with a failover running, older than this (EM collects every 15 "
        "minutes by default: this is one collection missed)",
    ),
    "actionsWindow": Setting("15m", "duration", "start requests refused or failed within this window alert"),
    "killSwitchReminderAfter": Setting(
        "1h", "duration", "a kill switch left on this long is worth a reminder (an info alert)"
    ),
    "rpoAtRiskFor": Setting(
        "10m",
        "duration",
        "readiness: a plan VM's newest replica point older than its plan's RPO "
        "(veeam_failover_plan_rpo_seconds) this long alerts",
    ),
    "unprotectedFor": Setting(
        "1h",
        "duration",
        "a plan VM EM has no replica point of at all, for this long (a VM just added gets its first run)",
    ),
    "inDRAfterSeconds": Setting(
        12 * 3600,
        "seconds",
        "a VM left in Failover this long: the undo or the permanent failover forgotten (info)",
    ),
    "dataAgeWarningSeconds": Setting(
        120, "seconds", "dashboards: the data age turns orange past this (red past staleSeconds)"
    ),
    "dataLossCriticalSeconds": Setting(
        4 * 3600, "seconds", "dashboards: a data-loss window turns red past this (orange past rpoSeconds)"
    ),
}

Config = dict[str, Any]
CONFIG: Config = {key: s.default for key, s in SETTINGS.items()}

# The dashboards, by stable UID (their links point at each other through these).
DASHBOARD_UIDS = {
    "overview": "veeam-failover-overview",
    "session": "veeam-failover-session",
}
