"""EM's time formats: `...UTC` timestamps, replica point names, and the DateTime form of query filters."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime
from typing import Any

from exporter.em.errors import ParseError

# Dates before this are EM's "never" (SQL Server's minimum date shows up as 1753-01-01).
_NEVER_BEFORE = calendar.timegm((1900, 1, 1, 0, 0, 0))
_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$"
)
# EM 13 writes fractions of a second into point names: `vm@2025-08-15 20:00:24.003406`
_POINT_NAME_RE = re.compile(r"@(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$")


def parse_time(value: str | None) -> float | None:
    """EM's `...UTC` timestamps (ISO 8601, 0-7 fraction digits, `Z` or no zone) -> Unix seconds."""
    if value is None or not value.strip():
        return None
    m = _ISO_RE.match(value.strip())
    if not m:
        raise ParseError(f"bad timestamp {value[:40]!r}")
    base = _utc_seconds(m.groups()[:6])
    if base is None:
        raise ParseError(f"bad timestamp {value[:40]!r}")
    ts = base + (float("0." + m.group(7)) if m.group(7) else 0.0)
    zone = m.group(8)
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        hh, mm = int(zone[1:3]), int(zone[-2:])
        ts -= sign * (hh * 3600 + mm * 60)
    return None if ts < _NEVER_BEFORE else ts


def point_time_from_name(name: str | None) -> float | None:
    """`vm@YYYY-MM-DD HH:MM:SS[.ffffff]` -> Unix seconds, read as UTC (the name carries no zone)."""
    if not name:
        return None
    m = _POINT_NAME_RE.search(name)
    if m is None:
        return None
    base = _utc_seconds(m.groups()[:6])
    if base is None or not m.group(7):
        return base
    return base + float("0." + m.group(7))


def _utc_seconds(fields: tuple[str | Any, ...]) -> float | None:
    """Y, M, D, h, m, s as strings -> Unix seconds, or None if that is no real date (e.g. 30 February)."""
    try:
        y, mo, d, h, mi, s = (int(x) for x in fields)
        return datetime(y, mo, d, h, mi, s, tzinfo=UTC).timestamp()
    except (ValueError, OverflowError):
        return None


def em_time(ts: float) -> str:
    """Unix seconds -> the UTC form EM's query filters document (13.x: "accepts only UTC-formatted
    DateTime values", e.g. 2025-08-15T06:00:00Z). Whole seconds: EM compares on them."""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def creation_filter(since: float) -> str:
    """EM's filter syntax as its own links write it: `field>=value`, the value in double quotes."""
    return f'CreationTime>="{em_time(since)}"'
