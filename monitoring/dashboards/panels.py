"""The building blocks of the dashboards, on grafana-foundation-sdk (Grafana's typed builders, the 10.4
line: schemaVersion 39): selectors, targets, panels, variables, and the dashboard around them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import bargauge, prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from exporter.em.model import SESSION_RESULTS, SESSION_STATES
from monitoring.config import DASHBOARD_UIDS, Config
from monitoring.promql import at_risk, block, series

SCHEMA_VERSION = 39
DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
OVERVIEW_UID = DASHBOARD_UIDS["overview"]
SESSION_UID = DASHBOARD_UIDS["session"]


@dataclass(frozen=True)
class Scope:
    """What a dashboard's queries select (the config's selector, narrowed by the dashboard's variables),
    and the thresholds its colours use: the mixin builds the dashboards again with its own."""

    cfg: Config

    @property
    def exporter(self) -> str:
        return f'{self.cfg["selector"]}, job=~"$job", instance=~"$instance"'

    @property
    def plans(self) -> str:
        return f'{self.exporter}, backup_server=~"$backup_server", plan=~"$plan"'


# a session's or VM's state as one number (the state timeline), in the model's order, with its colour
STATE_COLOURS = {"Starting": "blue", "Working": "yellow", "Stopping": "orange", "Stopped": "green"}
STATE_CODES = [(state, n, STATE_COLOURS[state]) for n, state in enumerate(SESSION_STATES, start=1)]
RESULT_COLOURS = {"None": "text", "Success": "green", "Warning": "orange", "Failed": "red"}
RESULT_MAPPINGS = [
    dm.ValueMap(options={r: dm.ValueMappingResult(text=r, color=RESULT_COLOURS[r]) for r in SESSION_RESULTS})
]
# a table's result column, coloured by value: Success green, Warning orange, Failed red
RESULT_COLOURED: dict[str, Any] = {
    "matcher": {"id": "byName", "options": "result"},
    "properties": [
        {"id": "mappings", "value": RESULT_MAPPINGS},
        {"id": "custom.cellOptions", "value": {"type": "color-text"}},
    ],
}


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
    t = prometheus.Dataquery().datasource(DS).expr(block(expr)).ref_id(ref).legend_format(legend or "__auto")
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


def variables(s: Scope, plan_multi: bool) -> list[Any]:
    def query(name: str, label: str, q: str, multi: bool = True, catch_all: bool = True) -> Any:
        v = db.QueryVariable(name).label(label).datasource(DS).query(q)
        v = v.refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
        if multi:
            v = v.multi(True).include_all(True)
            if catch_all:
                v = v.all_value(".*")
            v = v.current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
        return v

    return [
        db.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        query("job", "Job", f"label_values(veeam_failover_exporter_build_info{{{s.cfg['selector']}}}, job)"),
        query(
            "instance",
            "Instance",
            f'label_values(veeam_failover_exporter_build_info{{{s.cfg["selector"]}, job=~"$job"}}, instance)',
        ),
        query(
            "backup_server",
            "Backup server",
            f"label_values(veeam_failover_plan_info{{{s.exporter}}}, backup_server)",
        ),
        query(
            "tenant",
            "Tenant",
            f'label_values(veeam_failover_plan_info{{{s.exporter}, backup_server=~"$backup_server"}}, tenant)',
        ),
        # "All" plans is the list of the chosen tenants' plans (no catch-all): choosing a tenant filters
        # every panel through $plan
        query(
            "plan",
            "Plan",
            f'label_values(veeam_failover_plan_info{{{s.exporter}, backup_server=~"$backup_server", tenant=~"$tenant"}}, plan)',
            plan_multi,
            catch_all=False,
        ),
        db.TextBoxVariable("exporter_url")
        .label("Exporter URL (for /status)")
        .description("Where this dashboard's links find the exporter's own /status page.")
        .default_value(STATUS_URL)
        .current(dm.VariableOption(selected=True, text=STATUS_URL, value=STATUS_URL)),
    ]


def vm_state_expr(sel: str) -> str:
    # one number per VM for the state timeline: 1 Starting, 2 Working, 3 Stopping, 4 Stopped
    parts = [f'(veeam_failover_vm_state{{{sel}, state="{s}"}} == 1) * {n}' for s, n, _ in STATE_CODES]
    return "max by (job, instance, backup_server, plan, vm) (\n  " + "\n  or ".join(parts) + "\n)"


STATE_MAPPINGS = [
    dm.ValueMap(options={str(n): dm.ValueMappingResult(text=s, color=c) for s, n, c in STATE_CODES})
]


def data_loss(s: Scope) -> str:
    return f"vm:veeam_failover_data_loss_seconds:elapsed{{{s.plans}}}"  # a recording rule (alerts/)


def marks(s: Scope) -> list[tuple[str, str, str, str]]:
    """The marks on every time panel: (name, colour, query whose value is the mark's time in ms, title)."""
    return [
        (
            "Failover start requested",
            "red",
            f'veeam_failover_last_start_timestamp_seconds{{{s.exporter}, plan=~"$plan"}} * 1000',
            "Failover start requested",
        ),
        (
            "Failover session started",
            "orange",
            f"veeam_failover_session_start_timestamp_seconds{{{s.plans}}} * 1000",
            "Failover session started",
        ),
        (
            "Failover session ended",
            "green",
            f"veeam_failover_session_end_timestamp_seconds{{{s.plans}}} * 1000",
            "Failover session ended",
        ),
    ]


def running(s: Scope) -> str:
    """Per-VM lists cover the plans whose latest session runs (at 200 plans, all of them is unreadable)."""
    return f"on (job, instance, backup_server, plan) plan:veeam_failover_session_active:max{{{s.plans}}} == 1"


def at_risk_vms(s: Scope) -> str:
    m = series(s.plans)
    return at_risk(m, f"(time() - {m('veeam_failover_plan_vm_latest_restore_point_timestamp_seconds')})")


# the exporter as the Helm chart's README installs it (release veeam-failover, namespace monitoring)
STATUS_URL = "http://veeam-failover-veeam-failover-exporter.monitoring.svc:9849"


def dashboard(
    s: Scope,
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
    )
    for name, colour, expr, _ in marks(s):
        d = d.annotation(
            db.AnnotationQuery().name(name).datasource(DS).enable(True).icon_color(colour).expr(expr)
        )
    for v in variables(s, plan_multi):
        d = d.with_variable(v)
    for link in links:
        d = d.link(
            db.DashboardLink(link["title"])
            .type(dm.DashboardLinkType.LINK)
            .url(link["url"])
            .keep_time(link.get("keepTime", True))
            .include_vars(link.get("includeVars", True))
        )
    for p in panels:
        d = d.with_row(p) if isinstance(p, db.Row) else d.with_panel(p)
    data: dict[str, Any] = json.loads(json.dumps(d.build(), cls=JSONEncoder))
    return _complete(data, s)


def _complete(data: dict[str, Any], s: Scope) -> dict[str, Any]:
    """What the SDK's 10.4 models leave out and Grafana reads: the schema version, a null id (so an
    import creates it), the query variables' definition (shown in the editor), and the annotation's
    Prometheus fields (the value is the start time: one mark per start, where it happened)."""
    data["id"] = None
    data["schemaVersion"] = SCHEMA_VERSION
    for v in data["templating"]["list"]:
        if v["type"] == "query":
            v["definition"] = v["query"]
    titles = {name: title for name, _, _, title in marks(s)}
    for a in data["annotations"]["list"]:
        a.update(useValueForTime=True, step="60s", titleFormat=titles[a["name"]], textFormat="{{plan}}")
    for i, p in enumerate(data["panels"], start=1):
        p["id"] = i
    return data
