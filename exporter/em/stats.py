"""Counters about our traffic to EM, kept by the client and read by the poller and the collectors."""

from __future__ import annotations

import threading
from collections import Counter
from contextvars import ContextVar
from dataclasses import dataclass, field

# Set by the readiness reader while it reads (readiness/reader.py): its requests share the client and its
# counters, but are no poll's, so a poll's request count and budget leave them out.
APART_FROM_POLLS: ContextVar[bool] = ContextVar("apart_from_polls", default=False)


@dataclass
class RequestStats:
    """Counters about our traffic to EM, read by the collector."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)  # (endpoint, code)
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)  # (endpoint, reason)
    logons: int = 0
    bytes_received: int = 0
    # Requests a poll's budget counts: every one but the logons (one per EM session, not per poll).
    charged: int = 0
    apart: int = 0  # requests made apart from the polls (APART_FROM_POLLS), logons included
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, endpoint: str, code: str, nbytes: int = 0, *, charged: bool = True) -> None:
        with self._lock:
            self.requests[(endpoint, code)] += 1
            self.bytes_received += nbytes
            self.charged += charged
            self.apart += APART_FROM_POLLS.get()

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    @property
    def polled(self) -> int:
        """Requests the polls made (and the actions): all but those made apart."""
        with self._lock:
            return sum(self.requests.values()) - self.apart

    @property
    def polled_charged(self) -> int:
        with self._lock:
            return self.charged - self.apart

    def error(self, endpoint: str, reason: str) -> None:
        with self._lock:
            self.errors[(endpoint, reason)] += 1

    def logon(self) -> None:
        with self._lock:
            self.logons += 1

    def copy(self) -> RequestStats:
        with self._lock:
            return RequestStats(
                requests=Counter(self.requests),
                errors=Counter(self.errors),
                logons=self.logons,
                bytes_received=self.bytes_received,
                charged=self.charged,
                apart=self.apart,
            )
