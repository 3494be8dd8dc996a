"""Renders /metrics once per snapshot and format, and serves every scrape in between from that.

The snapshot changes once per poll; scrapes come far more often (and many at once). Rendering (and
gzipping) 100k series per scrape would be work done again for nothing, so it is done once per
snapshot generation, under a lock so a burst of scrapes renders once, not once each.
"""

from __future__ import annotations

import gzip
import threading

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from exporter.snapshot import Store


class Exposition:
    def __init__(self, registry: CollectorRegistry, store: Store) -> None:
        self.registry = registry
        self.store = store
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, bool], bytes] = {}
        self._generation = -1

    def render(self, accept: str, want_gzip: bool) -> tuple[bytes, str]:
        """Body and content type for a scrape with this Accept header."""
        encoder, content_type = choose_encoder(accept)
        key = (content_type, want_gzip)
        generation = self.store.current().generation
        with self._lock:
            if generation != self._generation:
                self._cache.clear()
                self._generation = generation
            body = self._cache.get(key)
            if body is None:
                plain = self._cache.get((content_type, False))
                if plain is None:
                    plain = encoder(self.registry)
                    self._cache[(content_type, False)] = plain
                body = gzip.compress(plain, compresslevel=6, mtime=0) if want_gzip else plain
                self._cache[key] = body
        return body, content_type
