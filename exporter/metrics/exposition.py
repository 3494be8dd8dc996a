"""/metrics bytes: rendered once per snapshot and format, in the background, never on a scrape.

The snapshot changes once per poll; scrapes come far more often and many at once. Rendering (and
gzipping) 100k series takes about half a second of CPU even with textformat.py, so a background
thread renders each new snapshot in the formats scrapers asked for, and every scrape is answered
from the last finished rendering: at most one render behind, never waiting for one. Only the very
first scrape of a format renders inline.
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from exporter.background_loop import BackgroundLoop
from exporter.metrics import textformat
from exporter.metrics.collectors import FailoverCollector, failover_families
from exporter.metrics.offload import Chunks, Offload
from exporter.polling.snapshot import Snapshot, Store

log = logging.getLogger(__name__)

Key = tuple[str, bool]  # (content type, gzip)


@dataclass(frozen=True)
class Split:
    """The registry without its failover collector, and that collector (registered last)."""

    others: CollectorRegistry
    failover: FailoverCollector


def render_failover(data: dict[str, Any], openmetrics: bool, head: bytes) -> Chunks:
    """In the helper process: the whole exposition, from `head` (the families rendered in the serving
    process) and the failover families of this snapshot data (`failover_data`), as chunks the helper
    sends one after the other."""
    registry = CollectorRegistry(auto_describe=False)
    snap = Snapshot(last_success=0.0, **data)
    registry.register(textformat.Families(failover_families(snap)))
    return Chunks([head, *textformat.encode_parts(registry, openmetrics, eof=openmetrics)])


def failover_data(snap: Snapshot) -> dict[str, Any]:
    """What the failover families read of a snapshot, in types pickle takes (no mapping proxies)."""
    r = snap.readiness
    return {
        "plans": snap.plans,
        "sessions": snap.sessions,
        "restore_points": dict(snap.restore_points),
        "plan_vm_changes": dict(snap.plan_vm_changes),
        "readiness": dataclasses.replace(
            r, latest=dict(r.latest), rpo=dict(r.rpo), read_errors=dict(r.read_errors)
        ),
    }


class Exposition:
    def __init__(
        self,
        registry: CollectorRegistry,
        store: Store,
        *,
        offload: Offload | None = None,
        split: Split | None = None,
    ) -> None:
        self.registry = registry
        self.store = store
        self.offload = offload
        self.split = split
        self._lock = threading.Lock()  # guards the two dicts below
        self._rendered: dict[Key, tuple[int, bytes]] = {}  # key -> (generation, body)
        self._encoders: dict[Key, Callable[[CollectorRegistry], bytes]] = {}
        self._render_lock = threading.Lock()  # one rendering at a time
        # renders each new snapshot once, when the store says there is one
        self._loop = BackgroundLoop("exposition", self._render_step, lambda: None, wait_first=True)
        store.subscribe(self._loop.wake)

    def cached(self, accept: str, want_gzip: bool) -> tuple[bytes, str] | None:
        """The last rendering for this Accept header, if there is one. Cheap: safe on the event loop."""
        _, content_type = choose_encoder(accept)
        with self._lock:
            found = self._rendered.get((content_type, want_gzip))
        return None if found is None else (found[1], content_type)

    def render(self, accept: str, want_gzip: bool) -> tuple[bytes, str]:
        """Body and content type for a scrape with this Accept header."""
        encoder, content_type = choose_encoder(accept)
        encoder = textformat.encoder_for(content_type) or encoder
        key = (content_type, want_gzip)
        with self._lock:
            found = self._rendered.get(key)
            if found is None:
                self._encoders[key] = encoder
        if found is not None:
            return found[1], content_type
        self.refresh()  # first scrape in this format: render it now, and from now on in the background
        with self._lock:
            return self._rendered[key][1], content_type

    def refresh(self) -> None:
        """Render the current snapshot in every format asked for so far (if not already done)."""
        with self._render_lock:
            generation = self.store.current().generation
            with self._lock:
                todo = {
                    k: e
                    for k, e in self._encoders.items()
                    if self._rendered.get(k, (-1, b""))[0] != generation
                }
                # a gzipped body compresses the plain rendering of the same generation, not a new one
                plain = {
                    ct: body
                    for (ct, zipped), (gen, body) in self._rendered.items()
                    if not zipped and gen == generation
                }
            for (content_type, zipped), encoder in todo.items():
                if content_type not in plain:
                    plain[content_type] = self._render(content_type, encoder)
                body = (
                    gzip.compress(plain[content_type], compresslevel=6, mtime=0)
                    if zipped
                    else plain[content_type]
                )
                with self._lock:
                    self._rendered[(content_type, zipped)] = (generation, body)

    def _render(self, content_type: str, encoder: Callable[[CollectorRegistry], bytes]) -> bytes:
        split = self.split
        if split is None or self.offload is None or textformat.encoder_for(content_type) is None:
            return encoder(self.registry)
        snap = split.failover.current()
        rows = sum(len(s.tasks) for s in snap.sessions) + sum(len(p.vms) for p in snap.plans)
        if rows < self.offload.render_min_tasks:
            return encoder(self.registry)
        # The failover families (nearly all the bytes) in the helper process; the rest here. The full
        # registry lists the failover collector last, so the two parts join to the same exposition.
        openmetrics = content_type.startswith("application/openmetrics-text")
        head = textformat.encode(split.others, openmetrics, eof=False)
        body = self.offload.run(render_failover, failover_data(snap), openmetrics, head)
        return body if isinstance(body, bytes) else b"".join(body)  # inline: the chunks joined here

    def _render_step(self) -> None:
        try:
            self.refresh()
        except Exception:  # a rendering bug must not stop rendering for good
            log.exception("rendering /metrics failed")

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
