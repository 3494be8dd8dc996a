"""Fault switches for the simulated EM: set by a scenario's `faults:`, by tests, or at run time."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass
class Faults:
    """Fault switches, set by a scenario's `faults:`, by tests, or at run time via POST /_sim/faults.

    The answer faults (status to unknown_enums) hit API calls other than GET /api/; `remaining`
    limits how many calls they hit (None: until cleared).
    """

    latency: float = 0.0  # seconds added to every API answer
    jitter: float = 0.0  # up to this many seconds more, at random
    status: int | None = None  # answer with this status and EM's Error body (503: EM overloaded)
    garbage: bool = False  # 200 with a body that is not XML
    truncate: bool = False  # 200 with the XML cut in half
    reset: bool = False  # the connection is closed half-way through the answer
    content_type: str | None = None  # answer with this Content-Type (e.g. text/html from a proxy)
    huge_bytes: int = 0  # answer with a (valid) body this large
    trickle: float = 0.0  # send the answer 64 bytes at a time, this many seconds apart (slowloris)
    unknown_enums: bool = False  # State and Result values EM never documented
    remaining: int | None = None
    only_method: str | None = None  # the answer faults hit only calls of this method (POST: the actions)
    refuse_logon: bool = False  # logons fail with 401 whatever the credentials
    expire_tokens_in: int | None = None  # forget every logon session after this many more API calls
    duplicate_sessions: bool = False  # the session query lists every session twice, out of order
    page_forever: bool = False  # the session query always has a Next page
    collect_status: int | None = None  # POST /api/backupServers/{ID}?action=collect answers this error
    collect_hangs: bool = False  # a collection asked for never finishes (its task stays Running)

    ANSWER_FAULTS = (
        "status",
        "garbage",
        "truncate",
        "reset",
        "content_type",
        "huge_bytes",
        "trickle",
        "unknown_enums",
    )

    def take(self, method: str = "GET") -> Faults | None:
        """The answer faults for one API call (and count it against `remaining`)."""
        if not any(getattr(self, f) for f in self.ANSWER_FAULTS):
            return None
        if self.only_method is not None and method != self.only_method:
            return None
        if self.remaining is not None:
            if self.remaining <= 0:
                return None
            self.remaining -= 1
        return dataclasses.replace(self)

    def update(self, data: dict[str, object]) -> None:
        """Set switches from a mapping (unknown names are an error); the others go back to off."""
        known = {f.name: f for f in dataclasses.fields(self)}
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"unknown fault {sorted(unknown)[0]!r}; known: {', '.join(sorted(known))}")
        fresh = Faults(**data)  # type: ignore[arg-type]
        for name in known:
            setattr(self, name, getattr(fresh, name))
