"""`simulate` (the EM simulator alone) and `demo` (the simulator and the exporter in one process)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import uvicorn

from exporter.config import ConfigError, parse_listen_address
from exporter.logs import setup_logging
from exporter.simulator.profiles import PROFILES

# the options simulate and demo share
TIME_SCALE = click.option("--time-scale", type=float, help="Override the scenario's time scale.")
PROFILE = click.option(
    "--profile",
    type=click.Choice(sorted(PROFILES)),
    help="Act as this EM version (overrides the scenario's profile); see docs/em-compatibility.md.",
)


@click.command()
@click.option(
    "--scenario",
    default="demo",
    show_default=True,
    help="Built-in scenario name (demo, seed, ...) or a scenario YAML file.",
)
@click.option("--listen-address", default="127.0.0.1:9398", show_default=True, help="host:port to serve on.")
@TIME_SCALE
@PROFILE
@click.option(
    "--replay",
    "replay_path",
    type=click.Path(dir_okay=False, exists=True),
    help="Serve the EM answers of a capture file instead of a scenario.",
)
def simulate(
    scenario: str, listen_address: str, time_scale: float | None, profile: str | None, replay_path: str | None
) -> None:
    """Run the EM simulator alone (plain HTTP)."""
    setup_logging("info")
    sim = _replaying(replay_path, profile) if replay_path else _simulator(scenario, time_scale, profile)
    try:
        host, port = parse_listen_address(listen_address)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(
        f"EM simulator ({sim.world.scenario.name}, profile {sim.profile.name}) "
        f"on http://{host}:{port}/api/ ; "
        f"logon user(s): {', '.join(sim.world.scenario.users)}"
    )
    uvicorn.run(sim.app, host=host, port=port, log_level="warning", access_log=False)


def _replaying(path: str, profile: str | None) -> Any:
    from exporter.em.capture import CaptureError, read_capture
    from exporter.simulator import Simulator, World
    from exporter.simulator.replay import load_replay
    from exporter.simulator.scenario import scenario_from_dict

    try:
        replay = load_replay(read_capture(path))
    except CaptureError as exc:
        raise click.UsageError(f"--replay: {exc}") from None
    sc = scenario_from_dict({"name": f"replay of {path}", "profile": profile or "default"})
    return Simulator(World(sc), replay)


def _simulator(scenario: str, time_scale: float | None, profile: str | None = None) -> Any:
    import dataclasses

    from exporter.simulator import Simulator, World, load_scenario
    from exporter.simulator.scenario import ScenarioError

    try:
        sc = load_scenario(scenario)
    except ScenarioError as exc:
        raise click.UsageError(f"scenario: {exc}") from None
    if time_scale is not None:
        if time_scale <= 0:
            raise click.UsageError("--time-scale: must be positive")
        sc = dataclasses.replace(sc, time_scale=time_scale)
    if profile is not None:
        sc = dataclasses.replace(sc, profile=PROFILES[profile])
    return Simulator(World(sc))


@click.command()
@click.option("--scenario", default="demo", show_default=True, help="Built-in scenario or YAML file.")
@click.option(
    "--listen-address", default="127.0.0.1:9849", show_default=True, help="Where the exporter serves."
)
@TIME_SCALE
@PROFILE
@click.option(
    "--actions",
    "with_actions",
    is_flag=True,
    help="Turn on the start endpoint (dry run, approval required) and print two demo tokens.",
)
def demo(
    scenario: str, listen_address: str, time_scale: float | None, profile: str | None, with_actions: bool
) -> None:
    """Simulated EM plus exporter in one process, on loopback."""
    from exporter.config import ActionSettings, Config, EMSettings, PollSettings
    from exporter.http.server import ServerThread
    from exporter.secret import Secret
    from exporter.wiring import Exporter

    setup_logging("info")
    sim = _simulator(scenario, time_scale, profile)
    user, password = next(iter(sim.world.scenario.users.items()))
    em_server = ServerThread(sim.app).start()
    try:
        host, port = parse_listen_address(listen_address)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    actions, tokens = ActionSettings(), dict[str, str]()
    if with_actions:
        # the plans the scenario does not start on its own come first: the printed example starts one
        plans = sorted(sim.world.scenario.plans, key=lambda p: p.start_at is not None)
        actions, tokens = _demo_actions(tuple(p.name for p in plans))
    config = Config(
        em=EMSettings(url=em_server.url, username=user, password=Secret(password)),
        poll=PollSettings(active_interval_seconds=2, idle_interval_seconds=10),
        listen_address=listen_address,
        actions=actions,
    )
    exporter = Exporter(config)
    web = ServerThread(exporter.app, host, port).start()
    click.echo(f"Simulated Enterprise Manager: {em_server.url}/api/  (scenario {sim.world.scenario.name})")
    click.echo(f"Exporter:                     {web.url}/")
    click.echo(f"Metrics:                      {web.url}/metrics")
    if with_actions:
        _print_actions_demo(web.url, tokens, actions)
    click.echo("Press Ctrl-C to stop.")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        web.stop()
        em_server.stop()


def _demo_actions(plans: tuple[str, ...]) -> tuple[Any, dict[str, str]]:
    """Dry run on (nothing reaches even the simulated EM), approval required, a requester and an
    approver with fresh random tokens, an audit log in a temporary directory."""
    import secrets
    import tempfile

    from exporter.config import ActionSettings, Caller
    from exporter.secret import Secret

    tokens = {"requester": secrets.token_urlsafe(24), "approver": secrets.token_urlsafe(24)}
    settings = ActionSettings(
        enabled=True,
        dry_run=True,
        approval="required",
        callers=(
            Caller("requester", Secret(tokens["requester"])),
            Caller("approver", Secret(tokens["approver"]), roles=("approver", "admin")),
        ),
        allowed_plans=plans,
        audit_log=str(Path(tempfile.mkdtemp(prefix="veeam-demo-")) / "audit.jsonl"),
    )
    return settings, tokens


def _print_actions_demo(url: str, tokens: dict[str, str], actions: Any) -> None:
    plan = quote(actions.allowed_plans[0]) if actions.allowed_plans else "PLAN"
    click.echo(f"Audit log:                    {actions.audit_log}")
    click.echo("Start endpoint: on, dry run (nothing is sent to EM), approval required.")
    click.echo(f"  requester token: {tokens['requester']}")
    click.echo(f"  approver token:  {tokens['approver']}   (approver and admin)")
    click.echo("Try it:")
    click.echo(
        f"  curl -s -X POST -H 'Authorization: Bearer {tokens['requester']}' "
        f"-H 'Content-Type: application/json' -d '{{\"start_now\": true}}' {url}/api/v1/plans/{plan}/start"
    )
    click.echo(f"  then open {url}/status, follow 'approve or reject', and paste the approver token.")
