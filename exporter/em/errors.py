"""What goes wrong talking to EM: a failed call (EMError, with a bounded reason) or an unreadable answer."""

from __future__ import annotations

from typing import Literal, get_args

# Why a call to EM failed: the `reason` label of veeam_em_poll_errors_total and
# veeam_em_request_errors_total. The one list: the metrics pre-register it, the README documents it.
Reason = Literal[
    "timeout",  # no (whole) answer in time
    "connect",  # no connection
    "tls",  # EM's certificate not trusted
    "protocol",  # the connection broke, or HTTP itself went wrong
    "http_4xx",  # EM refused the request
    "http_5xx",  # EM failed or is overloaded
    "logon",  # EM refused our credentials
    "parse",  # an answer (or an item in it) we could not read
    "paging",  # the query service's paging went round in circles or never ended
    "too_large",  # an answer over em.max_body_bytes
    "content_type",  # not XML: a proxy or a login page in between
]
REASONS: tuple[Reason, ...] = get_args(Reason)


class EMError(Exception):
    """A failed EM call. `reason` is a bounded label value; the message never holds secrets."""

    def __init__(
        self,
        reason: Reason,
        message: str,
        status: int | None = None,
        *,
        sent: bool = True,
        from_em: bool = False,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status
        # False only when the request surely never left: no connection, or the logon before it failed.
        # A start whose request may have been sent may have been carried out.
        self.sent = sent
        # The answer was EM's own Error document (not a proxy's or a gateway's page): EM refused it.
        self.from_em = from_em


class ParseError(ValueError):
    """An EM answer we could not read. The message is safe to log and to count."""
