"""What a check says: its name, OK / WARN / FAIL / SKIP, what it found, and what to do."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from exporter.em.model import Plan, Session

Status = Literal["OK", "WARN", "FAIL", "SKIP"]
CERT_EXPIRY_WARN_DAYS = 30
CLOCK_SKEW_WARN_SECONDS = 300.0


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    hint: str = ""

    def line(self) -> str:
        text = f"{self.status:<4}  {self.name:<18} {self.detail}"
        return text + (f"\n      {'':<18} -> {self.hint}" if self.hint else "")


@dataclass
class Found:
    """What earlier checks learnt, for the later ones."""

    plans: tuple[Plan, ...] = ()
    sessions: tuple[Session, ...] = ()


def as_json(checks: list[Check]) -> list[dict[str, str]]:
    return [asdict(c) for c in checks]


def passed(checks: list[Check]) -> bool:
    return not any(c.status == "FAIL" for c in checks)
