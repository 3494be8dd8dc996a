"""Alertmanager webhook payloads (version 4) -> the alerts that ask for a failover start.

Unknown fields are ignored (newer Alertmanagers add some); what we rely on is checked strictly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exporter.http import strict_json


class PayloadError(ValueError):
    pass


@dataclass(frozen=True)
class Alert:
    status: str  # "firing" or "resolved"
    labels: dict[str, str]
    starts_at: str
    fingerprint: str

    @property
    def idempotency_key(self) -> str:
        # Alertmanager re-sends the same alert (retries, repeat_interval, HA peers): same fingerprint
        # and startsAt. A new firing of the same alert has a new startsAt.
        return f"alertmanager:{self.fingerprint}:{self.starts_at}"


def decode(body: bytes) -> list[Alert]:
    try:
        data: Any = strict_json.loads(body)
    except strict_json.StrictJSONError as exc:
        raise PayloadError(str(exc)) from None
    if not isinstance(data, dict):
        raise PayloadError("payload must be a JSON object")
    if str(data.get("version")) != "4":
        raise PayloadError(f'unsupported payload version {str(data.get("version"))[:10]!r}; expected "4"')
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("payload has no alerts list")
    return [_alert(a, i) for i, a in enumerate(alerts)]


def _alert(a: Any, i: int) -> Alert:
    where = f"alerts[{i}]"
    if not isinstance(a, dict):
        raise PayloadError(f"{where}: must be an object")
    labels = a.get("labels")
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise PayloadError(f"{where}.labels: must be an object of strings")
    fields = {}
    for key in ("status", "startsAt", "fingerprint"):
        v = a.get(key)
        if not isinstance(v, str) or not v or len(v) > 200:
            raise PayloadError(f"{where}.{key}: must be a non-empty string")
        fields[key] = v
    return Alert(
        status=fields["status"],
        labels=labels,
        starts_at=fields["startsAt"],
        fingerprint=fields["fingerprint"],
    )
