"""How fresh EM's data is, per backup server: EM shows what it last collected from each (every 15
minutes by default), so /metrics can be no fresher than that. Exported: when EM's data of a backup server
is known to be as of (the newest event EM reported for it, or the start of the last collection this
exporter asked for, whichever is newer), and the collections asked for (`poll.collect`)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.polling.collections import COLLECTION_OUTCOMES, Collections, data_as_of
from exporter.polling.snapshot import Store


class EMDataCollector(Collector):
    def __init__(self, store: Store, collections: Collections | None) -> None:
        self.store = store
        self.collections = collections

    def collect(self) -> Iterator[Metric]:
        snap = self.store.current()
        counts: dict[tuple[str, str], int] = {}
        finished: dict[str, float] = {}
        if self.collections is not None:
            counts, finished = self.collections.stats()
        as_of = data_as_of(snap.sessions)
        fresh = GaugeMetricFamily(
            "veeam_em_data_as_of_timestamp_seconds",
            "EM's data of this backup server is at least this new: the newest start or end EM reported of "
            "its sessions and VMs (a lower bound). EM collects every 15 min by default.",
            labels=["backup_server"],
        )
        for server, ts in sorted(as_of.items()):
            fresh.add_metric([server], ts)
        yield fresh
        if self.collections is None or not self.collections.settings.enabled:
            return
        servers = sorted({p.backup_server for p in snap.plans} | {s for s, _ in counts})
        total = CounterMetricFamily(
            "veeam_em_collections",
            "Data collections this exporter asked EM for (poll.collect), by backup server and outcome: "
            + ", ".join(COLLECTION_OUTCOMES)
            + ".",
            labels=["backup_server", "outcome"],
        )
        for server in servers:
            for outcome in COLLECTION_OUTCOMES:
                total.add_metric([server, outcome], counts.get((server, outcome), 0))
        yield total
        last = GaugeMetricFamily(
            "veeam_em_last_collection_timestamp_seconds",
            "When EM's task of the last collection this exporter asked for finished (the collection had "
            "started; its data shows once it is done), per backup server.",
            labels=["backup_server"],
        )
        for server, ts in sorted(finished.items()):
            last.add_metric([server], ts)
        yield last
