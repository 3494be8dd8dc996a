"""Generates the Grafana dashboards in this folder with grafana-foundation-sdk (Grafana's own typed
builders, the 10.4 line: schemaVersion 39), from one description, so they stay consistent.

    python dashboards/generate_dashboards.py            # rewrite the JSON files
    python dashboards/generate_dashboards.py --check    # exit 1 if a committed file is not what this generates

The committed JSON is what users import or provision: stable `uid`s, a `datasource` variable (no
`__inputs`), job/instance/backup server/plan variables, `$__rate_interval` for rates.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# the dashboards (and monitoring/config.py, shared with the rules) are imported from the repository root
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dashboards.overview import overview
from dashboards.session_detail import session_detail

HERE = Path(__file__).parent


FILES = {"veeam-failover-overview.json": overview, "veeam-failover-session.json": session_detail}


def render(name: str) -> str:
    return json.dumps(FILES[name](), indent=2, sort_keys=True) + "\n"


def main() -> int:
    stale = [n for n in FILES if (HERE / n).read_text() != render(n)] if "--check" in sys.argv else []
    if "--check" in sys.argv:
        for n in stale:
            print(
                f"dashboards/{n} is out of date: run python dashboards/generate_dashboards.py",
                file=sys.stderr,
            )
        return 1 if stale else 0
    for n in FILES:
        (HERE / n).write_text(render(n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
