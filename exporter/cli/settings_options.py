"""The options `run` reads its settings from; `doctor` and `capture` take the same ones. Their help shows
the defaults the settings model declares (exporter/config/model.py), never a copy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

import click

from exporter.config import LOG_LEVELS, Config, PollSettings

DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(Config)}
POLL_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(PollSettings)}


def settings_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options `run` reads its settings from; `doctor` and `capture` take the same ones."""
    for option in reversed(SETTINGS_OPTIONS):
        command = option(command)
    return command


SETTINGS_OPTIONS = [
    click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML settings file."),
    click.option(
        "--em-url", envvar="VEEAM_EM_URL", help="EM address, e.g. https://em.example:9398 [VEEAM_EM_URL]"
    ),
    click.option("--em-username", envvar="VEEAM_EM_USERNAME", help="EM user [VEEAM_EM_USERNAME]"),
    click.option(
        "--em-password-file",
        type=click.Path(dir_okay=False),
        help="File holding the EM password (or set VEEAM_EM_PASSWORD).",
    ),
    click.option(
        "--em-ca-file", type=click.Path(dir_okay=False), help="CA bundle to verify EM's certificate."
    ),
    click.option(
        "--em-insecure-skip-verify",
        is_flag=True,
        default=None,
        help="Do not verify EM's TLS certificate. Dangerous; prefer --em-ca-file.",
    ),
    click.option(
        "--listen-address",
        envvar="VEEAM_EXPORTER_LISTEN_ADDRESS",
        help=f"host:port to serve on (default {DEFAULTS['listen_address']}) [VEEAM_EXPORTER_LISTEN_ADDRESS]",
    ),
    click.option(
        "--poll-interval",
        type=float,
        help="Seconds between polls while a failover runs "
        f"(default {POLL_DEFAULTS['active_interval_seconds']:g}).",
    ),
    click.option("--log-level", type=click.Choice(LOG_LEVELS), help=f"Default {DEFAULTS['log_level']}."),
]
