"""The small pieces of the exporter's own HTML pages: escaping, times, ages, tables."""

from __future__ import annotations

import base64
import hashlib
import html
import time
from collections.abc import Iterable

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .2em} h2{font-size:1.15em;margin:1.4em 0 .4em} h3{font-size:1em;margin:1em 0 .3em}
table{border-collapse:collapse;background:#fff;margin-bottom:.5em} td,th{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:left}
th{background:#eee} .muted{color:#777} .bar{width:12em;height:.9em;background:#e3e3e3;border-radius:3px;overflow:hidden;display:inline-block;vertical-align:middle}
.fill{display:block;height:100%;background:#3b82f6} td.p{white-space:nowrap} .ok{color:#15803d;font-weight:600} .warn{color:#b45309;font-weight:600}
.bad{color:#b91c1c;font-weight:600} .run{color:#1d4ed8;font-weight:600} .badge{padding:.1em .5em;border-radius:3px;color:#fff}
.badge.up{background:#15803d} .badge.down{background:#b91c1c}
"""


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


def ts(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def when(stamp: float | None) -> str:
    """A time for a table cell: UTC as text, which LOCAL_TIMES turns into the reader's own zone (UTC
    then in its tooltip); without scripts, UTC stays."""
    if stamp is None:
        return ""
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))
    return f'<time datetime="{iso}">{ts(stamp)}</time>'


# The one script of /status, allowed by its hash in the page's Content-Security-Policy (nothing else runs):
# each <time> shows the browser's zone, and UTC in its tooltip.
LOCAL_TIMES = (
    "for(const t of document.querySelectorAll('time[datetime]')){"
    "t.title=t.textContent;"
    "t.textContent=new Date(t.dateTime).toLocaleString(undefined,{timeZoneName:'short'});}"
)
LOCAL_TIMES_HASH = "sha256-" + base64.b64encode(hashlib.sha256(LOCAL_TIMES.encode()).digest()).decode()


def age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(max(0, seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    parts = [f"{d}d"] if d else []
    if h or d:
        parts.append(f"{h}h")
    parts.append(f"{m}m" if (m or h or d) else f"{s}s")
    return " ".join(parts)


def table(headers: Iterable[str], rows: Iterable[str]) -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
