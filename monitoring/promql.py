"""PromQL pieces the rules and the dashboards share: the label sets that identify a series, the
exporter's selector, the state vocabularies (from the exporter's own model, never copied), and the
queries both need (a plan VM at risk), written once."""

from __future__ import annotations

from collections.abc import Callable

from exporter.em.model import DR_STATES, REPLICA_POINT_STATES

P = "job, instance, backup_server, plan"  # what identifies a plan's series: its exporter, server, name
V = f"{P}, vm"
# the plan-level alerts carry the plan's tenant, from veeam_failover_plan_info, so Alertmanager can
# route per tenant; those of start requests name a plan only by name (it may be on several servers)
TENANT = "tenant"
# a replica point State in which its VM runs in DR (the model's order, so the text is stable)
IN_DR = "|".join(s for s in REPLICA_POINT_STATES if s in DR_STATES)

Series = Callable[..., str]  # (metric name, more matchers="") -> the metric with its selector


def series(selector: str) -> Series:
    """Names metrics with `selector` (and more matchers)."""

    def named(name: str, matchers: str = "") -> str:
        return f"{name}{{{selector}{', ' + matchers if matchers else ''}}}"

    return named


def block(expr: str) -> str:
    """A multi-line expression ends in a newline, as mixins write them (a YAML `|` block, a jsonnet
    `|||` block)."""
    return expr + "\n" if "\n" in expr and not expr.endswith("\n") else expr


def at_risk(m: Series, age: str) -> str:
    """Plan VMs whose newest replica point (`age`: its age in seconds, per VM) is older than their plan's
    RPO, leaving out VMs running in DR (replication to them has stopped by design)."""
    dr = m("veeam_failover_plan_vm_restore_point_state", f'state=~"{IN_DR}"')
    return (
        f"{age}\n> on ({P}) group_left () {m('veeam_failover_plan_rpo_seconds')}\nunless on ({V}) ({dr} == 1)"
    )
