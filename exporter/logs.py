"""The exporter's own log: one format, one level, third-party loggers kept in their place, and two
promises kept for every line, whoever logged it:

- no secret: the EM session token, passwords and caller tokens are registered here as they become
  known, and a filter on the handler replaces them (and any `X-RestSvcSessionId` header value) with
  `[redacted]`; httpcore, whose DEBUG lines carry whole response headers, speaks only from WARNING;
- no forged line: control characters in a message (CR, LF, ESC from a request path or an alert
  label) are escaped, so one record is one line. `log_format: json` writes one JSON object a line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from typing import Any

_SECRETS: set[str] = set()
_LOCK = threading.Lock()
_HEADER = re.compile(r"(X-RestSvcSessionId['\"]?\s*[:=,]\s*b?['\"]?)([^'\"\s,)\]]+)", re.IGNORECASE)
# control characters, and the characters some viewers break a line at (U+2028, U+2029) or that turn
# text around (bidi controls): a forged log line must not look like one
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
QUIET_LOGGERS = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "hpack": logging.WARNING}


def register_secret(value: str) -> None:
    """From now on, this value never appears in a log line (values under 8 characters are not worth it:
    they would redact ordinary words)."""
    if len(value) >= 8:
        with _LOCK:
            _SECRETS.add(value)


def redact(text: str) -> str:
    text = _HEADER.sub(r"\1[redacted]", text)
    with _LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, "[redacted]")
    return text


def escape(text: str) -> str:
    return _CONTROL.sub(_escaped, text)


def _escaped(m: re.Match[str]) -> str:
    code = ord(m.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class _Redacting(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = redact(record.getMessage())
        record.msg, record.args = message, None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class _TextFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        return redact(super().formatException(ei))


class _JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=True)


def setup_logging(level: str, fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Redacting())
    if fmt == "json":
        handler.setFormatter(_JSONFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request at INFO (our metrics' job); httpcore's DEBUG lines carry whole headers
    for name, floor in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(floor, root.level))
