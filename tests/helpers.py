"""Shared test plumbing: real servers on loopback, and reading /metrics back into values."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from exporter.config import ActionSettings, Config, EMSettings, PollSettings
from exporter.http.server import ServerThread
from exporter.secret import Secret
from exporter.simulator import ManualClock, Simulator, World, load_scenario
from exporter.simulator.scenario import Scenario, scenario_from_dict
from exporter.wiring import Exporter
from tests import plain_http


def utc(text: str) -> float:
    """ISO 8601 UTC -> Unix seconds, independently of the code under test."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=UTC).timestamp()


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclasses.dataclass
class RunningSim:
    world: World
    server: ServerThread
    clock: ManualClock

    @property
    def url(self) -> str:
        return self.server.url


@contextmanager
def running_sim(
    scenario: Scenario | dict[str, Any] | str, clock: ManualClock | None = None
) -> Iterator[RunningSim]:
    if isinstance(scenario, str):
        scenario = load_scenario(scenario)
    elif isinstance(scenario, dict):
        scenario = scenario_from_dict(scenario)
    clock = clock or ManualClock()
    world = World(scenario, clock=clock)
    server = ServerThread(Simulator(world).app).start()
    try:
        yield RunningSim(world, server, clock)
    finally:
        server.stop()


@dataclasses.dataclass
class RunningExporter:
    exporter: Exporter
    server: ServerThread

    @property
    def url(self) -> str:
        return self.server.url

    def poll(self) -> None:
        self.exporter.poller.poll_once()
        self.exporter.exposition.refresh()  # what the background renderer does a moment later

    def read_points(self) -> None:
        """One read of the plan VMs' replica points (what the readiness loop does every interval)."""
        assert not self.exporter.readiness.read_once()
        self.exporter.exposition.refresh()

    def scrape(self) -> Samples:
        self.exporter.exposition.refresh()
        return scrape(self.url)


def exporter_config(em_url: str, *, username: str = "admin", password: str = "admin", **em: Any) -> Config:
    poll = em.pop("poll", PollSettings())
    actions = em.pop("actions", ActionSettings())
    return Config(
        actions=actions,
        em=EMSettings(url=em_url, username=username, password=Secret(password), **em),
        poll=poll,
        listen_address="127.0.0.1:0",
    )


@contextmanager
def running_exporter(config: Config, *, background_polling: bool = False) -> Iterator[RunningExporter]:
    """An exporter on loopback; by default the test triggers its polls (no background poller)."""
    exporter = Exporter(config, start_poller=background_polling)
    server = ServerThread(exporter.app).start()
    try:
        yield RunningExporter(exporter, server)
    finally:
        server.stop()


def parse_samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def scrape(url: str) -> Samples:
    resp = plain_http.get(url + "/metrics", timeout=10)
    assert resp.status_code == 200, resp.text
    return parse_samples(resp.text)


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


def what_approving_does(url: str, decision_id: str, token: str) -> dict[str, str]:
    """The mode and fingerprint an approver sees for a pending decision (GET /api/v1/decisions): what
    an approval must name. Empty if the caller does not see it (a refusal is then the test's point)."""
    listing = plain_http.get(
        f"{url}/api/v1/decisions", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    if listing.status_code != 200:
        return {}
    for d in listing.json()["decisions"]:
        if d["request_id"] == decision_id:
            return {"mode": d["now"]["mode"], "fingerprint": d["now"]["fingerprint"]}
    return {}


def page_form_fields(page: str) -> str:
    """The decision page's hidden fields (mode, fingerprint), url-encoded for the form's body."""
    import re
    from urllib.parse import urlencode

    found = dict(re.findall(r"<input type='hidden' name='(\w+)' value='([^']*)'>", page))
    return urlencode(found)
