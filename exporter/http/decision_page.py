"""The page an approver opens from /status or a notification's link: one pending decision, and a form
that approves or rejects it with the approver's own token.

The token is typed into the form and sent in the POST body: never in a URL (no history, no proxy log,
no Referer), and a page on another site cannot post the form for someone (it does not know the token,
and the endpoint refuses another Origin). No script: the page's policy allows its own style and forms
posted back to this exporter only."""

from __future__ import annotations

from typing import Any

from exporter.http.page_parts import CSS, e
from exporter.http.page_parts import age as _age

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
}
SHOWN = (
    ("Plan", "plan"),
    ("Backup server", "backup_server"),
    ("Requested by", "caller"),
    ("Source", "source"),
    ("Requested at", "time"),
    ("Expires at", "expires_at"),
    ("Start from", "start"),
    ("Reason given", "reason_given"),
    ("Alert fingerprint", "alert_fingerprint"),
)


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{e(title)}</title><style>{CSS}</style></head><body><h1>{e(title)}</h1>{body}"
        "<p><a href='/status'>Back to the status page</a></p></body></html>"
    )


def render(
    decision_id: str, record: dict[str, Any] | None, now: dict[str, Any] | None, timeout_seconds: float
) -> str:
    """The decision as it stands, and what approving it does *now* (not what it did when requested): the
    form carries the mode and fingerprint shown, so an approval of facts that changed is refused."""
    if record is None or now is None:
        return _page("No pending decision", "<p>It was approved, rejected or expired, or never made.</p>")
    rows = "".join(
        f"<tr><th>{e(label)}</th><td>{e(record.get(key) if record.get(key) is not None else '')}</td></tr>"
        for label, key in SHOWN
    )
    alert = record.get("alert")
    if isinstance(alert, dict) and alert:
        labels = ", ".join(f"{e(k)}={e(v)}" for k, v in sorted(alert.items()))
        rows += f"<tr><th>Alert labels</th><td>{labels}</td></tr>"
    rows += f"<tr><th>Plan now</th><td>{e(now['plan_state'])}</td></tr>"
    rows += _fact_rows(now.get("plan_facts"))
    passes = now["checks"] == "pass"
    checks = "every check passes now" if passes else f"refused now: {now['checks']}"
    css = "ok" if passes else "bad"
    rows += f"<tr><th>Checks now</th><td class='{css}'>{e(checks)}</td></tr>"
    mode = now["mode"]
    button = "Approve: start the failover" if mode == "start" else "Approve: dry run only"
    form = (
        f"<form method='post' action='/api/v1/decisions/{e(decision_id)}/approve'>"
        f"<input type='hidden' name='mode' value='{e(mode)}'>"
        f"<input type='hidden' name='fingerprint' value='{e(now['fingerprint'])}'>"
        "<p><label>Your approver token <input type='password' name='token' autocomplete='off' required>"
        "</label></p><p><label>Reason (optional) <input type='text' name='reason' maxlength='500'>"
        f"</label></p><p><button type='submit'>{e(button)}</button> "
        f"<button type='submit' formaction='/api/v1/decisions/{e(decision_id)}/reject'>Reject</button></p>"
        "</form>"
    )
    body = (
        f"<p>Decision <code>{e(decision_id)}</code> waits for an approver. Approving it now: "
        f"<b class='{'bad' if mode == 'start' else ''}'>{e(now['mode_reason'])}</b>. Every check runs "
        "again first; if what approving does has changed since this page was loaded (the mode, the checks, "
        "the plan's state), nothing is done and the new facts are shown. The requester cannot approve it; "
        f"unanswered, it expires {timeout_seconds / 60:g} minutes after the request.</p>"
        f"<table><tbody>{rows}</tbody></table>{form}"
    )
    return _page("Failover start waiting for approval", body)


def result(status: int, content: dict[str, Any]) -> str:
    """What an approve or reject from the form came to."""
    outcome = str(content.get("outcome", ""))
    title = {
        "accepted": "Approved: Enterprise Manager accepted the start",
        "dry_run": "Approved: dry run, nothing was sent to EM",
        "rejected": "Rejected: nothing will start",
    }.get(outcome, f"Not done ({outcome or status})")
    rows = "".join(
        f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in content.items() if isinstance(v, str | int)
    )
    now = content.get("now")
    if isinstance(now, dict):  # refused because it changed: what approving does now
        rows += "".join(f"<tr><th>now: {e(k)}</th><td>{e(v)}</td></tr>" for k, v in now.items())
    back = content.get("request_id")
    link = f"<p><a href='/status/decisions/{e(back)}'>Look again</a></p>" if isinstance(now, dict) else ""
    return _page(title, f"<table><tbody>{rows}</tbody></table>{link}")


def _fact_rows(facts: Any) -> str:
    """What the approver should know of the plan before a failover starts (actions/plan_facts.py)."""
    if not isinstance(facts, dict):
        return "<tr><th>Plan facts</th><td class='bad'>the plan is not among EM's plans now</td></tr>"
    loss = facts.get("expected_data_loss_seconds")
    age = facts.get("em_data_age_seconds")
    never = facts.get("never_replicated") or []
    in_dr = facts.get("in_dr") or []
    cells = [
        ("Tenant", e(facts.get("tenant", "")), ""),
        ("VMs", e(facts.get("vm_count", "")), ""),
        (
            "Expected data loss",
            "unknown (replica points not read)"
            if loss is None
            else f"{e(_age(loss))} (its VMs' oldest newest point)",
            "",
        ),
        ("Never replicated", e(", ".join(never)) if never else "none", "bad" if never else ""),
        ("Already in DR", e(", ".join(in_dr)) if in_dr else "none", "bad" if in_dr else ""),
        ("EM's data of its backup server", "unknown" if age is None else f"{e(_age(age))} old at least", ""),
    ]
    return "".join(f"<tr><th>{label}</th><td class='{css}'>{value}</td></tr>" for label, value, css in cells)
