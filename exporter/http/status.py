"""/status: the failover overview as one self-contained HTML page, for the day Grafana is down.

Server-rendered from the current snapshot: no JavaScript, no external assets; it reloads itself.
Every string that came from EM (plan, VM, tenant, server names, states) or from a caller (reasons)
is HTML-escaped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from exporter import __version__
from exporter.em.model import DR_STATES, Plan, Session, VmTask, failure_text
from exporter.em.timefmt import point_time_from_name
from exporter.http.page_parts import CSS, LOCAL_TIMES, e, when
from exporter.http.page_parts import age as _age
from exporter.http.page_parts import table as _table
from exporter.http.page_parts import ts as _ts
from exporter.polling.snapshot import Snapshot
from exporter.readiness.status_table import readiness_section

REFRESH_SECONDS = 10
MAX_VM_ROWS = 2000  # a page for people: beyond this, the dashboards


def _cls(state: str, result: str) -> str:
    if result == "Failed":
        return "bad"
    if result == "Warning":
        return "warn"
    if result == "Success":
        return "ok"
    return "run" if state != "Stopped" else ""


def _bar(ratio: float) -> str:
    pct = max(0.0, min(100.0, ratio * 100))
    return f'<span class="bar" title="{pct:.0f}%"><span class="fill" style="width:{pct:.0f}%"></span></span> {pct:.0f}%'


def _vm_rows(session: Session, snap: Snapshot, budget: list[int]) -> list[str]:
    rows = []
    for t in session.tasks:
        if budget[0] <= 0:
            break
        budget[0] -= 1
        point = _point_time(t, snap)
        loss = None if point is None or t.start is None else t.start - point
        rows.append(
            f'<tr><td>{e(t.vm)}</td><td class="{_cls(t.state, t.result)}">{e(t.state)}</td>'
            f'<td class="{_cls(t.state, t.result)}">{e(t.result)}</td><td class="p">{_bar(t.progress / 100)}</td>'
            f"<td>{when(t.start)}</td><td>{when(t.end)}</td>"
            f"<td>{when(point)}</td><td>{_age(loss)}</td><td class='bad'>{e(failure_text(t.failure_message))}</td></tr>"
        )
    return rows


# how bad a plan looks, worst first: its latest failover failed, it runs now, a VM is at risk, fine
SEVERITY = ("failed", "running", "at risk", "fine")


def severity(p: Plan, sessions: dict[tuple[str, str], Session], snap: Snapshot, now: float) -> int:
    """The plan's place in SEVERITY: /status lists the worst plans first."""
    s = sessions.get((p.backup_server, p.name))
    if s is not None and (s.result == "Failed" or any(t.result == "Failed" for t in s.tasks)):
        return SEVERITY.index("failed")
    if s is not None and s.active:
        return SEVERITY.index("running")
    r, rpo = snap.readiness, snap.readiness.rpo.get((p.backup_server, p.name))
    for vm in p.vms:
        point = r.latest.get((p.backup_server, vm))
        late = (
            point is not None
            and rpo is not None
            and point.state not in DR_STATES
            and now - point.created > rpo
        )
        if late or (p.backup_server, vm) in r.none:
            return SEVERITY.index("at risk")
    return SEVERITY.index("fine")


def _point_time(t: VmTask, snap: Snapshot) -> float | None:
    point = snap.restore_points.get(t.restore_point_id or "")
    return point if point is not None else point_time_from_name(t.restore_point_name)


@dataclass(frozen=True)
class ActionsView:
    """What the page shows of the guarded start: switches, decisions waiting for approval, recent ones."""

    recent: list[dict[str, Any]]
    pending: list[dict[str, Any]]
    switches: dict[str, Any]
    approval: str  # actions.approval


def _actions(view: ActionsView) -> str:
    sw = view.switches
    flags = (
        f"<p>Kill switch: <b class='{'bad' if sw.get('kill_switch') else 'ok'}'>"
        f"{'ON: every start is refused' if sw.get('kill_switch') else 'off'}</b> &middot; "
        f"dry run: <b>{'on' if sw.get('dry_run') else 'off'}</b> &middot; approval: <b>{e(view.approval)}</b>"
        + (
            f" <span class='muted'>(set at run time by {e(sw.get('set_by'))}, {e(sw.get('set_at'))})</span>"
            if sw.get("source") == "runtime"
            else " <span class='muted'>(from the config)</span>"
        )
        + "</p>"
    )
    rows = [
        f"<tr><td><a href='/status/decisions/{e(d['request_id'])}'>{e(d.get('plan', ''))}</a></td>"
        f"<td>{e(d.get('backup_server', ''))}</td><td>{e(d.get('caller', ''))}</td><td>{e(d.get('source', ''))}</td>"
        f"<td>{e(d.get('time', ''))}</td><td>{e(d.get('expires_at', ''))}</td>"
        f"<td><a href='/status/decisions/{e(d['request_id'])}'>approve or reject</a></td></tr>"
        for d in view.pending
    ]
    pending = (
        "<h2>Waiting for approval</h2>"
        + _table(["Plan", "Backup server", "Requested by", "Source", "Requested", "Expires", ""], rows)
        if rows
        else ""
    )
    rows = [
        f"<tr><td>{e(a.get('time', ''))}</td><td>{e(a.get('source', ''))}</td><td>{e(a.get('caller') or '')}</td>"
        f"<td>{e(a.get('plan') or a.get('plan_ref') or '')}</td><td>{e(a.get('outcome', ''))}</td>"
        f"<td>{e(a.get('reason', ''))}</td></tr>"
        for a in view.recent
    ]
    recent = "<h2>Recent start decisions</h2>" + (
        _table(["Time", "Source", "Caller", "Plan", "Outcome", "Reason"], rows)
        if rows
        else "<p class='muted'>none yet</p>"
    )
    return "<h2>Failover starts</h2>" + flags + pending + recent


