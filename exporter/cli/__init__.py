"""`veeam-failover-exporter run | doctor | capture | simulate | demo`: run.py, first_contact.py (doctor,
capture), simulate.py (simulate, demo); settings_options.py is what run, doctor and capture share."""

from __future__ import annotations

import click

from exporter import __version__
from exporter.cli.first_contact import capture, doctor
from exporter.cli.run import run
from exporter.cli.simulate import demo, simulate


@click.group()
@click.version_option(__version__, prog_name="veeam-failover-exporter")
def main() -> None:
    """Prometheus exporter for Veeam Backup Enterprise Manager cloud failover."""


for command in (run, doctor, capture, simulate, demo):
    main.add_command(command)
