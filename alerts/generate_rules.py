"""Generates alerts/veeam-failover.rules.yml: the alert and recording rules, thresholds in one place.

    python alerts/generate_rules.py            # rewrite the rules file
    python alerts/generate_rules.py --check    # exit 1 if the committed file is not what this generates

Follows the monitoring-mixin conventions: CamelCase names with a shared prefix, severity
critical/warning/info, a static `summary`, a templated `description`, a `runbook_url` into
docs/runbooks.md. Prometheus 2.42 syntax (no group labels, no query_offset).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

# every selector and threshold lives in monitoring/config.py, shared with the dashboards
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from monitoring.config import CONFIG, Config

OUT = Path(__file__).parent / "veeam-failover.rules.yml"
P = "job, instance, backup_server, plan"  # what identifies a plan's series: its exporter, server, name
V = f"{P}, vm"
# the plan-level alerts carry the plan's tenant, from veeam_failover_plan_info, so Alertmanager can
# route per tenant; those of start requests name a plan only by name (it may be on several servers)
TENANT = "tenant"


def alert(
    cfg: Config, name: str, expr: str, severity: str, summary: str, description: str, for_: str = "0m"
) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_ != "0m":
        rule["for"] = for_
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": cfg["runbookURLPattern"] % name.lower(),
    }
    return rule


def record(name: str, expr: str) -> dict[str, Any]:
    return {"record": name, "expr": expr}


def rule_groups(cfg: Config = CONFIG) -> dict[str, Any]:
    """Every rule, from `cfg`: the selector and every threshold (monitoring/config.py; the mixin's
    _config). Values are only ever put into text, never computed with, so the mixin can put its own."""
    return {"groups": recording_groups(cfg) + alert_groups(cfg)}


def recording_groups(cfg: Config = CONFIG) -> list[dict[str, Any]]:
    """The recording rules (the mixin's prometheusRules)."""
    return [{"name": "veeam-failover.records", "rules": records(cfg) + readiness_records(cfg)}]


def alert_groups(cfg: Config = CONFIG) -> list[dict[str, Any]]:
    """The alerts (the mixin's prometheusAlerts)."""
    return [
        {"name": "veeam-failover-readiness", "rules": readiness_alerts(cfg)},
        {"name": "veeam-failover", "rules": failover_rules(cfg)},
        {"name": "veeam-failover-exporter", "rules": health_rules(cfg)},
        {"name": "veeam-failover-actions", "rules": action_rules(cfg)},
    ]


def metric(cfg: Config, name: str, matchers: str = "") -> str:
    """A metric with the exporter's selector (and more matchers)."""
    return f"{name}{{{cfg['selector']}{', ' + matchers if matchers else ''}}}"


def with_tenant(cfg: Config, expr: str) -> str:
    """The alert's series with the plan's tenant label (the info metric is 1: values are kept)."""
    return f"({expr})\n* on ({P}) group_left ({TENANT}) {metric(cfg, 'veeam_failover_plan_info')}"


def records(cfg: Config) -> list[dict[str, Any]]:
    def m(name: str, matchers: str = "") -> str:
        return metric(cfg, name, matchers)

    start, end = (
        m("veeam_failover_session_start_timestamp_seconds"),
        m("veeam_failover_session_end_timestamp_seconds"),
    )
    return [
        # 1 while the plan's latest session runs (any state but Stopped, undocumented ones included)
        record(
            "plan:veeam_failover_session_active:max",
            "max without (state) (" + m("veeam_failover_session_state", 'state!="Stopped"') + ")",
        ),
        record(
            "job:veeam_failover_sessions_active:sum",
            "sum by (job) (" + m("plan:veeam_failover_session_active:max") + ")",
        ),
        # how long the session has run, or ran
        record(
            "plan:veeam_failover_session_duration_seconds:elapsed", f"{end} - {start}\nor time() - {start}"
        ),
        # finished sessions only: lets dashboards compare with history by max_over_time, no subquery
        record("plan:veeam_failover_session_finished_duration_seconds:elapsed", f"{end} - {start}"),
        # the data a VM loses: from its restore point to the start of its failover
        record(
            "vm:veeam_failover_data_loss_seconds:elapsed",
            f"{m('veeam_failover_vm_start_timestamp_seconds')} - {m('veeam_failover_vm_restore_point_timestamp_seconds')}",
        ),
        record("plan:veeam_failover_vms_by_state:sum", f"sum without (vm) ({m('veeam_failover_vm_state')})"),
    ]


def readiness_records(cfg: Config) -> list[dict[str, Any]]:
    def m(name: str, matchers: str = "") -> str:
        return metric(cfg, name, matchers)

    return [
        # what a failover now would lose, per VM and per plan (its worst VM)
        record(
            "vm:veeam_failover_restore_point_age_seconds:elapsed",
            f"time() - {m('veeam_failover_plan_vm_latest_restore_point_timestamp_seconds')}",
        ),
        record(
            "plan:veeam_failover_restore_point_age_seconds:max",
            f"time() - {m('veeam_failover_plan_oldest_restore_point_timestamp_seconds')}",
        ),
    ]


def readiness_alerts(cfg: Config) -> list[dict[str, Any]]:
    def m(name: str, matchers: str = "") -> str:
        return metric(cfg, name, matchers)

    dr = m("veeam_failover_plan_vm_restore_point_state", 'state=~"Failover|Failback|PermanentFailover"')
    return [
        alert(
            cfg,
            "VeeamFailoverRPOAtRisk",
            with_tenant(
                cfg,
                f"{m('vm:veeam_failover_restore_point_age_seconds:elapsed')}\n"
                f"> on ({P}) group_left () {m('veeam_failover_plan_rpo_seconds')}\n"
                f"unless on ({V}) ({dr} == 1)",
            ),
            "warning",
            "A plan VM's newest replica point is older than the plan's RPO.",
            "VM {{ $labels.vm }} of plan {{ $labels.plan }} on {{ $labels.backup_server }} was last replicated "
            "{{ $value | humanizeDuration }} ago, more than the plan's RPO: a failover now would lose that "
            "much data.",
            for_=cfg["rpoAtRiskFor"],
        ),
        alert(
            cfg,
            "VeeamFailoverPlanVMUnprotected",
            with_tenant(cfg, f"{m('veeam_failover_plan_vm_has_restore_point')} == 0"),
            "warning",
            "A plan VM has no replica point at all.",
            "VM {{ $labels.vm }} of plan {{ $labels.plan }} on {{ $labels.backup_server }} has never been "
            "replicated: a failover of the plan cannot bring it up.",
            for_=cfg["unprotectedFor"],
        ),
        alert(
            cfg,
            "VeeamFailoverVMInDR",
            with_tenant(
                cfg,
                f"time() - {m('veeam_failover_plan_vm_in_dr_since_timestamp_seconds')} > {cfg['inDRAfterSeconds']}",
            ),
            "info",
            "A VM has run from its replica in DR for a long time.",
            "VM {{ $labels.vm }} of plan {{ $labels.plan }} on {{ $labels.backup_server }} has been in Failover "
            "for {{ $value | humanizeDuration }}: if the site is back, undo the failover or make it permanent; "
            "it is not replicated meanwhile.",
        ),
    ]


def failover_rules(cfg: Config) -> list[dict[str, Any]]:
    def m(name: str, matchers: str = "") -> str:
        return metric(cfg, name, matchers)

    recent = cfg["recentSeconds"]
    active = f"{m('plan:veeam_failover_session_active:max')} == 1"
    return [
        alert(
            cfg,
            "VeeamFailoverFailed",
            with_tenant(
                cfg,
                m("veeam_failover_session_result", 'result="Failed"') + " == 1\n"
                f"and on ({P}) (time() - {m('veeam_failover_session_end_timestamp_seconds')} < {recent})",
            ),
            "critical",
            "A cloud failover finished with result Failed.",
            "The failover of plan {{ $labels.plan }} on {{ $labels.backup_server }} ended Failed: "
            "some or all of its VMs are not running at the provider.",
        ),
        alert(
            cfg,
            "VeeamFailoverVMFailed",
            with_tenant(
                cfg,
                m("veeam_failover_vm_result", 'result="Failed"') + " == 1\n"
                f"and on ({V}) (time() - {m('veeam_failover_vm_end_timestamp_seconds')} < {recent})",
            ),
            "critical",
            "A VM failed to fail over.",
            "VM {{ $labels.vm }} of plan {{ $labels.plan }} on {{ $labels.backup_server }} failed to fail over.",
        ),
        alert(
            cfg,
            "VeeamFailoverFinishedWithWarnings",
            with_tenant(
                cfg,
                m("veeam_failover_session_result", 'result="Warning"') + " == 1\n"
                f"and on ({P}) (time() - {m('veeam_failover_session_end_timestamp_seconds')} < {recent})",
            ),
            "warning",
            "A cloud failover finished with warnings.",
            "The failover of plan {{ $labels.plan }} on {{ $labels.backup_server }} ended with result Warning; "
            "check which VMs warned.",
        ),
        alert(
            cfg,
            "VeeamFailoverStalled",
            with_tenant(
                cfg,
                f"{active}\n"
                f"and on ({P}) changes({m('veeam_failover_session_progress_ratio')}[{cfg['stallWindow']}]) == 0\n"
                # the same session already ran a whole window ago
                f"and on ({P}) ({m('veeam_failover_session_start_timestamp_seconds')}\n"
                f"  == {m('veeam_failover_session_start_timestamp_seconds')} offset {cfg['stallWindow']})",
            ),
            "critical",
            "A running cloud failover has made no progress.",
            "The failover of plan {{ $labels.plan }} on {{ $labels.backup_server }} has been at the same "
            f"progress for {cfg['stallWindow']} while still running.",
            for_="5m",
        ),
        alert(
            cfg,
            "VeeamFailoverTooSlow",
            with_tenant(
                cfg,
                f"{active}\n"
                f"and on ({P}) time() - {m('veeam_failover_session_start_timestamp_seconds')} > {cfg['maxDurationSeconds']}",
            ),
            "warning",
            "A cloud failover is taking longer than expected.",
            "The failover of plan {{ $labels.plan }} on {{ $labels.backup_server }} has run for more than "
            f"{{{{ {cfg['maxDurationSeconds']} | humanizeDuration }}}}.",
        ),
        alert(
            cfg,
            "VeeamFailoverRestorePointTooOld",
            with_tenant(
                cfg,
                f"{m('vm:veeam_failover_data_loss_seconds:elapsed')} > {cfg['rpoSeconds']}\n"
                f"and on ({V}) time() - {m('veeam_failover_vm_start_timestamp_seconds')} < {recent}",
            ),
            "warning",
            "A VM failed over to a restore point older than the RPO.",
            "VM {{ $labels.vm }} of plan {{ $labels.plan }} fails over to a restore point "
            "{{ $value | humanizeDuration }} older than its failover start "
            f"(RPO {{{{ {cfg['rpoSeconds']} | humanizeDuration }}}}): that much data is lost.",
        ),
    ]


def health_rules(cfg: Config) -> list[dict[str, Any]]:
    def m(name: str, matchers: str = "") -> str:
        return metric(cfg, name, matchers)

    return [
        alert(
            cfg,
            "VeeamEMUnreachable",
            f"{m('veeam_em_up')} == 0",
            "critical",
            "Veeam Enterprise Manager cannot be read.",
            "The exporter {{ $labels.instance }} has not read Enterprise Manager successfully for "
            f"{cfg['emDownFor']}; failover state shown is old. See veeam_em_poll_errors_total for the reason.",
            for_=cfg["emDownFor"],
        ),
        alert(
            cfg,
            "VeeamFailoverExporterDown",
            f"{m('up')} == 0",
            "critical",
            "The Veeam failover exporter cannot be scraped.",
            "Prometheus cannot scrape {{ $labels.instance }}: failover progress is invisible.",
            for_="5m",
        ),
        alert(
            cfg,
            "VeeamFailoverExporterAbsent",
            f"absent({m('up')})",
            "critical",
            "Prometheus has no Veeam failover exporter target.",
            "No target of {{ $labels.job }} is being scraped at all (its ServiceMonitor or scrape config is "
            "gone or selects nothing): failover progress is invisible and no other failover alert can fire.",
            for_="15m",
        ),
        alert(
            cfg,
            "VeeamFailoverExporterDataStale",
            f"time() - {m('veeam_em_last_successful_poll_timestamp_seconds')} > {cfg['staleSeconds']}",
            "critical",
            "The Veeam failover exporter's data is stale.",
            "The exporter {{ $labels.instance }} last read Enterprise Manager "
            "{{ $value | humanizeDuration }} ago.",
            for_="2m",
        ),
        alert(
            cfg,
            "VeeamFailoverEMDataOld",
            f"time() - {m('veeam_em_data_as_of_timestamp_seconds')} > {cfg['emDataAgeSeconds']}\n"
            "and on (job, instance, backup_server) (count by (job, instance, backup_server) "
            f"({m('plan:veeam_failover_session_active:max')} == 1) > 0)",
            "warning",
            "Enterprise Manager's data of a backup server with a running failover is old.",
            "A failover runs on {{ $labels.backup_server }}, but the newest data Enterprise Manager has of it "
            "is {{ $value | humanizeDuration }} old: what the dashboards show of it is that far behind.",
            for_="5m",
        ),
    ]


def action_rules(cfg: Config) -> list[dict[str, Any]]:
    def m(name: str, matchers: str = "") -> str:
        return metric(cfg, name, matchers)

    window = cfg["actionsWindow"]

    def new_or_increased(matchers: str) -> str:
        # a series seen for the first time (its first request) has no increase(): catch it with `unless`
        s = m("veeam_failover_start_requests_total", matchers)
        return f"increase({s}[{window}]) > 0\nor ({s} unless {s} offset {window})"

    return [
        alert(
            cfg,
            "VeeamFailoverStartRefused",
            new_or_increased('outcome=~"forbidden|conflict|invalid|unauthorized"'),
            "warning",
            "A failover start request was refused.",
            "A start request for plan '{{ $labels.plan }}' from {{ $labels.source }} was refused "
            f"({{{{ $labels.outcome }}}}) in the last {window}. See GET /api/v1/actions or the audit log.",
        ),
        alert(
            cfg,
            "VeeamFailoverStartFailed",
            new_or_increased('outcome="em_error"'),
            "critical",
            "A failover start request failed at Enterprise Manager.",
            "Starting plan '{{ $labels.plan }}' (from {{ $labels.source }}) failed at Enterprise Manager in the "
            f"last {window}. The failover may not be running.",
        ),
        alert(
            cfg,
            "VeeamFailoverStartLimitReached",
            f"{m('veeam_failover_starts_last_hour')}\n>= on (job, instance) {m('veeam_failover_start_limit_per_hour')}",
            "critical",
            "The exporter reached its limit of failover starts per hour.",
            "{{ $value }} plans were started through {{ $labels.instance }} in the last hour: every further "
            "start is refused until the hour has passed. Many tenants failing at once may be the provider's own "
            "outage.",
        ),
        alert(
            cfg,
            "VeeamFailoverStartAccepted",
            new_or_increased('outcome="accepted"'),
            "critical",
            "Enterprise Manager accepted a failover start.",
            "Plan '{{ $labels.plan }}' was started through this exporter (from {{ $labels.source }}) in the last "
            f"{window}: a tenant's DR failover is running. Everyone on call should know.",
        ),
        alert(
            cfg,
            "VeeamFailoverStartDryRun",
            new_or_increased('outcome="dry_run"'),
            "warning",
            "A failover start passed every check as a dry run.",
            "A start of plan '{{ $labels.plan }}' (from {{ $labels.source }}) passed every check in the last "
            f"{window} but was a dry run: nothing was sent to EM. If the site is really down, this did not "
            "start the failover.",
        ),
        alert(
            cfg,
            "VeeamFailoverApprovalPending",
            f"{m('veeam_failover_decisions_pending')} > 0",
            "critical",
            "A failover start waits for an approver.",
            "{{ $value }} start(s) of plan '{{ $labels.plan }}' wait for approval on {{ $labels.instance }}: "
            "approve or reject them on /status before they expire.",
        ),
        alert(
            cfg,
            "VeeamFailoverNotificationsFailing",
            "increase("
            + m("veeam_failover_notifications_total", 'result=~"failed|dropped"')
            + f"[{window}]) > 0",
            "warning",
            "Failover decisions are not reaching a notification webhook.",
            "{{ $value | humanize }} announcement(s) to webhook {{ $labels.receiver }} were {{ $labels.result }} "
            f"in the last {window}: people may not hear of pending, accepted or failed starts.",
        ),
        alert(
            cfg,
            "VeeamFailoverKillSwitchOn",
            f"{m('veeam_failover_kill_switch')} == 1",
            "info",
            "The failover start kill switch is on.",
            "Every failover start through {{ $labels.instance }} has been refused for "
            f"{cfg['killSwitchReminderAfter']} or more: the kill switch is on. Turn it off when the reason has "
            "passed (PUT /api/v1/switches), or nothing can start the runbook.",
            for_=cfg["killSwitchReminderAfter"],
        ),
    ]


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render() -> str:
    header = "# Generated by alerts/generate_rules.py: edit that (thresholds at its top), then run it.\n"
    return header + yaml.dump(rule_groups(), Dumper=_Dumper, sort_keys=False, width=120)


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if OUT.read_text() != text:
            print(f"{OUT} is out of date: run python alerts/generate_rules.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
