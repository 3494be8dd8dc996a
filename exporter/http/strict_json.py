"""JSON from callers, read strictly: a key given twice is refused (`{"dry_run": true, ..., "dry_run":
false}` must never start a real failover), nesting is bounded, and text that is not valid Unicode (a
lone surrogate from a `\\ud800` escape) becomes U+FFFD before anything stores or shows it."""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 32  # no request or Alertmanager payload nests anywhere near this
_SURROGATE = re.compile("[\ud800-\udfff]")


class StrictJSONError(ValueError):
    """The body is not JSON we accept; the message says why and is safe to show."""


def loads(body: bytes | str) -> Any:
    try:
        data = json.loads(body, object_pairs_hook=_object)
    except RecursionError:
        raise StrictJSONError("JSON nested too deeply") from None
    except StrictJSONError:
        raise
    except (ValueError, UnicodeDecodeError):
        raise StrictJSONError("body is not JSON (or not valid JSON)") from None
    if _depth(data) > MAX_DEPTH:
        raise StrictJSONError(f"JSON nested deeper than {MAX_DEPTH} levels")
    return data


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        key = clean(key)
        if key in out:
            raise StrictJSONError(f"key {key[:40]!r} given twice")
        out[key] = clean(value) if isinstance(value, str) else value
    return out


def clean(text: str) -> str:
    """Valid Unicode: every lone surrogate replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def _depth(value: Any, level: int = 1) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level
