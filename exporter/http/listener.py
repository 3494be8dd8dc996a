"""The exporter's listener: uvicorn with its C parser, and the limits uvicorn does not have.

The listener is also the failover trigger, so no client may hold it down without a token:
- a request's head (request line and headers) must arrive within `web.header_timeout_seconds`, from the
  connection's start or from its first byte (slow clients: 408, closed);
- a request's body must arrive whole within `web.body_timeout_seconds` of its head (a trickled body: 408,
  closed);
- a head over `web.max_header_bytes`, however it arrives (in pieces or in one write), or with more than
  MAX_HEADERS headers, is refused (431, closed), so giant headers cannot take memory;
- a kept-alive connection with no request is closed after `web.idle_timeout_seconds`;
- a client that stops reading its answer for `web.body_timeout_seconds` is cut, and one the listener
  closed is cut if it has not taken the rest within CLOSE_GRACE_SECONDS (no slot held by not reading);
- one client address holds at most `web.max_connections_per_client` connections (503 at once past it;
  trusted proxies are exempt, they carry many clients);
- past `web.max_connections` the idlest connection of the address holding the most is closed to make
  room (one between requests, or still sending its head); only when every connection is busy with a
  request does a new one hear 503;
- X-Forwarded-For is believed only from `web.trusted_proxies` (none by default).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from exporter.config import WebSettings
from exporter.http.connection_book import ConnectionBook

MAX_HEADERS = 100
# a connection closed by the listener whose client reads nothing would wait for ever to flush: after this
# long it is cut (its slot is free again)
CLOSE_GRACE_SECONDS = 2.0


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
    book: ClassVar[ConnectionBook] = ConnectionBook(512, 64, frozenset())  # one per listener: protocol_for

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = self._parsed_head = self._head_count = 0
        self._timers: dict[str, asyncio.TimerHandle] = {}  # head, body, stall, cut
        self._busy = False  # a request is with the app
        self._in_body = False  # between a head and the end of its body
        self.address = self.client[0] if self.client else ""
        refused = self.book.add(self)
        if refused is not None:
            self._refuse(503, f"Service Unavailable: {refused}")
            return
        self._arm_head_timer()

    @property
    def idle(self) -> bool:
        """Between requests, still sending a head, or still sending a body nobody has answered yet:
        closing it loses no request the app acted on."""
        if self.transport.is_closing():
            return False
        waiting = self._in_body and self.cycle is not None and not self.cycle.response_started
        return not self._busy or waiting

    def make_way(self) -> None:
        self._refuse(503, "Service Unavailable: closed to make room for another client")

    def _arm(self, name: str, delay: float, then: Callable[[], None]) -> None:
        if name not in self._timers:
            self._timers[name] = self.loop.call_later(delay, self._fire, name, then)

    def _fire(self, name: str, then: Callable[[], None]) -> None:
        self._timers.pop(name, None)
        then()

    def _cancel(self, *names: str) -> None:
        for name in names:
            timer = self._timers.pop(name, None)
            if timer is not None:
                timer.cancel()

    def _arm_head_timer(self) -> None:
        self._head_bytes = self._parsed_head = self._head_count = 0
        self._arm("head", self.header_timeout, self._head_timed_out)

    def _head_timed_out(self) -> None:
        if not self.transport.is_closing():
            self._refuse(408, "Request Timeout: the request head took too long")

    def _body_timed_out(self) -> None:
        if self.transport.is_closing():
            return
        if self.cycle is not None and self.cycle.response_started:
            self._close()  # answered already (a 401 before the body): the rest is not wanted
            return
        self._refuse(408, "Request Timeout: the request body took too long")

    def _refuse(self, status: int, reason: str) -> None:
        self._cancel("head", "body")
        if not self.transport.is_closing():
            self.transport.write(_answer(status, reason))
            self._close()

    def _close(self) -> None:
        """Close, and cut it if the client has not taken what is left to send within a grace period: a
        client that reads nothing must not keep its slot after the listener let it go."""
        self.transport.close()
        self._arm("cut", CLOSE_GRACE_SECONDS, self.transport.abort)

    def timeout_keep_alive_handler(self) -> None:
        if not self.transport.is_closing():
            self._close()

    def pause_writing(self) -> None:
        # the client stopped reading: cut it unless it reads again within the body time-out (asking for
        # a large /metrics and never reading would hold the slot for ever)
        super().pause_writing()
        self._arm("stall", self.body_timeout, self.transport.abort)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._cancel("stall")

    # -- uvicorn's callbacks ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if "head" not in self._timers and not self._busy and not self._in_body:
            self._arm_head_timer()  # the first bytes of the next request's head
        in_head = "head" in self._timers
        if in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # still in the head after the parser took these bytes, and the head is too large
        if in_head and "head" in self._timers and self._head_bytes > self.max_header_bytes:
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
        self._cancel("head", "body")
        if self.transport.is_closing():
            return
        self._busy = self._in_body = True
        super().on_headers_complete()
        self._arm("body", self.body_timeout, self._body_timed_out)

    def on_body(self, body: bytes) -> None:
        if not self.transport.is_closing():
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_body = False
        self._cancel("body")
        if not self.transport.is_closing() and self.cycle is not None:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        self._busy = bool(self.pipeline)
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel(*list(self._timers))
        self.book.remove(self)
        super().connection_lost(exc)


def protocol_for(web: WebSettings) -> type[GuardedProtocol]:
    return type(
        "ListenerProtocol",
        (GuardedProtocol,),
        {
            "header_timeout": web.header_timeout_seconds,
            "body_timeout": web.body_timeout_seconds,
            "max_header_bytes": web.max_header_bytes,
            "book": ConnectionBook(
                web.max_connections, web.max_connections_per_client, frozenset(web.trusted_proxies)
            ),
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
