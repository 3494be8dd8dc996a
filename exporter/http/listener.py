"""The exporter's listener: uvicorn with its C parser, and the limits uvicorn does not have.

The listener is also the failover trigger, so no client may hold it down without a token:
- a request's head (request line and headers) must arrive within `web.header_timeout_seconds`, from the
  connection's start or from its first byte (slow clients: 408, closed);
- a request's body must arrive whole within `web.body_timeout_seconds` of its head (a trickled body: 408,
  closed);
- a head over `web.max_header_bytes`, however it arrives (in pieces or in one write), or with more than
  MAX_HEADERS headers, is refused (431, closed), so giant headers cannot take memory;
- a kept-alive connection with no request is closed after `web.idle_timeout_seconds`;
- one client address holds at most `web.max_connections_per_client` connections (503 at once past it;
  trusted proxies are exempt, they carry many clients);
- past `web.max_connections` the idlest connection of the address holding the most is closed to make
  room (one between requests, or still sending its head); only when every connection is busy with a
  request does a new one hear 503;
- X-Forwarded-For is believed only from `web.trusted_proxies` (none by default).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from exporter.config import WebSettings

MAX_HEADERS = 100


def _answer(status: int, reason: str) -> bytes:
    body = reason.encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with head and body time-outs, head limits and connection limits."""

    header_timeout = 10.0
    body_timeout = 10.0
    max_header_bytes = 32 * 1024
    max_connections = 512
    max_per_client = 64
    exempt: frozenset[str] = frozenset()
    # open connections by client address, oldest first: one book per listener (protocol_for makes a
    # class each)
    by_address: ClassVar[dict[str, dict[GuardedProtocol, None]]] = {}

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = self._parsed_head = self._head_count = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._busy = False  # a request is with the app
        self._in_body = False  # between a head and the end of its body
        self.last_active = self.loop.time()
        self.address = self.client[0] if self.client else ""
        mine = self.by_address.setdefault(self.address, {})
        mine[self] = None
        if self.address not in self.exempt and len(mine) > self.max_per_client:
            self._refuse(503, "Service Unavailable: too many connections from this address")
            return
        if len(self.connections) > self.max_connections and not self._make_room():
            self._refuse(503, "Service Unavailable: too many connections")
            return
        self._arm_head_timer()

    # -- room for a new client -------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """Between requests, still sending a head, or still sending a body nobody has answered yet:
        closing it loses no request the app acted on."""
        if self.transport.is_closing():
            return False
        waiting = self._in_body and self.cycle is not None and not self.cycle.response_started
        return not self._busy or waiting

    def _make_room(self) -> bool:
        """Close the oldest idle connection of the address that holds the most, unless the newcomer's
        address is itself among those that hold the most (then it is refused: no eviction cascades
        while a flood goes on); False if no room can be made."""
        mine = len(self.by_address.get(self.address, ()))
        most = max(self.by_address.items(), key=lambda kv: len(kv[1]) if kv[0] != self.address else 0)
        if most[0] == self.address or len(most[1]) <= mine:
            return False
        for _, held in sorted(self.by_address.items(), key=lambda kv: -len(kv[1])):
            victim = next((c for c in held if c is not self and c.idle), None)
            if victim is not None:
                victim._refuse(503, "Service Unavailable: closed to make room for another client")
                return True
        return False

    # -- timers ----------------------------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._head_bytes = self._parsed_head = self._head_count = 0
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self._refuse(408, "Request Timeout: the request head took too long")

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()  # answered already (a 401 before the body): the rest is not wanted
            return
        self._refuse(408, "Request Timeout: the request body took too long")

    def _refuse(self, status: int, reason: str) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(_answer(status, reason))
            self.transport.close()

    # -- uvicorn's callbacks ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        self.last_active = self.loop.time()
        if self._head_timer is None and not self._busy and not self._in_body:
            self._arm_head_timer()  # the first bytes of the next request's head
        in_head = self._head_timer is not None
        if in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # still in the head after the parser took these bytes, and the head is too large
        if in_head and self._head_timer is not None and self._head_bytes > self.max_header_bytes:
            self._refuse(431, "Request Header Fields Too Large")

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_count += 1
        if self._head_count > MAX_HEADERS:
            self._refuse(431, "Request Header Fields Too Large: too many headers")
            return
        # a whole head sent in one write is parsed at once: count what the parser took, too
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count_head(self, n: int) -> None:
        self._parsed_head += n
        if self._parsed_head > self.max_header_bytes:
            self._refuse(431, "Request Header Fields Too Large")

    def on_headers_complete(self) -> None:
        self._disarm()
        if self.transport.is_closing():
            return
        self._busy = self._in_body = True
        super().on_headers_complete()
        self._body_timer = self.loop.call_later(self.body_timeout, self._body_timed_out)

    def on_body(self, body: bytes) -> None:
        if not self.transport.is_closing():
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_body = False
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        if not self.transport.is_closing() and self.cycle is not None:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        self._busy = bool(self.pipeline)
        self.last_active = self.loop.time()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        held = self.by_address.get(self.address)
        if held is not None:
            held.pop(self, None)
            if not held:
                del self.by_address[self.address]
        super().connection_lost(exc)


def protocol_for(web: WebSettings) -> type[GuardedProtocol]:
    return type(
        "ListenerProtocol",
        (GuardedProtocol,),
        {
            "header_timeout": web.header_timeout_seconds,
            "body_timeout": web.body_timeout_seconds,
            "max_header_bytes": web.max_header_bytes,
            "max_connections": web.max_connections,
            "max_per_client": web.max_connections_per_client,
            "exempt": frozenset(web.trusted_proxies),
            "by_address": {},
        },
    )


def uvicorn_config(app: Any, host: str, port: int, web: WebSettings, **extra: Any) -> uvicorn.Config:
    """The one listener configuration: `run` and the test and demo servers all use it."""
    trusted = ",".join(web.trusted_proxies)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_for(web),
        ssl_certfile=web.tls_cert_file,
        ssl_keyfile=web.tls_key_file,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=web.idle_timeout_seconds,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        **extra,
    )
