"""Who holds what while a start is decided: one lock per plan (its checks and its start, an approval,
an expiry), and the limits' lock (the hourly limits across plans, and the runtime switches changing)."""

from __future__ import annotations

import threading


class StartLocks:
    def __init__(self) -> None:
        self._plans: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.limits = threading.Lock()

    def plan(self, plan_id: str) -> threading.Lock:
        with self._guard:
            return self._plans.setdefault(plan_id, threading.Lock())
