"""The exporter's listener: uvicorn with its C parser, and the limits uvicorn does not have.

The listener is also the failover trigger, so no client may hold it down without a token:
- a request's head (request line and headers) must arrive within `web.header_timeout_seconds`, from the
  connection's start or from its first byte (slow clients: 408, closed);
- a head over `web.max_header_bytes`, or with more than MAX_HEADERS headers, is refused (431, closed),
  so unfinished giant headers cannot take memory;
- past `web.max_connections` open connections a new one gets 503 at once and is closed;
- X-Forwarded-For is believed only from `web.trusted_proxies` (none by default).
"""

from __future__ import annotations

import asyncio
from typing import Any

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
    """uvicorn's httptools protocol, with a head time-out, head size and count limits, a connection cap."""

    header_timeout = 10.0
    max_header_bytes = 32 * 1024
    max_connections = 512

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._head_count = 0
        self._head_timer: asyncio.TimerHandle | None = None
        if len(self.connections) > self.max_connections:
            self._refuse(503, "Service Unavailable: too many connections")
            return
        self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        self._head_bytes = self._head_count = 0
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self._refuse(408, "Request Timeout: the request head took too long")

    def _refuse(self, status: int, reason: str) -> None:
        self._disarm_head_timer()
        if not self.transport.is_closing():
            self.transport.write(_answer(status, reason))
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if self._head_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm_head_timer()  # the first bytes of the next request's head
        in_head = self._head_timer is not None
        if in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # still in the head after the parser took these bytes, and the head is too large
        if in_head and self._head_timer is not None and self._head_bytes > self.max_header_bytes:
            self._refuse(431, "Request Header Fields Too Large")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_count += 1
        if self._head_count > MAX_HEADERS:
            self._refuse(431, "Request Header Fields Too Large: too many headers")
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        if self.transport.is_closing():
            return
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)


def protocol_for(web: WebSettings) -> type[GuardedProtocol]:
    return type(
        "ListenerProtocol",
        (GuardedProtocol,),
        {
            "header_timeout": web.header_timeout_seconds,
            "max_header_bytes": web.max_header_bytes,
            "max_connections": web.max_connections,
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
        # Prometheus keeps its connection between scrapes; uvicorn's default (5 s) would close it
        # before every scrape at any usual interval (up to a minute)
        timeout_keep_alive=65,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        **extra,
    )
