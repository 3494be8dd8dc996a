"""A replica point as the simulated backup servers have it."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    id: str
    vm: str
    plan_id: str
    backup_server: str
    created: float
    fraction: bool = False  # the name carries microseconds, as EM 13 writes it

    @property
    def name(self) -> str:
        whole = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(self.created)))
        if self.fraction:
            return f"{self.vm}@{whole}.{round((self.created % 1) * 1e6):06d}"
        return f"{self.vm}@{whole}"


def stable_fraction(*parts: object) -> float:
    return (uuid.uuid5(uuid.NAMESPACE_OID, "/".join(map(str, parts))).int % 999_999 + 1) / 1e6
