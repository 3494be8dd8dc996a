"""A webhook receiver on loopback for the announcement tests: it keeps what it is sent, and can answer
with an error first, to show the retries."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    url: str
    fail_first: int = 0  # answer this many posts with `fail_status`
    fail_status: int = 500
    received: list[dict[str, Any]] = field(default_factory=list)  # what it accepted
    attempts: int = 0
    paths: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self) -> list[str]:
        with self.lock:
            return [str(m.get("event", m.get("text", ""))) for m in self.received]


@contextmanager
def running_receiver(fail_first: int = 0, fail_status: int = 500, path: str = "/hook") -> Iterator[Receiver]:
    state = Receiver(url="", fail_first=fail_first, fail_status=fail_status)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with state.lock:
                state.attempts += 1
                state.paths.append(self.path)
                failing = state.attempts <= state.fail_first
                if not failing:
                    state.received.append(json.loads(body))
            self.send_response(state.fail_status if failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
