"""The monitoring mixin (mixin/), evaluated with a real jsonnet: with its default _config it is exactly the
checked-in rules and dashboards; a user's _config reaches every expression and link."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.procs import check_rules, missing

ROOT = Path(__file__).parents[2]
MIXIN = ROOT / "mixin"


def evaluate(code: str) -> Any:
    jsonnet = shutil.which("jsonnet")
    if jsonnet is None:
        missing("jsonnet is not installed (scripts/setup --test installs Debian's)")
    done = subprocess.run(
        [jsonnet, "-J", str(MIXIN), "-e", code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def rules(mixin: str) -> dict[str, Any]:
    result: dict[str, Any] = evaluate(
        f"local m = {mixin}; {{groups: m.prometheusRules.groups + m.prometheusAlerts.groups}}"
    )
    return result


def test_the_default_config_is_exactly_the_checked_in_rules_and_dashboards() -> None:
    assert rules("import 'mixin.libsonnet'") == yaml.safe_load(
        (ROOT / "alerts" / "veeam-failover.rules.yml").read_text()
    )
    dashboards = evaluate("(import 'mixin.libsonnet').grafanaDashboards")
    assert dashboards == {p.name: json.loads(p.read_text()) for p in (ROOT / "dashboards").glob("*.json")}
    assert (
        subprocess.run([".venv/bin/python", "-m", "monitoring", "check"], cwd=ROOT, check=False).returncode
        == 0
    )


def test_a_changed_config_reaches_every_expression() -> None:
    changed = rules(
        "(import 'mixin.libsonnet') + {_config+:: {selector: 'job=\"dr\", cluster=\"eu\"', "
        "runbookURLPattern: 'https://wiki.example/%s', rpoAtRiskFor: '30m', inDRAfterSeconds: 3600}}"
    )
    every = [r for g in changed["groups"] for r in g["rules"]]
    assert every and all('job="dr", cluster="eu"' in r["expr"] for r in every)
    assert not any("veeam-failover-exporter" in r["expr"] for r in every)
    alerts = {r["alert"]: r for r in every if "alert" in r}
    assert all(
        a["annotations"]["runbook_url"] == f"https://wiki.example/{n.lower()}" for n, a in alerts.items()
    )
    assert alerts["VeeamFailoverRPOAtRisk"]["for"] == "30m"
    assert "> 3600)" in alerts["VeeamFailoverVMInDR"]["expr"]


def dashboard_queries(board: dict[str, Any]) -> list[str]:
    """Every query of a dashboard: its panels' targets, its query variables, its annotations."""
    panels = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    variables = [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    marks = [a["expr"] for a in board["annotations"]["list"] if "expr" in a]
    assert panels and variables and marks
    return panels + variables + marks


def test_a_changed_selector_reaches_every_dashboard_query_and_threshold() -> None:
    boards = evaluate(
        "((import 'mixin.libsonnet') + {_config+:: {selector: 'job=\"dr\", cluster=\"eu\"', "
        "staleSeconds: 999}}).grafanaDashboards"
    )
    assert set(boards) == {p.name for p in (ROOT / "dashboards").glob("*.json")}
    for name, board in boards.items():
        queries = dashboard_queries(board)
        missed = [q for q in queries if 'job="dr", cluster="eu"' not in q]
        assert not missed, (name, missed)
        assert not any("veeam-failover-exporter" in q for q in queries), name
    overview = boards["veeam-failover-overview.json"]
    steps = [
        s["value"]
        for p in overview["panels"]
        for s in p.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])
    ]
    assert 999 in steps and 600 not in steps


def test_the_changed_rules_still_pass_promtool(tmp_path: Path) -> None:
    changed = rules("(import 'mixin.libsonnet') + {_config+:: {selector: 'job=\"dr\"', stallWindow: '30m'}}")
    check_rules(changed["groups"], tmp_path)
