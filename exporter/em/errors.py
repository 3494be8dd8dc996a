"""What goes wrong talking to EM: a failed call (EMError, with a bounded reason) or an unreadable answer."""

from __future__ import annotations


class EMError(Exception):
    """A failed EM call. `reason` is a bounded label value; the message never holds secrets."""

    def __init__(self, reason: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


class ParseError(ValueError):
    """An EM answer we could not read. The message is safe to log and to count."""
