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
from monitoring.config import EXPORTER_JOB, RUNBOOK_URL, THRESHOLDS

OUT = Path(__file__).parent / "veeam-failover.rules.yml"
T = THRESHOLDS
S = "backup_server, plan"


def alert(
    name: str, expr: str, severity: str, summary: str, description: str, for_: str = "0m"
) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_ != "0m":
        rule["for"] = for_
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": RUNBOOK_URL.format(anchor=name.lower()),
    }
    return rule


def record(name: str, expr: str) -> dict[str, Any]:
    return {"record": name, "expr": expr}


def rule_groups() -> dict[str, Any]:
    recent = T["recent_seconds"]
    records = [
        # 1 while the plan's latest session runs (any state but Stopped, undocumented ones included)
        record(
            "veeam_failover:session_active",
            'max without (state) (veeam_failover_session_state{state!="Stopped"})',
        ),
        record(
            "veeam_failover:sessions_active:count", "count(veeam_failover:session_active == 1) or vector(0)"
        ),
        # how long the session has run, or ran
        record(
            "veeam_failover:session_duration_seconds",
            "veeam_failover_session_end_timestamp_seconds - veeam_failover_session_start_timestamp_seconds"
            " or time() - veeam_failover_session_start_timestamp_seconds",
        ),
        # finished sessions only: lets dashboards compare with history by max_over_time, no subquery
        record(
            "veeam_failover:session_finished_duration_seconds",
            "veeam_failover_session_end_timestamp_seconds - veeam_failover_session_start_timestamp_seconds",
        ),
        # the data a VM loses: from its restore point to the start of its failover
        record(
            "veeam_failover:vm_data_loss_seconds",
            "veeam_failover_vm_start_timestamp_seconds - veeam_failover_vm_restore_point_timestamp_seconds",
        ),
        record(
            "veeam_failover:vms_by_state:count",
            "sum without (vm) (veeam_failover_vm_state)",
        ),
    ]
    failover = [
        alert(
            "VeeamFailoverFailed",
            f'veeam_failover_session_result{{result="Failed"}} == 1\n'
            f"and on ({S}) (time() - veeam_failover_session_end_timestamp_seconds < {recent})",
            "critical",
            "A cloud failover finished with result Failed.",
            "The failover of plan {{ $labels.plan }} on {{ $labels.backup_server }} ended Failed: "
            "some or all of its VMs are not running at the provider.",
        ),
        alert(
            "VeeamFailoverVMFailed",
            f'veeam_failover_vm_result{{result="Failed"}} == 1\n'
            f"and on ({S}, vm) (time() - veeam_failover_vm_end_timestamp_seconds < {recent})",
            "critical",
            "A VM failed to fail over.",
            "VM {{ $labels.vm }} of plan {{ $labels.plan }} on {{ $labels.backup_server }} failed to fail over.",
        ),
        alert(
            "VeeamFailoverFinishedWithWarnings",
            f'veeam_failover_session_result{{result="Warning"}} == 1\n'
            f"and on ({S}) (time() - veeam_failover_session_end_timestamp_seconds < {recent})",
            "warning",
            "A cloud failover finished with warnings.",
            "The failover of plan {{ $labels.plan }} on {{ $labels.backup_server }} ended with result Warning; "
            "check which VMs warned.",
        ),
        alert(
            "VeeamFailoverStalled",
            f"veeam_failover:session_active == 1\n"
            f"and on ({S}) changes(veeam_failover_session_progress_ratio[{T['stall_window']}]) == 0\n"
            f"and on ({S}) time() - veeam_failover_session_start_timestamp_seconds"
            f" > {_seconds(T['stall_window'])}",
            "critical",
            "A running cloud failover has made no progress.",
            "The failover of plan {{ $labels.plan }} on {{ $labels.backup_server }} has been at the same "
            f"progress for {T['stall_window']} while still running.",
            for_="5m",
        ),
        alert(
            "VeeamFailoverTooSlow",
            f"veeam_failover:session_active == 1\n"
            f"and on ({S}) time() - veeam_failover_session_start_timestamp_seconds > {T['max_duration_seconds']}",
            "warning",
            "A cloud failover is taking longer than expected.",
            "The failover of plan {{ $labels.plan }} on {{ $labels.backup_server }} has run for more than "
            f"{T['max_duration_seconds'] // 60} minutes.",
        ),
        alert(
            "VeeamFailoverRestorePointTooOld",
            f"veeam_failover:vm_data_loss_seconds > {T['rpo_seconds']}\n"
            f"and on ({S}, vm) time() - veeam_failover_vm_start_timestamp_seconds < {recent}",
            "warning",
            "A VM failed over to a restore point older than the RPO.",
            "VM {{ $labels.vm }} of plan {{ $labels.plan }} fails over to a restore point "
            "{{ $value | humanizeDuration }} older than its failover start "
            f"(RPO {T['rpo_seconds'] // 60} minutes): that much data is lost.",
        ),
    ]
    health = [
        alert(
            "VeeamEMUnreachable",
            "veeam_em_up == 0",
            "critical",
            "Veeam Enterprise Manager cannot be read.",
            "The exporter {{ $labels.instance }} has not read Enterprise Manager successfully for "
            f"{T['em_down_for']}; failover state shown is old. See veeam_em_poll_errors_total for the reason.",
            for_=T["em_down_for"],
        ),
        alert(
            "VeeamFailoverExporterDown",
            f'up{{job="{EXPORTER_JOB}"}} == 0',
            "critical",
            "The Veeam failover exporter cannot be scraped.",
            "Prometheus cannot scrape {{ $labels.instance }}: failover progress is invisible.",
            for_="5m",
        ),
        alert(
            "VeeamFailoverExporterDataStale",
            f"time() - veeam_em_last_successful_poll_timestamp_seconds > {T['stale_seconds']}",
            "critical",
            "The Veeam failover exporter's data is stale.",
            "The exporter {{ $labels.instance }} last read Enterprise Manager "
            "{{ $value | humanizeDuration }} ago.",
            for_="2m",
        ),
        alert(
            "VeeamFailoverEMDataOld",
            f"time() - veeam_em_data_as_of_timestamp_seconds > {T['em_data_age_seconds']}\n"
            "and on (backup_server) (count by (backup_server) (veeam_failover:session_active == 1) > 0)",
            "warning",
            "Enterprise Manager's data of a backup server with a running failover is old.",
            "A failover runs on {{ $labels.backup_server }}, but the newest data Enterprise Manager has of it "
            "is {{ $value | humanizeDuration }} old: what the dashboards show of it is that far behind.",
            for_="5m",
        ),
    ]
    window = T["actions_window"]
    requests = "veeam_failover_start_requests_total"

    def new_or_increased(selector: str) -> str:
        # a series seen for the first time (its first request) has no increase(): catch it with `unless`
        m = f"{requests}{{{selector}}}"
        return f"increase({m}[{window}]) > 0\nor ({m} unless {m} offset {window})"

    actions = [
        alert(
            "VeeamFailoverStartRefused",
            new_or_increased('outcome=~"forbidden|conflict|invalid|unauthorized"'),
            "warning",
            "A failover start request was refused.",
            "A start request for plan '{{ $labels.plan }}' from {{ $labels.source }} was refused "
            f"({{{{ $labels.outcome }}}}) in the last {window}. See GET /api/v1/actions or the audit log.",
        ),
        alert(
            "VeeamFailoverStartFailed",
            new_or_increased('outcome="em_error"'),
            "critical",
            "A failover start request failed at Enterprise Manager.",
            "Starting plan '{{ $labels.plan }}' (from {{ $labels.source }}) failed at Enterprise Manager in the "
            f"last {window}. The failover may not be running.",
        ),
        alert(
            "VeeamFailoverStartLimitReached",
            "veeam_failover_starts_last_hour >= on (job, instance) veeam_failover_start_limit_per_hour",
            "critical",
            "The exporter reached its limit of failover starts per hour.",
            "{{ $value }} plans were started through {{ $labels.instance }} in the last hour: every further "
            "start is refused until the hour has passed. Many tenants failing at once may be the provider's own "
            "outage.",
        ),
        alert(
            "VeeamFailoverStartAccepted",
            new_or_increased('outcome="accepted"'),
            "critical",
            "Enterprise Manager accepted a failover start.",
            "Plan '{{ $labels.plan }}' was started through this exporter (from {{ $labels.source }}) in the last "
            f"{window}: a tenant's DR failover is running. Everyone on call should know.",
        ),
        alert(
            "VeeamFailoverStartDryRun",
            new_or_increased('outcome="dry_run"'),
            "warning",
            "A failover start passed every check as a dry run.",
            "A start of plan '{{ $labels.plan }}' (from {{ $labels.source }}) passed every check in the last "
            f"{window} but was a dry run: nothing was sent to EM. If the site is really down, this did not "
            "start the failover.",
        ),
        alert(
            "VeeamFailoverApprovalPending",
            "veeam_failover_decisions_pending > 0",
            "critical",
            "A failover start waits for an approver.",
            "{{ $value }} start(s) of plan '{{ $labels.plan }}' wait for approval on {{ $labels.instance }}: "
            "approve or reject them on /status before they expire.",
        ),
        alert(
            "VeeamFailoverNotificationsFailing",
            f'increase(veeam_failover_notifications_total{{result=~"failed|dropped"}}[{window}]) > 0',
            "warning",
            "Failover decisions are not reaching a notification webhook.",
            "{{ $value | humanize }} announcement(s) to webhook {{ $labels.receiver }} were {{ $labels.result }} "
            f"in the last {window}: people may not hear of pending, accepted or failed starts.",
        ),
        alert(
            "VeeamFailoverKillSwitchOn",
            "veeam_failover_kill_switch == 1",
            "info",
            "The failover start kill switch is on.",
            "Every failover start through {{ $labels.instance }} has been refused for "
            f"{T['kill_switch_reminder_after']} or more: the kill switch is on. Turn it off when the reason has "
            "passed (PUT /api/v1/switches), or nothing can start the runbook.",
            for_=T["kill_switch_reminder_after"],
        ),
    ]
    return {
        "groups": [
            {"name": "veeam-failover.records", "rules": records},
            {"name": "veeam-failover-readiness", "rules": readiness_rules()},
            {"name": "veeam-failover", "rules": failover},
            {"name": "veeam-failover-exporter", "rules": health},
            {"name": "veeam-failover-actions", "rules": actions},
        ]
    }


