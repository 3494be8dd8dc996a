"""The overview dashboard: every plan, its latest session, every VM, and how the exporter reads EM."""

from __future__ import annotations

from typing import Any

from monitoring.config import CONFIG, Config
from monitoring.dashboards.panels import (
    OVERVIEW_UID,
    RESULT_COLOURED,
    SESSION_UID,
    STATE_MAPPINGS,
    Scope,
    at_risk_vms,
    dashboard,
    data_loss,
    merged_table,
    panel,
    row,
    running,
    target,
    value_map,
    vm_state_expr,
)


def overview(cfg: Config = CONFIG) -> dict[str, Any]:
    s = Scope(cfg)
    detail_link = {
        "title": "Session detail for ${__data.fields.plan}",
        "url": f"/d/{SESSION_UID}?${{datasource:queryparam}}&var-plan=${{__data.fields.plan}}"
        "&var-backup_server=${__data.fields.backup_server}",
    }
    panels = [
        row("Failovers now", 0),
        panel(
            "stat",
            "Active failovers",
            [
                target(
                    f"count(plan:veeam_failover_session_active:max{{{s.plans}}} == 1) or vector(0)",
                    instant=True,
                )
            ],
            0,
            1,
            4,
            4,
            description="Plans whose latest failover session is still running.",
            thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 1}],
        ),
        panel(
            "stat",
            "Failed VMs (recent)",
            [
                target(
                    f'sum(veeam_failover_vm_result{{{s.plans}, result="Failed"}} == 1\n'
                    f"and on (job, instance, backup_server, plan, vm) time() - veeam_failover_vm_end_timestamp_seconds{{{s.plans}}} < {s.cfg['recentSeconds']})\nor vector(0)",
                    instant=True,
                )
            ],
            4,
            1,
            4,
            4,
            description="VMs whose failover ended Failed within the last day (recentSeconds), in each plan's "
            "latest session: a failover of last month is history, not news.",
            thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}],
        ),
        panel(
            "stat",
            "EM reachable",
            [target(f"min(veeam_em_up{{{s.exporter}}})", instant=True)],
            8,
            1,
            4,
            4,
            mappings=value_map({"1": ("UP", "green"), "0": ("DOWN", "red")}),
            description="1 when the exporter's last poll of Enterprise Manager fully succeeded.",
        ),
        panel(
            "stat",
            "Data age",
            [
                target(
                    f"time() - max(veeam_em_last_successful_poll_timestamp_seconds{{{s.exporter}}})",
                    "exporter read EM",
                    instant=True,
                    ref="A",
                ),
                target(
                    f'time() - min(veeam_em_data_as_of_timestamp_seconds{{{s.exporter}, backup_server=~"$backup_server"}}'
                    f" and on (backup_server) (count by (backup_server) (plan:veeam_failover_session_active:max{{{s.plans}}} == 1)))",
                    "EM's data (running failovers)",
                    instant=True,
                    ref="B",
                ),
            ],
            12,
            1,
            4,
            4,
            unit="s",
            description="Time since the exporter last read EM successfully; and, while failovers run, how old "
            "EM's own data of their backup servers is at most (EM collects from each every 15 minutes by "
            "default; poll.collect asks it to collect every minute while a failover runs).",
            thresholds=[
                {"color": "green", "value": None},
                {"color": "orange", "value": s.cfg["dataAgeWarningSeconds"]},
                {"color": "red", "value": s.cfg["staleSeconds"]},
            ],
        ),
        panel(
            "table",
            "Latest result per plan",
            [
                target(f"veeam_failover_session_result{{{s.plans}}} == 1", instant=True, table=True, ref="A"),
                target(
                    f"veeam_failover_session_progress_ratio{{{s.plans}}}", instant=True, table=True, ref="B"
                ),
                target(f"veeam_failover_plan_info{{{s.plans}}}", instant=True, table=True, ref="C"),
            ],
            16,
            1,
            8,
            8,
            description="Each plan's latest failover session, with its tenant. Click a plan for its detail.",
            transformations=merged_table(
                hide=["Value #A", "Value #C", "plan_id"], rename={"Value #B": "progress"}
            ),
            overrides=[
                RESULT_COLOURED,
                {
                    "matcher": {"id": "byName", "options": "plan"},
                    "properties": [{"id": "links", "value": [detail_link]}],
                },
                {
                    "matcher": {"id": "byName", "options": "progress"},
                    "properties": [{"id": "unit", "value": "percentunit"}],
                },
            ],
        ),
        panel(
            "bargauge",
            "Progress per VM: running failovers, the 50 least advanced",
            [
                target(
                    f"bottomk(50, veeam_failover_vm_progress_ratio{{{s.plans}}}\nand {running(s)})",
                    "{{plan}} / {{vm}}",
                    instant=True,
                )
            ],
            0,
            5,
            16,
            10,
            unit="percentunit",
            minmax=(0, 1),
            options={"orientation": "horizontal", "displayMode": "gradient", "showUnfilled": True},
            description="VMs of the failovers running now, the least advanced first (at most 50: the session "
            "detail has every VM of one plan).",
        ),
        panel(
            "state-timeline",
            "VM state over time: running failovers",
            [target(f"({vm_state_expr(s.plans)})\nand {running(s)}", "{{plan}} / {{vm}}")],
            0,
            15,
            24,
            10,
            mappings=STATE_MAPPINGS,
            options={"showValue": "never", "mergeValues": True},
        ),
        row("Readiness (before the disaster)", 25),
        panel(
            "stat",
            "VMs past their RPO",
            [target(f"count({at_risk_vms(s)}) or vector(0)", instant=True)],
            0,
            26,
            4,
            4,
            description="Plan VMs whose newest replica point is older than their plan's RPO (VMs running in "
            "DR left out): what a failover now would lose more of than promised.",
            thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 1}],
        ),
        panel(
            "stat",
            "VMs never replicated",
            [
                target(
                    f"sum(veeam_failover_plan_vms_without_restore_point{{{s.plans}}}) or vector(0)",
                    instant=True,
                )
            ],
            0,
            30,
            4,
            4,
            description="Plan VMs EM has no replica point of at all: a failover cannot bring them up.",
            thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}],
        ),
        panel(
            "stat",
            "VMs running in DR",
            [target(f"sum(veeam_failover_plan_vms_in_failover{{{s.plans}}}) or vector(0)", instant=True)],
            4,
            26,
            4,
            8,
            description="Plan VMs whose newest replica point is in Failover: they run at the provider now.",
            thresholds=[{"color": "green", "value": None}, {"color": "blue", "value": 1}],
        ),
        panel(
            "bargauge",
            "Worst restore point age per plan, as a share of its RPO",
            [
                target(
                    f"topk(20, (time() - veeam_failover_plan_oldest_restore_point_timestamp_seconds{{{s.plans}}})\n"
                    f"/ on (job, instance, backup_server, plan) veeam_failover_plan_rpo_seconds{{{s.plans}}})",
                    "{{plan}}",
                    instant=True,
                )
            ],
            8,
            26,
            8,
            8,
            unit="percentunit",
            options={"orientation": "horizontal", "displayMode": "basic"},
            thresholds=[
                {"color": "green", "value": None},
                {"color": "orange", "value": 0.8},
                {"color": "red", "value": 1},
            ],
            description="The plans whose oldest VM (by newest replica point) is closest to the plan's RPO; "
            "100% is the RPO. The 20 worst.",
        ),
        panel(
            "table",
            "VMs at risk",
            [
                target(f"topk(50, {at_risk_vms(s)})", instant=True, table=True, ref="A"),
            ],
            16,
            26,
            8,
            8,
            unit="s",
            description="Plan VMs past their RPO, by age of their newest replica point (the 50 oldest).",
            transformations=merged_table(hide=[], rename={"Value #A": "point age"}),
        ),
        row("Data loss and duration", 34),
        panel(
            "bargauge",
            "Restore point age at failover (data-loss window): the 30 oldest VMs",
            [target(f"topk(30, {data_loss(s)})", "{{plan}} / {{vm}}", instant=True)],
            0,
            35,
            12,
            10,
            unit="s",
            options={"orientation": "horizontal", "displayMode": "basic"},
            thresholds=[
                {"color": "green", "value": None},
                {"color": "orange", "value": s.cfg["rpoSeconds"]},
                {"color": "red", "value": s.cfg["dataLossCriticalSeconds"]},
            ],
            description="How old the replica point each VM fails over to was when its failover started.",
        ),
        panel(
            "timeseries",
            "Failover duration: running vs. longest of the last 7 days",
            [
                target(
                    f"plan:veeam_failover_session_duration_seconds:elapsed{{{s.plans}}}\n"
                    f"and on (job, instance, backup_server, plan) plan:veeam_failover_session_active:max{{{s.plans}}} == 1",
                    "{{plan}} running",
                    ref="A",
                ),
                target(
                    f"max_over_time(plan:veeam_failover_session_finished_duration_seconds:elapsed{{{s.plans}}}[7d])",
                    "{{plan}} longest finished (7d)",
                    ref="B",
                ),
            ],
            12,
            35,
            12,
            10,
            unit="s",
            description="The 7-day history needs the recording rules in alerts/.",
        ),
        panel(
            "timeseries",
            "Session progress",
            [target(f"veeam_failover_session_progress_ratio{{{s.plans}}}", "{{plan}}")],
            0,
            45,
            24,
            8,
            unit="percentunit",
            minmax=(0, 1),
        ),
        row("Exporter and Enterprise Manager", 53),
        panel(
            "timeseries",
            "EM up and poll duration",
            [
                target(f"veeam_em_up{{{s.exporter}}}", "up {{instance}}", ref="A"),
                target(
                    f"veeam_em_poll_duration_seconds{{{s.exporter}}}", "poll seconds {{instance}}", ref="B"
                ),
            ],
            0,
            54,
            8,
            8,
        ),
        panel(
            "timeseries",
            "EM requests by endpoint and code",
            [
                target(
                    f"sum by (endpoint, code) (rate(veeam_em_requests_total{{{s.exporter}}}[$__rate_interval]))",
                    "{{code}} {{endpoint}}",
                )
            ],
            8,
            54,
            8,
            8,
            unit="reqps",
        ),
        panel(
            "timeseries",
            "EM logons and poll errors",
            [
                target(
                    f"sum(increase(veeam_em_logons_total{{{s.exporter}}}[$__rate_interval]))",
                    "logons",
                    ref="A",
                ),
                target(
                    f"sum by (reason) (increase(veeam_em_poll_errors_total{{{s.exporter}}}[$__rate_interval])) > 0",
                    "poll errors: {{reason}}",
                    ref="B",
                ),
            ],
            16,
            54,
            8,
            8,
        ),
    ]
    return dashboard(
        s,
        OVERVIEW_UID,
        "Veeam cloud failover / Overview",
        "Cloud failover plans, their latest sessions and every VM, from veeam-failover-exporter.",
        panels,
        True,
        [
            {
                "title": "Session detail",
                "type": "link",
                "url": f"/d/{SESSION_UID}",
                "keepTime": True,
                "includeVars": True,
            },
            {
                "title": "Exporter /status (when Grafana is not enough)",
                "type": "link",
                "url": "${exporter_url}/status",
                "keepTime": False,
                "includeVars": False,
            },
        ],
    )
