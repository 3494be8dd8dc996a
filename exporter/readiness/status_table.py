"""/status's readiness table: per plan, how much a failover now would lose, and the VMs that need a look
(never replicated, past their RPO, running in DR). Every name from EM is escaped."""

from __future__ import annotations

from exporter.em.model import DR_STATES, Plan
from exporter.http.page_parts import age, e, table, ts, when
from exporter.polling.snapshot import Snapshot
from exporter.readiness.state import LatestPoint, in_dr_since

MAX_ATTENTION_ROWS = 500  # a page for people: beyond this, the dashboards


def readiness_section(snap: Snapshot, now: float) -> str:
    r = snap.readiness
    if r.read_at is None:
        return "<h2>Readiness</h2><p class='muted'>replica points not read yet</p>"
    sessions = {(s.backup_server, s.plan): s for s in snap.sessions}
    plan_rows: list[str] = []
    attention: list[tuple[int, str]] = []  # (order, row): never replicated, past RPO, in DR
    for p in sorted(snap.plans, key=lambda p: (p.backup_server, p.name)):
        rpo = r.rpo.get((p.backup_server, p.name))
        counts = {"risk": 0, "none": 0, "dr": 0}
        newest = []
        for vm in dict.fromkeys(p.vms):
            point = r.latest.get((p.backup_server, vm))
            if (p.backup_server, vm) in r.removed:
                why = "points removed after a permanent failover: it runs at the provider for good"
                attention.append((2, _vm_row(p, vm, "run", why, None, now)))
                continue
            if point is None:
                if (p.backup_server, vm) in r.none:
                    counts["none"] += 1
                    attention.append((0, _vm_row(p, vm, "bad", "never replicated", None, now)))
                continue
            newest.append(point.created)
            if point.state in DR_STATES:
                counts["dr"] += point.state == "Failover"
                since = in_dr_since(point, sessions.get((p.backup_server, p.name)), vm)
                why = f"{point.state} since {ts(since)}"
                attention.append((2, _vm_row(p, vm, "run", why, point, now)))
            elif rpo is not None and now - point.created > rpo:
                counts["risk"] += 1
                attention.append((1, _vm_row(p, vm, "warn", "past its RPO", point, now)))
        worst = f"{ts(min(newest))} ({age(now - min(newest))} ago)" if newest else ""
        cells = [e(p.name), e(p.backup_server), e(p.tenant), str(len(p.vms)), age(rpo), worst]
        marks = (("risk", "warn"), ("none", "bad"), ("dr", "run"))
        plan_rows.append(
            "<tr>"
            + "".join(f"<td>{c}</td>" for c in cells)
            + "".join(f"<td class='{cls if counts[k] else ''}'>{counts[k]}</td>" for k, cls in marks)
            + "</tr>"
        )
    head = (
        "<h2>Readiness</h2><p class='muted'>If a site failed now: each plan's oldest newest replica point, "
        "as EM shows it (as of its last collection). Replica points last read successfully "
        + (e(ts(r.read_ok_at)) if r.read_ok_at is not None else "never")
        + ("" if r.read_ok_at == r.read_at else f"; the latest read, {e(ts(r.read_at))}, failed")
        + ("" if r.complete else ", first read still going on")
        + ".</p>"
    )
    rows = [row for _, row in sorted(attention, key=lambda a: a[0])][:MAX_ATTENTION_ROWS]
    needing = (
        "<h3>VMs that need a look</h3>"
        + table(["VM", "Plan", "Backup server", "Why", "Newest point", "Age"], rows)
        if rows
        else "<p class='ok'>Every plan VM has a replica point within its plan's RPO.</p>"
    )
    plans = table(
        [
            "Plan",
            "Backup server",
            "Tenant",
            "VMs",
            "RPO",
            "Oldest newest point",
            "Past RPO",
            "No point",
            "In DR",
        ],
        plan_rows,
    )
    return head + plans + needing


def _vm_row(p: Plan, vm: str, cls: str, why: str, point: LatestPoint | None, now: float) -> str:
    created = "" if point is None else when(point.created)
    point_age = "" if point is None else age(now - point.created)
    return (
        f"<tr><td>{e(vm)}</td><td>{e(p.name)}</td><td>{e(p.backup_server)}</td>"
        f"<td class='{cls}'>{e(why)}</td><td>{created}</td><td>{point_age}</td></tr>"
    )
