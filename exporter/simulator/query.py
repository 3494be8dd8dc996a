"""The query service's filter language: `field op value`, `;` = AND, `,` = OR, parentheses group.

AND binds tighter than OR (as in FIQL, which the syntax follows). Names and string values compare
case-insensitively; enum fields compare by ordinal, dates as dates (the documented behaviour).
How DateTime values and UID values are read varies between EM versions (simulator/profiles.py).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from exporter.em.errors import ParseError
from exporter.em.timefmt import parse_time

Record = Mapping[str, Any]  # lower-case field name -> str | float | None
Predicate = Callable[[Record], bool]

ORDINALS: dict[str, tuple[str, ...]] = {
    "result": ("success", "warning", "failed"),
    "state": ("starting", "stopping", "working", "stopped"),
}
DATE_FIELDS = frozenset({"creationtime", "endtime"})
_ZONE = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")
ALL_UID_FORMS = frozenset({"urn", "guid"})
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_TOKEN = re.compile(
    r"\s*(?:(?P<punct>[(),;])|(?P<cond>[A-Za-z][A-Za-z0-9]*)\s*(?P<op>==|!=|<=|>=|<|>)\s*"
    r'(?P<value>"(?:[^"]|"")*"|[^,;()]*))'
)


class FilterError(ValueError):
    pass


@dataclass(frozen=True)
class Reading:
    """How this EM reads filter values: DateTime values without a zone (and, if `honour_zone` is
    false, every DateTime value) are the server's local time at `local_offset` seconds east of UTC;
    a UID value matches in the `uid_forms` given (the URN, the bare GUID)."""

    local_offset: float = 0.0
    honour_zone: bool = True
    uid_forms: frozenset[str] = ALL_UID_FORMS


def _date(raw: str, field: str, reading: Reading) -> float | None:
    zoned = _ZONE.search(raw) is not None
    if zoned and not reading.honour_zone:
        raw, zoned = _ZONE.sub("", raw), False
    try:
        ts = parse_time(raw)
    except ParseError:
        raise FilterError(f"bad date {raw!r} for {field}") from None
    if ts is None or zoned:
        return ts
    return ts - reading.local_offset  # local T at UTC+X is UTC T-X


def _coerce(field: str, raw: str, reading: Reading) -> Any:
    if field in DATE_FIELDS:
        return _date(raw, field, reading)
    if field in ORDINALS:
        values = ORDINALS[field]
        return values.index(raw.lower()) if raw.lower() in values else -1
    return raw.lower()


def _condition(field: str, op: str, raw: str, reading: Reading) -> Predicate:
    field = field.lower()
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        raw = raw[1:-1].replace('""', '"')
    want = _coerce(field, raw.strip(), reading)
    compare = _OPS[op]
    if field == "uid" and op in ("==", "!="):
        return _uid_condition(want, op == "==", reading.uid_forms)

    def check(rec: Record) -> bool:
        if field not in rec:
            raise FilterError(f"unknown field {field!r}")
        have = rec[field]
        if have is None or want is None:
            return op == "!=" and (have is None) != (want is None)
        if field in ORDINALS:
            values = ORDINALS[field]
            have = values.index(str(have).lower()) if str(have).lower() in values else -1
        elif isinstance(have, str):
            have = have.lower()
        return bool(compare(have, want))

    return check


def _uid_condition(want: str, equal: bool, forms: frozenset[str]) -> Predicate:
    def check(rec: Record) -> bool:
        have = str(rec.get("uid") or "").lower()
        accepted = set()
        if "urn" in forms:
            accepted.add(have)
        if "guid" in forms:
            accepted.add(have.rpartition(":")[2])
        return (want in accepted) == equal

    return check


def compile_filter(
    text: str,
    *,
    local_offset: float = 0.0,
    honour_zone: bool = True,
    uid_forms: frozenset[str] = ALL_UID_FORMS,
) -> Predicate:
    reading = Reading(local_offset, honour_zone, uid_forms)
    tokens: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"cannot read filter at {text[pos : pos + 20]!r}")
        if m.group("punct"):
            tokens.append((m.group("punct"), None))
        else:
            tokens.append(("cond", _condition(m.group("cond"), m.group("op"), m.group("value"), reading)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1

    i = 0

    def or_expr() -> Predicate:
        parts = [and_expr()]
        while peek() == ",":
            take()
            parts.append(and_expr())
        return lambda r: any(p(r) for p in parts)

    def and_expr() -> Predicate:
        parts = [atom()]
        while peek() == ";":
            take()
            parts.append(atom())
        return lambda r: all(p(r) for p in parts)

    def atom() -> Predicate:
        kind, value = take()
        if kind == "(":
            inner = or_expr()
            if take()[0] != ")":
                raise FilterError("missing ')'")
            return inner
        if kind != "cond":
            raise FilterError(f"unexpected {kind!r}")
        pred: Predicate = value
        return pred

    def peek() -> str | None:
        return tokens[i][0] if i < len(tokens) else None

    def take() -> tuple[str, Any]:
        nonlocal i
        if i >= len(tokens):
            raise FilterError("filter ends too early")
        i += 1
        return tokens[i - 1]

    pred = or_expr()
    if i != len(tokens):
        raise FilterError("trailing characters in filter")
    return pred