def render(
    snap: Snapshot,
    actions: ActionsView | None,
    now: float | None = None,
    data_as_of: dict[str, float] | None = None,
) -> str:
    now = time.time() if now is None else now
    sessions = {(s.backup_server, s.plan): s for s in snap.sessions}
    plans: list[Plan] = sorted(
        snap.plans, key=lambda p: (severity(p, sessions, snap, now), p.backup_server, p.name)
    )
    active = [s for s in snap.sessions if s.active]

    health = (
        f'<p>Enterprise Manager: <span class="badge {"up" if snap.up else "down"}">{"UP" if snap.up else "DOWN"}</span>'
        f" &middot; last good read {e(_age(now - snap.last_success) + ' ago' if snap.last_success else 'never')}"
        f" &middot; last poll {snap.poll_duration:.2f}s, {snap.poll_requests} requests"
        f" &middot; {len(plans)} plans, {len(active)} failovers running</p>"
    )
    if not snap.up and snap.last_success is not None and snap.ready:
        health += (
            f"<p class='bad'>Enterprise Manager cannot be read now. Everything below is as it showed it at "
            f"{e(_ts(snap.last_success))} ({e(_age(now - snap.last_success))} ago): nothing is assumed to "
            "have changed or ended since."
            + (
                ""
                if snap.plans
                else " The last data is older than poll.stale_after_seconds and is not shown."
            )
            + "</p>"
        )
    running_on = sorted({s.backup_server for s in active})
    if running_on and data_as_of is not None:
        health += (
            "<p>EM data of the backup servers with failovers running (EM shows what it last collected "
            "from each, every 15 minutes by default): "
            + ", ".join(
                f"{e(server)} as of {e(_ts(data_as_of[server]))} ({e(_age(now - data_as_of[server]))} ago at most)"
                if server in data_as_of
                else f"{e(server)} unknown"
                for server in running_on
            )
            + "</p>"
        )
    errors = {k: v for k, v in snap.poll_errors.items() if v}
    if errors:
        health += (
            "<p class='muted'>Poll errors so far: "
            + ", ".join(f"{e(k)} {v}" for k, v in sorted(errors.items()))
            + "</p>"
        )

    plan_rows = []
    for p in plans:
        s = sessions.get((p.backup_server, p.name))
        if s is None:
            plan_rows.append(
                f"<tr><td>{e(p.name)}</td><td>{e(p.backup_server)}</td><td>{e(p.tenant)}</td>"
                f"<td>{len(p.vms)}</td><td colspan='5' class='muted'>no failover session</td></tr>"
            )
            continue
        took = (s.end or now) - s.start if s.start is not None else None
        plan_rows.append(
            f"<tr><td><a href='#plan-{e(p.id)}'>{e(p.name)}</a></td><td>{e(p.backup_server)}</td><td>{e(p.tenant)}</td>"
            f"<td>{len(p.vms)}</td><td class='{_cls(s.state, s.result)}'>{e(s.state)}</td>"
            f"<td class='{_cls(s.state, s.result)}'>{e(s.result)}</td><td class='p'>{_bar(s.progress / 100)}</td>"
            f"<td>{when(s.start)}</td><td>{_age(took)}{'' if s.end else ' so far'}</td></tr>"
        )
    parts = [
        f"<h2>Plans</h2>{_table(['Plan', 'Backup server', 'Tenant', 'VMs', 'State', 'Result', 'Progress', 'Started', 'Duration'], plan_rows)}"
    ]
    parts.append(readiness_section(snap, now))
    budget = [MAX_VM_ROWS]
    # running sessions first: that is what someone opening this page during a disaster looks for
    for s in sorted(snap.sessions, key=lambda x: (not x.active, x.backup_server, x.plan)):
        plan = next((p for p in plans if (p.backup_server, p.name) == (s.backup_server, s.plan)), None)
        anchor = f" id='plan-{e(plan.id)}'" if plan else ""
        rows = _vm_rows(s, snap, budget)
        parts.append(
            f"<h3{anchor}>{e(s.plan)} <span class='muted'>on {e(s.backup_server)} &middot; session {e(s.id)}</span></h3>"
            + (
                f"<p class='bad'>EM says: {e(failure_text(s.failure_message))}</p>"
                if s.failure_message
                else ""
            )
            + (
                _table(
                    [
                        "VM",
                        "State",
                        "Result",
                        "Progress",
                        "Started",
                        "Ended",
                        "Restore point",
                        "Data-loss window",
                        "EM's failure message",
                    ],
                    rows,
                )
                if rows
                else "<p class='muted'>no VM tasks</p>"
            )
        )
    if budget[0] <= 0:
        parts.append(
            f"<p class='muted'>Only the first {MAX_VM_ROWS} VMs are listed; see the dashboards for all.</p>"
        )
    if actions is not None:
        parts.insert(0, _actions(actions))
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='refresh' content='{REFRESH_SECONDS}'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>Veeam cloud failover status</title><style>{CSS}</style></head><body>"
        f"<h1>Veeam cloud failover status</h1><p class='muted'>veeam-failover-exporter {e(__version__)} &middot; "
        f"generated {_ts(now)} &middot; refreshes every {REFRESH_SECONDS}s</p>"
        f"{health}{''.join(parts)}<script>{LOCAL_TIMES}</script></body></html>"
    )
