"""The Grafana dashboards, built with grafana-foundation-sdk (Grafana's own typed builders, the 10.4 line:
schemaVersion 39) from monitoring/config.py's CONFIG (the mixin's _config), so they stay consistent.

The JSON `python -m monitoring generate` writes to dashboards/ is what users import or provision: stable
`uid`s, a `datasource` variable (no `__inputs`), job/instance/backup server/plan variables,
`$__rate_interval` for rates, every query through the config's selector.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from monitoring.config import CONFIG, Config
from monitoring.dashboards.overview import overview
from monitoring.dashboards.session_detail import session_detail

DASHBOARDS: dict[str, Callable[[Config], dict[str, Any]]] = {
    "veeam-failover-overview.json": overview,
    "veeam-failover-session.json": session_detail,
}


def dashboard_json(name: str, cfg: Config = CONFIG) -> str:
    return json.dumps(DASHBOARDS[name](cfg), indent=2, sort_keys=True) + "\n"
