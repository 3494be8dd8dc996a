"""The query service's filter language: `field op value`, `;` = AND, `,` = OR, parentheses group.

AND binds tighter than OR (as in FIQL, which the syntax follows). Names and string values compare
case-insensitively; enum fields compare by ordinal, dates as dates (the documented behaviour).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from exporter.em.parse import ParseError, parse_time

Record = Mapping[str, Any]  # lower-case field name -> str | float | None
Predicate = Callable[[Record], bool]

ORDINALS: dict[str, tuple[str, ...]] = {
    "result": ("success", "warning", "failed"),
    "state": ("starting", "stopping", "working", "stopped"),
}
DATE_FIELDS = frozenset({"creationtime", "endtime"})
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


def _coerce(field: str, raw: str) -> Any:
    if field in DATE_FIELDS:
        try:
            ts = parse_time(raw)
        except ParseError:
            raise FilterError(f"bad date {raw!r} for {field}") from None
        return ts
    if field in ORDINALS:
        values = ORDINALS[field]
        return values.index(raw.lower()) if raw.lower() in values else -1
    return raw.lower()


def _condition(field: str, op: str, raw: str) -> Predicate:
    field = field.lower()
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        raw = raw[1:-1].replace('""', '"')
    want = _coerce(field, raw.strip())
    compare = _OPS[op]

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


def compile_filter(text: str) -> Predicate:
    tokens: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"cannot read filter at {text[pos : pos + 20]!r}")
        if m.group("punct"):
            tokens.append((m.group("punct"), None))
        else:
            tokens.append(("cond", _condition(m.group("cond"), m.group("op"), m.group("value"))))
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