def readiness_rules() -> list[dict[str, Any]]:
    vm = f"{S}, vm"
    dr = 'veeam_failover_plan_vm_restore_point_state{state=~"Failover|Failback|PermanentFailover"} == 1'
    return [
        # what a failover now would lose, per VM and per plan (its worst VM)
        record(
            "veeam_failover:plan_vm_restore_point_age_seconds",
            "time() - veeam_failover_plan_vm_latest_restore_point_timestamp_seconds",
        ),
        record(
            "veeam_failover:plan_restore_point_age_seconds:max",
            "time() - veeam_failover_plan_oldest_restore_point_timestamp_seconds",
        ),
        alert(
            "VeeamFailoverRPOAtRisk",
            f"veeam_failover:plan_vm_restore_point_age_seconds\n"
            f"> on ({S}) group_left () veeam_failover_plan_rpo_seconds\n"
            f"unless on ({vm}) ({dr})",
            "warning",
            "A plan VM's newest replica point is older than the plan's RPO.",
            "VM {{ $labels.vm }} of plan {{ $labels.plan }} on {{ $labels.backup_server }} was last replicated "
            "{{ $value | humanizeDuration }} ago, more than the plan's RPO: a failover now would lose that "
            "much data.",
            for_=T["rpo_at_risk_for"],
        ),
        alert(
            "VeeamFailoverPlanVMUnprotected",
            "veeam_failover_plan_vm_has_restore_point == 0",
            "warning",
            "A plan VM has no replica point at all.",
            "VM {{ $labels.vm }} of plan {{ $labels.plan }} on {{ $labels.backup_server }} has never been "
            "replicated: a failover of the plan cannot bring it up.",
            for_=T["unprotected_for"],
        ),
        alert(
            "VeeamFailoverVMInDR",
            f"time() - veeam_failover_plan_vm_in_dr_since_timestamp_seconds > {T['in_dr_after_seconds']}",
            "info",
            "A VM has run from its replica in DR for a long time.",
            "VM {{ $labels.vm }} of plan {{ $labels.plan }} on {{ $labels.backup_server }} has been in Failover "
            "for {{ $value | humanizeDuration }}: if the site is back, undo the failover or make it permanent; "
            "it is not replicated meanwhile.",
        ),
    ]


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return int(duration[:-1]) * units[duration[-1]]


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
