"""Wires one exporter together: EM client, poller, snapshot store, collectors and the HTTP app."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import prometheus_client
from prometheus_client.registry import CollectorRegistry
from starlette.applications import Starlette

from exporter.actions.audit.log import AuditLogUnavailable
from exporter.actions.engine import Actions
from exporter.actions.routes import action_routes
from exporter.config import Config
from exporter.em.client import client_for
from exporter.http.routes import create_app
from exporter.http.status import ActionsView
from exporter.metrics.actions import ActionsCollector
from exporter.metrics.collectors import FailoverCollector, HealthCollector
from exporter.metrics.em_data import EMDataCollector
from exporter.metrics.exposition import Exposition, Split
from exporter.metrics.offload import Offload
from exporter.polling.collections import Collections, data_as_of
from exporter.polling.poller import Poller
from exporter.polling.snapshot import Store, as_shown
from exporter.readiness.reader import ReplicaReader

log = logging.getLogger(__name__)


def build_registry(
    store: Store,
    actions: Actions | None = None,
    stale_after: float = float("inf"),
    collections: Collections | None = None,
    clock: Callable[[], float] = time.time,
) -> tuple[CollectorRegistry, Split]:
    """Every collector, the failover one last, and the same without it: large snapshots render the
    failover families in a helper process and the rest here (exposition.py)."""
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    failover = FailoverCollector(store, stale_after, clock)
    registries = []
    for with_failover in (True, False):
        registry = CollectorRegistry(auto_describe=False)
        registry.register(HealthCollector(store))
        registry.register(EMDataCollector(store, collections))
        if actions is not None:
            registry.register(ActionsCollector(actions, store))
        prometheus_client.ProcessCollector(registry=registry)
        prometheus_client.PlatformCollector(registry=registry)
        if with_failover:
            registry.register(failover)
        registries.append(registry)
    full, others = registries
    return full, Split(others=others, failover=failover)


class Exporter:
    def __init__(self, config: Config, *, start_poller: bool = True) -> None:
        self.config = config
        em = config.em
        if em.insecure_skip_verify:
            log.warning(
                "TLS verification of EM (%s) is OFF (em.insecure_skip_verify): anyone on the path can "
                "read the EM credentials and forge answers. Use em.ca_file instead.",
                em.url,
            )
        # Optionally, large EM answers are parsed and large expositions rendered in a helper process.
        self.offload = Offload() if config.helper_process else None
        self.client = client_for(em, self.offload)
        self.store = Store()
        # what /metrics and /status judge the data's age by (one clock for both; a test may move it)
        self.clock: Callable[[], float] = time.time
        self.poller = Poller(self.client, config.poll, self.store)
        self.collections = Collections(self.client, config.poll.collect, self.store, self.poller.wake)
        self.readiness = ReplicaReader(
            self.client, config.readiness, self.store, lookup_form=lambda: self.poller.points.form
        )
        self.actions = None
        unavailable = None  # why actions that the config enables are off
        if config.actions.enabled:
            try:
                self.actions = Actions(
                    config.actions,
                    self.client,
                    self.store,
                    wake_poller=self.poller.wake,
                    on_started=self.collections.after_start,
                )
            except AuditLogUnavailable as exc:
                unavailable = str(exc)
                log.error("actions: %s", exc)
        if self.actions is not None:
            switches = self.actions.switches()
            where = "the config" if switches.set_by is None else f"set at run time by {switches.set_by}"
            if switches.dry_run:
                log.warning("actions: dry run for every request (%s); nothing is sent to EM", where)
            if switches.kill_switch:
                log.warning("actions: kill switch on (%s); every start is refused", where)
        self.registry, split = build_registry(
            self.store, self.actions, config.poll.stale_after_seconds, self.collections, lambda: self.clock()
        )
        self.exposition = Exposition(self.registry, self.store, offload=self.offload, split=split)
        self._start_poller = start_poller
        self.app: Starlette = create_app(
            self.store,
            self.exposition,
            em_url=self.client.session.base_url,
            lifespan=self._lifespan,
            extra_routes=action_routes(self.actions, unavailable),
            actions_view=None if self.actions is None else self._actions_view,
            data_as_of=lambda: data_as_of(self.store.current().sessions),
            web=config.web,
            shown=lambda snap: as_shown(snap, config.poll.stale_after_seconds, self.clock()),
            clock=lambda: self.clock(),
        )

    def _actions_view(self) -> ActionsView:
        assert self.actions is not None
        a = self.actions
        return ActionsView(
            recent=a.recent(20),
            pending=a.pending(None),
            switches=a.switches().to_json(),
            approval=a.settings.approval,
        )

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.exposition.start()
        if self._start_poller:
            self.poller.start()
            self.collections.start()
            if self.config.readiness.enabled:
                self.readiness.start()
        try:
            yield
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        self.collections.stop()
        self.readiness.stop()
        self.poller.stop()
        self.exposition.stop()
        if self.actions is not None:
            self.actions.close()
        self.client.close()  # logs out of EM
        if self.offload is not None:
            self.offload.close()
