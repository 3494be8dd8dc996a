"""The commands for first contact with a real EM: `doctor` checks it, `capture` records what it answers.
They take the same settings as `run`."""

from __future__ import annotations

import sys
from typing import Any

import click

from exporter import __version__
from exporter.cli.settings_options import settings_options
from exporter.config import ConfigError
from exporter.config.load import load_config
from exporter.logs import setup_logging


@click.command()
@settings_options
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of lines.")
def doctor(config_path: str | None, as_json: bool, **overrides: Any) -> None:
    """Check first contact with a real Enterprise Manager, with the settings `run` would use.

    One line per check (OK, WARN, FAIL, SKIP) with what to do; exit code 0 when no check failed."""
    import json

    from exporter import doctor as checks

    try:
        config = load_config(config_path, overrides)
    except ConfigError as exc:
        raise click.UsageError(f"config: {exc}") from None
    setup_logging("error")  # the checks say what went wrong; log lines would repeat it
    done: list[checks.Check] = []
    for check in checks.run_checks(config):
        done.append(check)
        if not as_json:
            click.echo(check.line())
    counts = {s: sum(c.status == s for c in done) for s in ("OK", "WARN", "FAIL", "SKIP")}
    if as_json:
        click.echo(json.dumps({"passed": checks.passed(done), "checks": checks.as_json(done)}, indent=2))
    else:
        click.echo(", ".join(f"{n} {s}" for s, n in counts.items()))
    sys.exit(0 if checks.passed(done) else 1)


@click.command()
@settings_options
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Capture file.")
@click.option(
    "--pseudonymize",
    is_flag=True,
    help="Replace tenant, plan, VM and server names, IDs and host names consistently.",
)
def capture(config_path: str | None, out_path: str, pseudonymize: bool, **overrides: Any) -> None:
    """Record the EM answers of one full poll into one file (attach it to a bug report).

    Never recorded: the logon and logout exchanges, and any header. `simulate --replay FILE` serves it."""
    import dataclasses

    from exporter.em import capture as captures
    from exporter.em.client import client_for
    from exporter.em.errors import EMError
    from exporter.polling.poller import Poller
    from exporter.polling.snapshot import Store

    try:
        config = load_config(config_path, overrides)
    except ConfigError as exc:
        raise click.UsageError(f"config: {exc}") from None
    setup_logging("warning")
    recording = captures.new_capture(__version__)
    client = client_for(config.em)
    client.session.recorder = recording.record
    # one full poll that reads every replica point at once, so the capture holds all of them
    poller = Poller(client, dataclasses.replace(config.poll, point_queries_per_poll=10_000), Store())
    try:
        client.api_versions()
        snap = poller.poll_once()
    except EMError as exc:
        snap = None
        click.echo(f"capture: {exc}", err=True)
    finally:
        client.close()
    if pseudonymize:
        recording = captures.pseudonymize(recording)
    captures.write_capture(recording, out_path)
    click.echo(
        f"captured {len(recording.answers)} EM answers into {out_path}"
        + (" (pseudonymized)" if pseudonymize else " (real names: review before sharing)")
    )
    if snap is None or not snap.up:
        click.echo("capture: the poll did not complete; the file holds what EM answered", err=True)
        sys.exit(1)
