"""Generates the Grafana dashboards in this folder with grafana-foundation-sdk (Grafana's own typed
builders, the 10.4 line: schemaVersion 39), from one description, so they stay consistent.

    python dashboards/generate_dashboards.py            # rewrite the JSON files
    python dashboards/generate_dashboards.py --check    # exit 1 if a committed file is not what this generates

The committed JSON is what users import or provision: stable `uid`s, a `datasource` variable (no
`__inputs`), job/instance/backup server/plan variables, `$__rate_interval` for rates.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge, prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

# every selector, threshold and UID lives in monitoring/config.py, shared with the rules
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from monitoring.config import DASHBOARD_UIDS, THRESHOLDS

HERE = Path(__file__).parent
SCHEMA_VERSION = 39
DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
OVERVIEW_UID = DASHBOARD_UIDS["overview"]
SESSION_UID = DASHBOARD_UIDS["session"]
T = THRESHOLDS

EXP = 'job=~"$job", instance=~"$instance"'
SEL = f'{EXP}, backup_server=~"$backup_server", plan=~"$plan"'
STATE_CODES = [
    ("Starting", 1, "blue"),
    ("Working", 2, "yellow"),
    ("Stopping", 3, "orange"),
    ("Stopped", 4, "green"),
]
RESULT_COLORS = {"None": "text", "Success": "green", "Warning": "orange", "Failed": "red"}


# the SDK's 10.4 wheel ships no type information (no py.typed): its builders are Any to mypy
Target = Any  # prometheus.Dataquery
Panel = Any  # a panel builder of PANELS
PANELS: dict[str, Any] = {
    "stat": stat.Panel,
    "table": table.Panel,
    "bargauge": bargauge.Panel,
    "state-timeline": statetimeline.Panel,
    "timeseries": timeseries.Panel,
}
# our option names -> the typed setter, and how the value becomes its type
OPTIONS: dict[str, tuple[str, Any]] = {
    "orientation": ("orientation", common.VizOrientation),
    "displayMode": ("display_mode", common.BarGaugeDisplayMode),
    "showUnfilled": ("show_unfilled", bool),
    "textMode": ("text_mode", common.BigValueTextMode),
    "colorMode": ("color_mode", common.BigValueColorMode),
    "showValue": ("show_value", common.VisibilityMode),
    "mergeValues": ("merge_values", bool),
}


def target(
    expr: str, legend: str = "", *, instant: bool = False, table: bool = False, ref: str = "A"
) -> Target:
    t = prometheus.Dataquery().datasource(DS).expr(expr).ref_id(ref).legend_format(legend or "__auto")
    if instant:
        t = t.instant()
    if table:
        t = t.format(PromQueryFormat.TABLE)
    return t


def panel(
    kind: str,
    title: str,
    targets: list[Target],
    x: int,
    y: int,
    w: int,
    h: int,
    *,
    unit: str | None = None,
    description: str = "",
    options: dict[str, Any] | None = None,
    mappings: list[dm.ValueMap] | None = None,
    thresholds: list[dict[str, Any]] | None = None,
    minmax: tuple[float, float] | None = None,
    overrides: list[dict[str, Any]] | None = None,
    transformations: list[dm.DataTransformerConfig] | None = None,
) -> Panel:
    p = PANELS[kind]().title(title).description(description).datasource(DS)
    p = p.grid_pos(dm.GridPos(h=h, w=w, x=x, y=y))
    for t in targets:
        p = p.with_target(t)
    if unit:
        p = p.unit(unit)
    if mappings:
        p = p.mappings(list(mappings))
    if thresholds:
        steps = [dm.Threshold(value=t["value"], color=t["color"]) for t in thresholds]
        p = p.thresholds(db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps))
    if minmax:
        p = p.min(minmax[0]).max(minmax[1])
    for o in overrides or []:
        props = [dm.DynamicConfigValue(id_val=q["id"], value=q["value"]) for q in o["properties"]]
        p = p.with_override(
            dm.MatcherConfig(id_val=o["matcher"]["id"], options=o["matcher"]["options"]), props
        )
    if transformations:
        p = p.transformations(transformations)
    if kind in ("stat", "bargauge"):  # one value per series: the last one, as Grafana's default
        p = p.reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    for key, value in (options or {}).items():
        setter, kind_of = OPTIONS[key]
        p = getattr(p, setter)(kind_of(value))
    return p


def merged_table(hide: list[str], rename: dict[str, str]) -> list[dm.DataTransformerConfig]:
    """Instant queries merged into one table row per series, without the columns nobody reads."""
    hidden = ["Time", "__name__", "job", "instance", *hide]
    return [
        dm.DataTransformerConfig(id_val="merge", options={}),
        dm.DataTransformerConfig(
            id_val="organize",
            options={"excludeByName": dict.fromkeys(hidden, True), "renameByName": rename},
        ),
    ]


def row(title: str, y: int) -> Any:
    return db.Row(title).grid_pos(dm.GridPos(h=1, w=24, x=0, y=y))


def value_map(pairs: dict[str, tuple[str, str]]) -> list[dm.ValueMap]:
    return [dm.ValueMap(options={k: dm.ValueMappingResult(text=t, color=c) for k, (t, c) in pairs.items()})]


def variables(plan_multi: bool) -> list[Any]:
    def query(name: str, label: str, q: str, multi: bool = True) -> Any:
        v = db.QueryVariable(name).label(label).datasource(DS).query(q)
        v = v.refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
        if multi:
            v = v.multi(True).include_all(True).all_value(".*")
            v = v.current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
        return v

    return [
        db.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        query("job", "Job", "label_values(veeam_failover_exporter_build_info, job)"),
        query(
            "instance", "Instance", 'label_values(veeam_failover_exporter_build_info{job=~"$job"}, instance)'
        ),
        query(
            "backup_server",
            "Backup server",
            f"label_values(veeam_failover_plan_info{{{EXP}}}, backup_server)",
        ),
        query(
            "plan",
            "Plan",
            f'label_values(veeam_failover_plan_info{{{EXP}, backup_server=~"$backup_server"}}, plan)',
            plan_multi,
        ),
    ]


def vm_state_expr(sel: str) -> str:
    # one number per VM for the state timeline: 1 Starting, 2 Working, 3 Stopping, 4 Stopped
    parts = [f'(veeam_failover_vm_state{{{sel}, state="{s}"}} == 1) * {n}' for s, n, _ in STATE_CODES]
    return "max by (backup_server, plan, vm) (\n  " + "\n  or ".join(parts) + "\n)"


STATE_MAPPINGS = [
    dm.ValueMap(options={str(n): dm.ValueMappingResult(text=s, color=c) for s, n, c in STATE_CODES})
]
DATA_LOSS = f"veeam_failover:vm_data_loss_seconds{{{SEL}}}"  # a recording rule (alerts/)
ANNOTATION = f'veeam_failover_last_start_timestamp_seconds{{{EXP}, plan=~"$plan"}} * 1000'


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Any],
    plan_multi: bool,
    links: list[dict[str, Any]],
) -> dict[str, Any]:
    d = (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .editable()
        .tags(["veeam", "failover", "disaster-recovery"])
        .timezone("browser")
        .version(1)
        .refresh("10s")
        .time("now-3h", "now")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .annotation(
            db.AnnotationQuery()
            .name("Failover starts")
            .datasource(DS)
            .enable(True)
            .icon_color("red")
            .expr(ANNOTATION)
        )
    )
    for v in variables(plan_multi):
        d = d.with_variable(v)
    for link in links:
        d = d.link(
            db.DashboardLink(link["title"])
            .type(dm.DashboardLinkType.LINK)
            .url(link["url"])
            .keep_time(True)
            .include_vars(True)
        )
    for p in panels:
        d = d.with_row(p) if isinstance(p, db.Row) else d.with_panel(p)
    data: dict[str, Any] = json.loads(json.dumps(d.build(), cls=JSONEncoder))
    return _complete(data)


def _complete(data: dict[str, Any]) -> dict[str, Any]:
    """What the SDK's 10.4 models leave out and Grafana reads: the schema version, a null id (so an
    import creates it), the query variables' definition (shown in the editor), and the annotation's
    Prometheus fields (the value is the start time: one mark per start, where it happened)."""
    data["id"] = None
    data["schemaVersion"] = SCHEMA_VERSION
    for v in data["templating"]["list"]:
        if v["type"] == "query":
            v["definition"] = v["query"]
    for a in data["annotations"]["list"]:
        a.update(
            useValueForTime=True, step="60s", titleFormat="Failover start requested", textFormat="{{plan}}"
        )
    for i, p in enumerate(data["panels"], start=1):
        p["id"] = i
    return data


def overview() -> dict[str, Any]:
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
                    f"count(veeam_failover:session_active{{{SEL}}} == 1) or vector(0)",
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
            "Failed VMs",
            [target(f'sum(veeam_failover_vm_result{{{SEL}, result="Failed"}}) or vector(0)', instant=True)],
            4,
            1,
            4,
            4,
            description="VMs whose failover ended Failed, in each plan's latest session.",
            thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}],
        ),
        panel(
            "stat",
            "EM reachable",
            [target(f"min(veeam_em_up{{{EXP}}})", instant=True)],
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
            [target(f"time() - max(veeam_em_last_successful_poll_timestamp_seconds{{{EXP}}})", instant=True)],
            12,
            1,
            4,
            4,
            unit="s",
            description="Time since the exporter last read EM successfully.",
            thresholds=[
                {"color": "green", "value": None},
                {"color": "orange", "value": T["data_age_warning_seconds"]},
                {"color": "red", "value": T["stale_seconds"]},
            ],
        ),
        panel(
            "table",
            "Latest result per plan",
            [
                target(f"veeam_failover_session_result{{{SEL}}} == 1", instant=True, table=True, ref="A"),
                target(f"veeam_failover_session_progress_ratio{{{SEL}}}", instant=True, table=True, ref="B"),
            ],
            16,
            1,
            8,
            8,
            description="Each plan's latest failover session. Click a plan for its detail.",
            transformations=merged_table(hide=["Value #A"], rename={"Value #B": "progress"}),
            overrides=[
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
            "Progress per VM",
            [target(f"veeam_failover_vm_progress_ratio{{{SEL}}}", "{{plan}} / {{vm}}", instant=True)],
            0,
            5,
            16,
            10,
            unit="percentunit",
            minmax=(0, 1),
            options={"orientation": "horizontal", "displayMode": "gradient", "showUnfilled": True},
            description="Each VM of each plan's latest failover session.",
        ),
        panel(
            "state-timeline",
            "VM state over time",
            [target(vm_state_expr(SEL), "{{plan}} / {{vm}}")],
            0,
            15,
            24,
            10,
            mappings=STATE_MAPPINGS,
            options={"showValue": "never", "mergeValues": True},
        ),
        row("Data loss and duration", 25),
        panel(
            "bargauge",
            "Restore point age at failover (data-loss window) per VM",
            [target(DATA_LOSS, "{{plan}} / {{vm}}", instant=True)],
            0,
            26,
            12,
            10,
            unit="s",
            options={"orientation": "horizontal", "displayMode": "basic"},
            thresholds=[
                {"color": "green", "value": None},
                {"color": "orange", "value": T["rpo_seconds"]},
                {"color": "red", "value": T["data_loss_critical_seconds"]},
            ],
            description="How old the replica point each VM fails over to was when its failover started.",
        ),
        panel(
            "timeseries",
            "Failover duration: running vs. longest of the last 7 days",
            [
                target(
                    f"veeam_failover:session_duration_seconds{{{SEL}}}\n"
                    f"and on (job, instance, backup_server, plan) veeam_failover:session_active{{{SEL}}} == 1",
                    "{{plan}} running",
                    ref="A",
                ),
                target(
                    f"max_over_time(veeam_failover:session_finished_duration_seconds{{{SEL}}}[7d])",
                    "{{plan}} longest finished (7d)",
                    ref="B",
                ),
            ],
            12,
            26,
            12,
            10,
            unit="s",
            description="The 7-day history needs the recording rules in alerts/.",
        ),
        panel(
            "timeseries",
            "Session progress",
            [target(f"veeam_failover_session_progress_ratio{{{SEL}}}", "{{plan}}")],
            0,
            36,
            24,
            8,
            unit="percentunit",
            minmax=(0, 1),
        ),
        row("Exporter and Enterprise Manager", 44),
        panel(
            "timeseries",
            "EM up and poll duration",
            [
                target(f"veeam_em_up{{{EXP}}}", "up {{instance}}", ref="A"),
                target(f"veeam_em_poll_duration_seconds{{{EXP}}}", "poll seconds {{instance}}", ref="B"),
            ],
            0,
            45,
            8,
            8,
        ),
        panel(
            "timeseries",
            "EM requests by endpoint and code",
            [
                target(
                    f"sum by (endpoint, code) (rate(veeam_em_requests_total{{{EXP}}}[$__rate_interval]))",
                    "{{code}} {{endpoint}}",
                )
            ],
            8,
            45,
            8,
            8,
            unit="reqps",
        ),
        panel(
            "timeseries",
            "EM logons and poll errors",
            [
                target(f"sum(increase(veeam_em_logons_total{{{EXP}}}[$__rate_interval]))", "logons", ref="A"),
                target(
                    f"sum by (reason) (increase(veeam_em_poll_errors_total{{{EXP}}}[$__rate_interval])) > 0",
                    "poll errors: {{reason}}",
                    ref="B",
                ),
            ],
            16,
            45,
            8,
            8,
        ),
    ]
    return dashboard(
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
            }
        ],
    )


def session_detail() -> dict[str, Any]:
    vm_table = [
        target(f"veeam_failover_vm_state{{{SEL}}} == 1", instant=True, table=True, ref="A"),
        target(f"veeam_failover_vm_result{{{SEL}}} == 1", instant=True, table=True, ref="B"),
        target(f"veeam_failover_vm_progress_ratio{{{SEL}}}", instant=True, table=True, ref="C"),
        target(
            f"veeam_failover_vm_start_timestamp_seconds{{{SEL}}} * 1000", instant=True, table=True, ref="D"
        ),
        target(f"veeam_failover_vm_end_timestamp_seconds{{{SEL}}} * 1000", instant=True, table=True, ref="E"),
        target(
            f"veeam_failover_vm_restore_point_timestamp_seconds{{{SEL}}} * 1000",
            instant=True,
            table=True,
            ref="F",
        ),
    ]
    requests = f'veeam_failover_start_requests_total{{{EXP}, plan=~"$plan"}}'
    panels = [
        row("Session", 0),
        panel(
            "stat",
            "State",
            [target(f"veeam_failover_session_state{{{SEL}}} == 1", "{{state}}", instant=True)],
            0,
            1,
            4,
            4,
            options={"textMode": "name", "colorMode": "background"},
        ),
        panel(
            "stat",
            "Result",
            [target(f"veeam_failover_session_result{{{SEL}}} == 1", "{{result}}", instant=True)],
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
                for r, c in RESULT_COLORS.items()
            ],
        ),
        panel(
            "stat",
            "Progress",
            [target(f"veeam_failover_session_progress_ratio{{{SEL}}}", instant=True)],
            8,
            1,
            4,
            4,
            unit="percentunit",
        ),
        panel(
            "stat",
            "Started",
            [target(f"veeam_failover_session_start_timestamp_seconds{{{SEL}}} * 1000", instant=True)],
            12,
            1,
            6,
            4,
            unit="dateTimeAsIso",
        ),
        panel(
            "stat",
            "Ended",
            [target(f"veeam_failover_session_end_timestamp_seconds{{{SEL}}} * 1000", instant=True)],
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
                }
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
            [target(f"veeam_failover_vm_progress_ratio{{{SEL}}}", "{{vm}}", instant=True)],
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
            [target(DATA_LOSS, "{{vm}}", instant=True)],
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
            [target(vm_state_expr(SEL), "{{vm}}")],
            0,
            25,
            24,
            8,
            mappings=STATE_MAPPINGS,
            options={"showValue": "never", "mergeValues": True},
        ),
        row("Start requests (guarded actions)", 33),
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
            34,
            16,
            8,
            description="Requests to start this plan through the exporter, by decision.",
        ),
        panel(
            "stat",
            "Last start requested",
            [
                target(
                    f'veeam_failover_last_start_timestamp_seconds{{{EXP}, plan=~"$plan"}} * 1000',
                    instant=True,
                )
            ],
            16,
            34,
            8,
            8,
            unit="dateTimeAsIso",
        ),
    ]
    return dashboard(
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


FILES = {"veeam-failover-overview.json": overview, "veeam-failover-session.json": session_detail}


def render(name: str) -> str:
    return json.dumps(FILES[name](), indent=2, sort_keys=True) + "\n"


def main() -> int:
    stale = [n for n in FILES if (HERE / n).read_text() != render(n)] if "--check" in sys.argv else []
    if "--check" in sys.argv:
        for n in stale:
            print(
                f"dashboards/{n} is out of date: run python dashboards/generate_dashboards.py",
                file=sys.stderr,
            )
        return 1 if stale else 0
    for n in FILES:
        (HERE / n).write_text(render(n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
