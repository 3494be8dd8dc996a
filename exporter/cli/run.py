"""`run`: the exporter against a real Enterprise Manager."""

from __future__ import annotations

import logging
from typing import Any

import click
import uvicorn

from exporter import __version__
from exporter.cli.settings_options import settings_options
from exporter.config import ConfigError
from exporter.config.load import load_config
from exporter.logs import setup_logging
from exporter.process_tuning import tune_serving_process

log = logging.getLogger("exporter")


@click.command()
@settings_options
def run(config_path: str | None, **overrides: Any) -> None:
    """Run the exporter against a real Enterprise Manager."""
    try:
        config = load_config(config_path, overrides)
    except ConfigError as exc:
        raise click.UsageError(f"config: {exc}") from None
    setup_logging(config.log_level, config.log_format)
    tune_serving_process()
    from exporter.wiring import Exporter

    exporter = Exporter(config)
    host, port = config.listen_host_port
    log.info(
        "veeam-failover-exporter %s serving on %s, polling %s",
        __version__,
        config.listen_address,
        config.em.url,
    )
    from exporter.http.listener import uvicorn_config

    uvicorn.Server(uvicorn_config(exporter.app, host, port, config.web)).run()
