"""The Helm chart, rendered and linted by real Helm (helm-python-sdk bundles Helm's Go SDK)."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

from exporter.config.load import build_config
from tests.procs import binary, check_rules

ROOT = Path(__file__).parents[2]
CHART = ROOT / "helm" / "veeam-failover-exporter"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
KUBE_VERSIONS = ("1.25.0", "1.30.0")
SECRETS = (
    "inline-em-password-do-not-leak",
    "inline-alertmanager-token-0123456789",
    "inline-runbook-token-0123456789",
)

logging.getLogger("helm_python").setLevel(logging.WARNING)


def values(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CHART / "ci" / name).read_text()) or {}
    return data


def render(vals: dict[str, Any]) -> dict[str, str]:
    chart = helm_python.Chart.load(str(CHART))
    try:
        out: dict[str, str] = chart.render(vals, name="vfe", namespace="monitoring")
    finally:
        chart.close()
    return out


def manifests(rendered: dict[str, str]) -> Iterator[dict[str, Any]]:
    for path, text in rendered.items():
        if path.endswith(".txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                yield doc


def by_kind(vals: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests(render(vals)) if m["kind"] == kind]


@pytest.mark.parametrize("path", CI_VALUES, ids=lambda p: p.name)
def test_lint_is_clean(path: Path) -> None:
    report = helm_python.lint(str(CHART), values(path.name), strict=True, kube_version="v1.30.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


@pytest.mark.parametrize("path", CI_VALUES, ids=lambda p: p.name)
def test_rendered_manifests_validate_against_kubernetes_schemas(path: Path) -> None:
    docs = list(manifests(render(values(path.name))))
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "ServiceAccount", "ConfigMap", "Pod"} <= kinds
    for doc in docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            assert (
                doc["kind"] in ("ServiceMonitor", "PrometheusRule")
                and doc["spec"]
                and doc["metadata"]["name"]
            )
            continue
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def test_default_pod_meets_the_restricted_profile() -> None:
    (deploy,) = by_kind({}, "Deployment")
    spec = deploy["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {v["name"] for v in pod["volumes"]} >= {"config", "em-secret", "state", "tmp"}


def test_rendered_config_is_accepted_by_the_exporter(tmp_path: Path) -> None:
    (cm,) = [
        c for c in by_kind(values("inline-secrets-values.yaml"), "ConfigMap") if "config.yaml" in c["data"]
    ]
    data = yaml.safe_load(cm["data"]["config.yaml"])
    assert data["em"]["password_file"] == "/etc/veeam-failover-exporter/secrets/em/em-password"
    (tmp_path / "pw").write_text("pw")
    (tmp_path / "tokens.yaml").write_text(yaml.safe_dump({"am": "a-token-long-enough-123"}))
    data["em"]["password_file"] = str(tmp_path / "pw")
    data["actions"]["tokens_file"] = str(tmp_path / "tokens.yaml")
    config = build_config(data, {}, env={})
    assert config.actions.enabled and config.actions.dry_run  # the chart defaults to a rehearsal
    assert config.actions.audit_log == "/var/lib/veeam-failover-exporter/audit.jsonl"
    assert config.listen_address == "0.0.0.0:9849"
    full = values("actions-values.yaml")
    (cm,) = [c for c in by_kind(full, "ConfigMap") if "config.yaml" in c["data"]]
    rendered = yaml.safe_load(cm["data"]["config.yaml"])
    assert rendered["readiness"] == {
        "enabled": True,
        "rpo_seconds": 7200,
        "interval_seconds": 300,
        "plans": {"ACME full site failover": {"rpo_seconds": 900}},
    }
    rendered_actions = rendered["actions"]
    assert rendered_actions["plans"] == {
        "Globex DR plan": {"restore_point_min_age_minutes": 120},
        "ACME DR drill": {"approval": "none"},
    }
    assert rendered_actions["approval"] == "required" and rendered_actions["max_starts_per_hour"] == 3
    readiness = build_config({"em": data["em"], "readiness": rendered["readiness"]}, {}, env={}).readiness
    assert readiness.rpo_for("ACME full site failover", "x") == 900.0
    assert rendered_actions["notifications"] == [
        {
            "name": "chat",
            "url_file": "/etc/veeam-failover-exporter/secrets/notifications/chat",
            "format": "slack",
            "events": ["pending", "accepted", "em_error", "em_unknown"],
        },
        {
            "name": "itsm",
            "url_file": "/etc/veeam-failover-exporter/secrets/notifications/itsm",
            "format": "json",
        },
    ]
    (pod,) = [d["spec"]["template"]["spec"] for d in by_kind(full, "Deployment")]
    hooks = next(v for v in pod["volumes"] if v["name"] == "notifications-secret")["secret"]
    assert hooks["secretName"] == "veeam-failover-webhooks" and len(hooks["items"]) == 2
    assert rendered_actions["dry_run"] is False and rendered_actions["allowed_plans"] == [
        "ACME full site failover"
    ]


def test_prometheus_rule_is_alerts_folder_verbatim(tmp_path: Path) -> None:
    (rule,) = by_kind(values("kube-prometheus-stack-values.yaml"), "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    source = yaml.safe_load((ROOT / "alerts" / "veeam-failover.rules.yml").read_text())
    assert rule["spec"]["groups"] == source["groups"]
    descriptions = [
        r["annotations"]["description"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r
    ]
    assert all("{{ $labels." in d or "{{ $value" in d for d in descriptions)  # templates survive, unexpanded
    check_rules(rule["spec"]["groups"], tmp_path)


def test_dashboard_configmaps_are_dashboards_folder_verbatim() -> None:
    maps = [
        c
        for c in by_kind(values("kube-prometheus-stack-values.yaml"), "ConfigMap")
        if c["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    files = {p.name: p.read_text() for p in (ROOT / "dashboards").glob("*.json")}
    assert len(maps) == len(files) == 2
    for cm in maps:
        ((name, text),) = cm["data"].items()
        assert text.rstrip("\n") == files[name].rstrip("\n")
        assert json.loads(text) == json.loads(files[name])
        assert cm["metadata"]["annotations"] == {"grafana_folder": "Veeam"}


def test_service_monitor_selects_the_service_and_names_the_job() -> None:
    vals = values("kube-prometheus-stack-values.yaml")
    (sm,) = by_kind(vals, "ServiceMonitor")
    (svc,) = by_kind(vals, "Service")
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert svc["metadata"]["labels"][sm["spec"]["jobLabel"]] == "veeam-failover-exporter"
    assert sm["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"] == "http"
    # a stable instance: the release's name, not the pod's IP (offset and max_over_time survive restarts)
    relabel = sm["spec"]["endpoints"][0]["relabelings"]
    assert {"targetLabel": "instance", "replacement": svc["metadata"]["name"]} in relabel
    (off,) = by_kind(
        {**vals, "serviceMonitor": {**vals["serviceMonitor"], "stableInstance": False}}, "ServiceMonitor"
    )
    assert not any(
        r.get("targetLabel") == "instance" for r in off["spec"]["endpoints"][0].get("relabelings") or []
    )


def test_secrets_appear_only_in_secret_objects() -> None:
    rendered = render(values("inline-secrets-values.yaml"))
    docs = list(manifests(rendered))
    (secret,) = [d for d in docs if d["kind"] == "Secret"]
    decoded = "".join(base64.b64decode(v).decode() for v in secret["data"].values())
    assert all(s in decoded for s in SECRETS)
    others = yaml.safe_dump_all([d for d in docs if d["kind"] != "Secret"])
    notes = next(v for k, v in rendered.items() if k.endswith("NOTES.txt"))
    for s in SECRETS:
        for form in (s, base64.b64encode(s.encode()).decode()):
            assert form not in others and form not in notes


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"em": {"url": "ftp://em"}}, "at '/em/url': 'ftp://em' does not match pattern"),
        ({"service": {"port": "http"}}, "at '/service/port': got string, want integer"),
        ({"logLevel": "loud"}, "at '/logLevel': value must be one of"),
        ({"readiness": {"plans": {"P": {"rpo": 60}}}}, "at '/readiness/plans/P'"),
        ({"web": {"auth": "basic"}}, "at '/web/authSecret': minLength: got 0, want 1"),
        (
            {"prometheusRule": {"config": {"stallWindow": "15 minutes"}}},
            "at '/prometheusRule/config/stallWindow'",
        ),
        ({"serviceMonitr": {"enabled": True}}, "additional properties 'serviceMonitr' not allowed"),
        ({"actions": {"tokens": {"am": "short"}}}, "minLength: got 5, want 16"),
        ({"actions": {"allowedPlans": "ACME"}}, "at '/actions/allowedPlans': got string, want array"),
        ({"networkPolicy": {"emCidrs": ["em.corp"]}}, "at '/networkPolicy/emCidrs/0'"),
    ],
)
def test_schema_rejects_bad_values_with_a_clear_message(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(helm_python.HelmValuesError) as err:
        render(bad)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("vals", "message"),
    [
        (
            {"actions": {"enabled": True, "existingSecret": {"name": "t"}}},
            "actions.enabled needs persistence.enabled",
        ),
        (
            {"actions": {"enabled": True}, "persistence": {"enabled": True}},
            "actions.enabled needs caller tokens",
        ),
        (
            {
                "actions": {
                    "enabled": True,
                    "existingSecret": {"name": "t"},
                    "notifications": [{"name": "chat"}],
                },
                "persistence": {"enabled": True},
            },
            "actions.notifications needs their URLs",
        ),
    ],
)
def test_unsafe_action_setups_are_refused(vals: dict[str, Any], message: str) -> None:
    with pytest.raises(helm_python.HelmRenderError, match=message):
        render(vals)


def test_notes_warn_about_what_is_missing() -> None:
    notes = next(v for k, v in render({}).items() if k.endswith("NOTES.txt"))
    assert "WARNING: em.url is not set" in notes and "WARNING: no EM password" in notes
    notes = next(v for k, v in render(values("actions-values.yaml")).items() if k.endswith("NOTES.txt"))
    assert "Actions are ENABLED" in notes and "DRY-RUN" not in notes and "WARNING" not in notes


def test_sidecar_example_puts_both_containers_in_one_pod() -> None:
    (deploy,) = by_kind(values("sidecar-values.yaml"), "Deployment")
    names = [c["name"] for c in deploy["spec"]["template"]["spec"]["containers"]]
    assert names == ["exporter", "runbook"]


def test_every_value_is_documented_in_the_chart_readme() -> None:
    readme = (CHART / "README.md").read_text()

    def keys(d: dict[str, Any], prefix: str = "") -> Iterator[str]:
        for k, v in d.items():
            yield prefix + k
            if isinstance(v, dict) and v and k not in ("podSecurityContext", "securityContext"):
                yield from keys(v, prefix + k + ".")

    missing = [k for k in keys(yaml.safe_load((CHART / "values.yaml").read_text())) if f"`{k}`" not in readme]
    assert missing == []


def test_dockerfile_is_small_non_root_and_installs_this_package(tmp_path: Path) -> None:
    text = (ROOT / "Dockerfile").read_text()
    instructions = [
        line.split()[0] for line in text.splitlines() if line.strip() and not line.startswith(("#", " "))
    ]
    assert "HEALTHCHECK" not in instructions and instructions.count("FROM") == 1
    # the base is a build argument, the official slim image by default (tests/e2e/test_image.py builds
    # it for real from a debootstrapped Debian)
    assert "ARG BASE=docker.io/library/python:3.11-slim-bookworm\nFROM ${BASE}" in text
    final = text.split("\nFROM ")[-1]
    assert "USER 65532:65532" in final
    assert 'ENTRYPOINT ["veeam-failover-exporter"]' in final
    assert "apt-get" not in final and "gcc" not in final  # no build tools in the image
    assert "COPY build/wheels /wheels" in final and "pip install --no-index" in final
    # what the image installs: this package's wheel, with the simulator's scenarios inside
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "pip"), "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
    )
    (wheel,) = tmp_path.glob("veeam_failover_exporter-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "exporter/cli/__init__.py",
        "exporter/simulator/scenarios/demo.yaml",
        "exporter/simulator/scenarios/seed.yaml",
    } <= names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "veeam-failover-exporter = exporter.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


IN_DR_15M = (
    "VM db of plan A on vbr has been in Failover for 1h 5m 0s: if the site is back, undo the failover or "
    "make it permanent; it is not replicated meanwhile."
)
TUNED = {
    "prometheusRule": {
        "enabled": True,
        "additionalRuleLabels": {"team": "dr", "severity": "ignored"},
        "disabled": {"VeeamFailoverKillSwitchOn": True},
        "rules": {"VeeamFailoverRPOAtRisk": {"for": "30m"}},
        "runbookUrl": "https://wiki.example/runbooks/",
        "interval": "1m",
        "config": {"inDRAfterSeconds": 3600, "selector": 'job="dr-exporter"'},
    }
}


def test_tuned_rules_render_pass_promtool_and_fire_at_their_new_threshold(tmp_path: Path) -> None:
    (rule,) = by_kind(TUNED, "PrometheusRule")
    groups = rule["spec"]["groups"]
    alerts = {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}
    assert "VeeamFailoverKillSwitchOn" not in alerts and len(alerts) > 20
    assert all(g["interval"] == "1m" for g in groups)
    assert alerts["VeeamFailoverRPOAtRisk"]["for"] == "30m"
    in_dr = alerts["VeeamFailoverVMInDR"]
    assert in_dr["labels"] == {"severity": "info", "team": "dr"}  # the rule's own severity wins
    assert in_dr["annotations"]["runbook_url"] == "https://wiki.example/runbooks/veeamfailovervmindr"
    assert all('job="dr-exporter"' in r["expr"] for g in groups for r in g["rules"])
    check_rules(groups, tmp_path)
    # the unit test of VeeamFailoverVMInDR, with the threshold this release set: an hour, not twelve
    labels = 'job="dr-exporter",backup_server="vbr",plan="A"'
    series = f'veeam_failover_plan_vm_in_dr_since_timestamp_seconds{{{labels},vm="db"}}'
    info = (
        'veeam_failover_plan_info{job="dr-exporter",backup_server="vbr",plan="A",plan_id="a",tenant="ACME"}'
    )
    unit = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": series, "values": "-3000x20"},
                    {"series": info, "values": "1x20"},
                ],
                "alert_rule_test": [
                    {"eval_time": "5m", "alertname": "VeeamFailoverVMInDR", "exp_alerts": []},
                    {
                        "eval_time": "15m",
                        "alertname": "VeeamFailoverVMInDR",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "info",
                                    "team": "dr",
                                    "job": "dr-exporter",
                                    "backup_server": "vbr",
                                    "plan": "A",
                                    "vm": "db",
                                    "tenant": "ACME",
                                },
                                "exp_annotations": {
                                    "summary": "A VM has run from its replica in DR for a long time.",
                                    "description": IN_DR_15M,
                                    "runbook_url": "https://wiki.example/runbooks/veeamfailovervmindr",
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    (tmp_path / "unit.yml").write_text(yaml.safe_dump(unit))
    done = subprocess.run(
        [binary("promtool"), "test", "rules", "unit.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr


def test_the_alertmanager_example_names_the_service_the_documented_install_creates() -> None:
    # docs/kubernetes.md and the chart README: helm install veeam-failover ... -n monitoring
    install = (ROOT / "docs" / "kubernetes.md").read_text()
    assert "helm install veeam-failover ./helm/veeam-failover-exporter -n monitoring" in install
    chart = helm_python.Chart.load(str(CHART))
    try:
        rendered = chart.render({}, name="veeam-failover", namespace="monitoring")
    finally:
        chart.close()
    (service,) = [m for m in manifests(rendered) if m["kind"] == "Service"]
    port = service["spec"]["ports"][0]["port"]
    receivers = yaml.safe_load((ROOT / "examples" / "alertmanager.yml").read_text())["receivers"]
    urls = [w["url"] for r in receivers for w in r.get("webhook_configs", [])]
    assert f"http://{service['metadata']['name']}.monitoring.svc:{port}/api/v1/alertmanager" in urls
    assert all("veeam-failover-veeam-failover-exporter.monitoring.svc" in u for u in urls if "9849" in u)


def test_the_service_monitor_scrapes_as_the_exporter_serves(tmp_path: Path) -> None:
    vals = values("web-values.yaml")
    (monitor,) = by_kind(vals, "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (
        endpoint["scheme"] == "https"
        and endpoint["tlsConfig"]["ca"]["secret"]["name"] == "veeam-failover-web-tls"
    )
    assert endpoint["basicAuth"] == {
        "username": {"name": "veeam-failover-scrape", "key": "username"},
        "password": {"name": "veeam-failover-scrape", "key": "password"},
    }
    (pod,) = [d["spec"]["template"]["spec"] for d in by_kind(vals, "Deployment")]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    (cm,) = [c for c in by_kind(vals, "ConfigMap") if "config.yaml" in c["data"]]
    data = yaml.safe_load(cm["data"]["config.yaml"])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert data["web"]["tls_cert_file"].startswith(mounts["web-tls"] + "/")
    assert data["web"]["basic_auth"]["password_file"].startswith(mounts["web-auth"] + "/")
    # the exporter takes the rendered settings (with its files where the test can make them)
    for name in ("pw", "crt", "key", "scrape"):
        (tmp_path / name).write_text("x")
    data["em"]["password_file"] = str(tmp_path / "pw")
    data["web"].update(
        tls_cert_file=str(tmp_path / "crt"),
        tls_key_file=str(tmp_path / "key"),
        basic_auth={**data["web"]["basic_auth"], "password_file": str(tmp_path / "scrape")},
    )
    web = build_config(data, {}, env={}).web
    assert web.basic_username == "prometheus" and web.tls_cert_file == str(tmp_path / "crt")
    (bearer,) = by_kind({**vals, "web": {"auth": "bearer", "authSecret": "s"}}, "ServiceMonitor")
    assert bearer["spec"]["endpoints"][0]["bearerTokenSecret"] == {"name": "s", "key": "token"}
    assert bearer["spec"]["endpoints"][0]["scheme"] == "http"


def test_an_image_digest_pins_the_image() -> None:
    digest = "sha256:" + "ab" * 32
    (deploy,) = by_kind(
        {"image": {"repository": "registry.corp.example/vfe", "digest": digest}}, "Deployment"
    )
    assert (
        deploy["spec"]["template"]["spec"]["containers"][0]["image"] == f"registry.corp.example/vfe@{digest}"
    )


def test_the_alertmanager_example_routes_a_tenant_s_plan_alerts_to_its_team() -> None:
    done = subprocess.run(
        [
            binary("amtool"),
            "config",
            "routes",
            "test",
            "--config.file",
            str(ROOT / "examples" / "alertmanager.yml"),
            "alertname=VeeamFailoverRPOAtRisk",
            "tenant=ACME",
            "plan=ACME full site failover",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["acme-dr-team,on-call"], done.stdout


def test_the_network_policy_lets_notifications_out_only_when_there_are_some() -> None:
    """Before, with notifications on, the policy allowed only EM and DNS: every announcement was blocked."""
    base: dict[str, Any] = {
        "networkPolicy": {"enabled": True, "webhookCidrs": ["198.51.100.0/24"]},
        "actions": {"enabled": True, "existingSecret": {"name": "t"}},
        "persistence": {"enabled": True},
    }
    quiet = by_kind(base, "NetworkPolicy")[0]["spec"]["egress"]
    assert not any(p.get("port") == 443 for rule in quiet for p in rule.get("ports", []))
    told = {
        **base,
        "actions": {
            **base["actions"],
            "notifications": [{"name": "chat"}],
            "notificationsSecret": {"name": "hooks"},
        },
    }
    egress = by_kind(told, "NetworkPolicy")[0]["spec"]["egress"]
    hooks = [r for r in egress if any(p.get("port") == 443 for p in r.get("ports", []))]
    assert hooks == [
        {"ports": [{"port": 443, "protocol": "TCP"}], "to": [{"ipBlock": {"cidr": "198.51.100.0/24"}}]}
    ]
