"""CPU-heavy work in a helper process: parsing EM's large answers and rendering a large exposition.

The serving process answers scrapes on an event loop. A CPU-bound thread beside it (a 2 MB XML page,
a 120k-series exposition) holds the interpreter, and each of a scrape's system calls then waits up to
a switch interval to get it back: at 10,000 VMs the p99 of 22 concurrent scrapes is ~29 ms inline and
~17 ms with the helper (benchmarks/scale.py), for ~100 MB more memory, hence opt-in (helper_process).
In a helper process that work shares no interpreter with the loop, and the second core does it.
Small jobs stay inline (tests, small installations): the helper costs ~0.3 s to start and its memory.
If the helper dies (e.g. killed for memory), the job runs inline and the next big one starts a new
helper.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

PARSE_MIN_BYTES = 256 * 1024  # an EM answer this large is parsed in the helper
RENDER_MIN_TASKS = 2000  # a snapshot with this many VM tasks (~24k series) is rendered in the helper


class Offload:
    def __init__(
        self, parse_min_bytes: int = PARSE_MIN_BYTES, render_min_tasks: int = RENDER_MIN_TASKS
    ) -> None:
        self.parse_min_bytes = parse_min_bytes
        self.render_min_tasks = render_min_tasks
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False
        self.jobs = 0  # run in the helper
        self.restarts = 0  # helpers found dead

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) in the helper process (fn and args must pickle), or inline if it cannot be used."""
        pool = self._ensure()
        if pool is None:
            return fn(*args)
        try:
            result = pool.submit(fn, *args).result()
        except BrokenProcessPool:
            log.warning("the helper process died; running this job inline and starting a new one next time")
            with self._lock:
                if self._pool is pool:
                    self._pool = None
                    self.restarts += 1
            pool.shutdown(wait=False, cancel_futures=True)
            return fn(*args)
        with self._lock:
            self.jobs += 1
        return result

    def _ensure(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._closed:
                return None
            if self._pool is None:
                try:
                    # spawn, not fork: the serving process has threads, and a fork would copy their locks
                    self._pool = ProcessPoolExecutor(
                        1,
                        mp_context=multiprocessing.get_context("spawn"),
                        initializer=_watch_parent,
                        initargs=(os.getpid(),),
                    )
                except OSError as exc:
                    log.warning("cannot start a helper process (%s); parsing and rendering inline", exc)
                    self._closed = True
                    return None
            return self._pool

    def close(self) -> None:
        """Stop the helper: it finishes the job at hand (at most one render or parse) and exits."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _watch_parent(parent: int) -> None:
    """In the helper: exit when the exporter is gone, however it went (kill -9 included)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()
