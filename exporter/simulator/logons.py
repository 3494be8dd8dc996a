"""The simulated EM's logon sessions: Basic logon, the token (base64 of the session ID, as EM makes it),
the 15-minute idle expiry, logout, and the users' EM roles."""

from __future__ import annotations

import base64
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only
    from exporter.simulator.scenario_model import Scenario


@dataclass
class Logon:
    session_id: str
    token: str
    username: str
    last_used: float


class Logons:
    def __init__(self, scenario: Scenario, clock: Callable[[], float], lock: threading.RLock) -> None:
        self.scenario = scenario
        self.clock = clock
        self.lock = lock
        self.by_token: dict[str, Logon] = {}

    def role(self, username: str) -> str:
        return self.scenario.roles.get(username, "portal_administrator")

    def logon(self, username: str, password: str) -> Logon | None:
        expected = self.scenario.users.get(username)
        if expected is None or not secrets.compare_digest(expected.encode(), password.encode()):
            return None
        sid = str(uuid.uuid4())
        # base64(SessionId), as EM does, so clients that derive the token from the body still work
        token = base64.b64encode(sid.encode()).decode()
        logon = Logon(session_id=sid, token=token, username=username, last_used=self.clock())
        with self.lock:
            self.by_token[token] = logon
        return logon

    def authenticate(self, token: str | None) -> Logon | None:
        if not token:
            return None
        now = self.clock()
        with self.lock:
            logon = self.by_token.get(token)
            if logon is None:
                return None
            if now - logon.last_used > self.scenario.token_idle_timeout:
                del self.by_token[token]
                return None
            logon.last_used = now
            return logon

    def logout(self, session_id: str, caller: Logon) -> bool:
        with self.lock:
            for token, logon in list(self.by_token.items()):
                if logon.session_id == session_id and logon.username == caller.username:
                    del self.by_token[token]
                    return True
        return False

    def expire(self) -> None:
        """Forget every logon session, as EM does after its idle timeout or a restart."""
        with self.lock:
            self.by_token.clear()
