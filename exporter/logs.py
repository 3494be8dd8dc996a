"""The exporter's own log: one format, one level, and the third-party loggers kept in their place."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # httpx logs every request at INFO; that is our metrics' job, not the log's
    logging.getLogger("httpx").setLevel(logging.WARNING)
