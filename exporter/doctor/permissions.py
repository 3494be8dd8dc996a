"""What the EM account may do, where EM's API shows it: the Start link of a plan (its start) and of a
backup server (a data collection, `poll.collect`). Nothing is started or collected: the links are read.
Whether EM leaves out the links a role may not take is not documented, so a link shown is no promise;
a link missing, or the entity refused, is worth knowing before the day it matters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from exporter.doctor.model import Check, Found
from exporter.em.errors import EMError

if TYPE_CHECKING:
    from exporter.em.client import EMClient

ROLE_HINT = "EM's Portal Administrator role starts cloud failover plans and asks for collections"


def may_start(client: EMClient, found: Found) -> Check:
    if not found.plans:
        return Check("may start", "SKIP", "no plan to look at")
    plan = found.plans[0]
    try:
        offered = client.action_links("plan", plan.id)
    except EMError as exc:
        return Check("may start", "WARN", f"plan {plan.name!r}: {exc}", ROLE_HINT)
    if "action=start" in offered.get("Start", ""):
        return Check(
            "may start",
            "OK",
            f"EM offers this account the Start of plan {plan.name!r} (a start itself is the last word)",
        )
    return Check(
        "may start",
        "WARN",
        f"EM offers this account no Start of plan {plan.name!r}: starts through the exporter may be refused",
        ROLE_HINT,
    )


def may_collect(client: EMClient, found: Found) -> Check:
    plan = next((p for p in found.plans if p.backup_server_id), None)
    if plan is None:
        return Check("may collect", "SKIP", "no plan names its backup server's ID")
    try:
        offered = client.action_links("backup server", plan.backup_server_id)
    except EMError as exc:
        hint = f"poll.collect would be refused here; {ROLE_HINT}"
        return Check("may collect", "WARN", f"backup server {plan.backup_server}: {exc}", hint)
    if "action=collect" in offered.get("Start", ""):
        return Check(
            "may collect",
            "OK",
            f"EM offers this account a data collection from {plan.backup_server} (poll.collect may ask)",
        )
    return Check(
        "may collect",
        "WARN",
        f"EM offers this account no data collection from {plan.backup_server}: poll.collect may be refused",
        ROLE_HINT,
    )
