"""The session detail dashboard: one plan's latest failover session, VM by VM, and its start requests."""

from __future__ import annotations

from typing import Any

from monitoring.config import CONFIG, Config
from monitoring.dashboards.panels import (
    OVERVIEW_UID,
    RESULT_COLOURED,
    RESULT_COLOURS,
    SESSION_UID,
    STATE_MAPPINGS,
    Scope,
    dashboard,
    data_loss,
    merged_table,
    panel,
    row,
    target,
    vm_state_expr,
)


def session_detail(cfg: Config = CONFIG) -> dict[str, Any]:
    s = Scope(cfg)
    vm_table = [
        target(f"veeam_failover_vm_state{{{s.plans}}} == 1", instant=True, table=True, ref="A"),
        target(f"veeam_failover_vm_result{{{s.plans}}} == 1", instant=True, table=True, ref="B"),
        target(f"veeam_failover_vm_progress_ratio{{{s.plans}}}", instant=True, table=True, ref="C"),
        target(
            f"veeam_failover_vm_start_timestamp_seconds{{{s.plans}}} * 1000",
            instant=True,
            table=True,
            ref="D",
        ),
        target(
            f"veeam_failover_vm_end_timestamp_seconds{{{s.plans}}} * 1000", instant=True, table=True, ref="E"
        ),
        target(
            f"veeam_failover_vm_restore_point_timestamp_seconds{{{s.plans}}} * 1000",
            instant=True,
            table=True,
            ref="F",
        ),
    ]
    requests = f'veeam_failover_start_requests_total{{{s.exporter}, plan=~"$plan"}}'
    panels = [
        row("Session", 0),
        panel(
            "stat",
            "State",
            [target(f"veeam_failover_session_state{{{s.plans}}} == 1", "{{state}}", instant=True)],
            0,
            1,
            4,
            4,
            options={"textMode": "name", "colorMode": "background"},
        ),
        panel(
            "stat",
            "Result",
            [target(f"veeam_failover_session_result{{{s.plans}}} == 1", "{{result}}", instant=True)],
            4,
            1,
            4,
            4,
            options={"textMode": "name", "colorMode": "background"},
            overrides=[
                {
                    "matcher": {"id": "byName", "options": r},
                    "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": c}}],
                }
                for r, c in RESULT_COLOURS.items()
            ],
        ),
        panel(
            "stat",
            "Progress",
            [target(f"veeam_failover_session_progress_ratio{{{s.plans}}}", instant=True)],
            8,
            1,
            4,
            4,
            unit="percentunit",
        ),
        panel(
            "stat",
            "Started",
            [target(f"veeam_failover_session_start_timestamp_seconds{{{s.plans}}} * 1000", instant=True)],
            12,
            1,
            6,
            4,
            unit="dateTimeAsIso",
        ),
        panel(
            "stat",
            "Ended",
            [target(f"veeam_failover_session_end_timestamp_seconds{{{s.plans}}} * 1000", instant=True)],
            18,
            1,
            6,
            4,
            unit="dateTimeAsIso",
            description="Empty while the session runs.",
        ),
        panel(
            "table",
            "VMs",
            vm_table,
            0,
            5,
            24,
            10,
            description="Every VM of the plan's latest failover session.",
            transformations=merged_table(
                hide=["Value #A", "Value #B"],
                rename={
                    "Value #C": "progress",
                    "Value #D": "started",
                    "Value #E": "ended",
                    "Value #F": "restore point",
                },
            ),
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "progress"},
                    "properties": [{"id": "unit", "value": "percentunit"}],
                },
                RESULT_COLOURED,
            ]
            + [
                {
                    "matcher": {"id": "byName", "options": f},
                    "properties": [{"id": "unit", "value": "dateTimeAsIso"}],
                }
                for f in ("started", "ended", "restore point")
            ],
        ),
        panel(
            "bargauge",
            "Progress per VM",
            [target(f"veeam_failover_vm_progress_ratio{{{s.plans}}}", "{{vm}}", instant=True)],
            0,
            15,
            12,
            10,
            unit="percentunit",
            minmax=(0, 1),
            options={"orientation": "horizontal", "displayMode": "gradient", "showUnfilled": True},
        ),
        panel(
            "bargauge",
            "Data-loss window per VM",
            [target(data_loss(s), "{{vm}}", instant=True)],
            12,
            15,
            12,
            10,
            unit="s",
            options={"orientation": "horizontal", "displayMode": "basic"},
        ),
        panel(
            "state-timeline",
            "VM state over time",
            [target(vm_state_expr(s.plans), "{{vm}}")],
            0,
            25,
            24,
            8,
            mappings=STATE_MAPPINGS,
            options={"showValue": "never", "mergeValues": True},
        ),
        row("The plan's VMs and their replica points", 33),
        panel(
            "table",
            "Plan VMs, before any failover",
            [
                target(f"veeam_failover_plan_vm_info{{{s.plans}}}", instant=True, table=True, ref="A"),
                target(
                    f"veeam_failover_plan_vm_latest_restore_point_timestamp_seconds{{{s.plans}}} * 1000",
                    instant=True,
                    table=True,
                    ref="B",
                ),
                target(
                    f"time() - veeam_failover_plan_vm_latest_restore_point_timestamp_seconds{{{s.plans}}}",
                    instant=True,
                    table=True,
                    ref="C",
                ),
                target(
                    f"veeam_failover_plan_vm_restore_point_state{{{s.plans}}} == 1",
                    instant=True,
                    table=True,
                    ref="D",
                ),
            ],
            0,
            34,
            24,
            9,
            description="Every VM of the plan (from the plan itself, with or without a session): its newest "
            "replica point, how old it is, and its State (Failover: running in DR). A VM with no point has "
            "no time.",
            transformations=merged_table(
                hide=["Value #A", "Value #D"], rename={"Value #B": "newest point", "Value #C": "age"}
            ),
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "newest point"},
                    "properties": [{"id": "unit", "value": "dateTimeAsIso"}],
                },
                {"matcher": {"id": "byName", "options": "age"}, "properties": [{"id": "unit", "value": "s"}]},
            ],
        ),
        row("Start requests (guarded actions)", 43),
        panel(
            "timeseries",
            "Start requests by outcome",
            [
                target(
                    f"sum by (source, outcome) (increase({requests}[$__rate_interval]))",
                    "{{source}} {{outcome}}",
                )
            ],
            0,
            44,
            16,
            8,
            description="Requests to start this plan through the exporter, by decision.",
        ),
        panel(
            "stat",
            "Last start requested",
            [
                target(
                    f'veeam_failover_last_start_timestamp_seconds{{{s.exporter}, plan=~"$plan"}} * 1000',
                    instant=True,
                )
            ],
            16,
            44,
            8,
            8,
            unit="dateTimeAsIso",
        ),
    ]
    return dashboard(
        s,
        SESSION_UID,
        "Veeam cloud failover / Session detail",
        "One plan's latest failover session, VM by VM, and the start requests for it.",
        panels,
        False,
        [
            {
                "title": "Overview",
                "type": "link",
                "url": f"/d/{OVERVIEW_UID}",
                "keepTime": True,
                "includeVars": True,
            }
        ],
    )
