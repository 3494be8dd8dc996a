"""A step run again and again in a background thread: by the poller, the renderer and the task tracker.

The next run starts `delay()` seconds after the previous one *started* (a fixed rate: a slow step does not
stretch the cadence), or at once when woken; `delay()` returning None waits for a wake. A step that
raises is logged and the loop goes on (a bug must not stop polling for good); a step that returns True
is done, and the loop ends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class BackgroundLoop:
    def __init__(
        self,
        name: str,
        step: Callable[[], bool | None],
        delay: Callable[[], float | None],
        *,
        wait_first: bool = False,
    ) -> None:
        self.name = name
        self._step = step
        self._delay = delay
        self._wait_first = wait_first  # wait for the first wake (or delay) before the first step
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        if self._wait_first:
            self._sleep(time.monotonic())
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                if self._step():
                    return
            except Exception:
                log.exception("%s: unexpected error", self.name)
            self._sleep(started)

    def _sleep(self, started: float) -> None:
        delay = self._delay()
        self._wake.wait(None if delay is None else max(0.0, started + delay - time.monotonic()))
        self._wake.clear()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()
