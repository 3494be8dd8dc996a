"""The listener (exporter/http/listener.py) under clients without a token that try to hold it: idle,
trickling heads and bodies, from one address or many; whole heads over the limit; bodies before tokens."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.lockout import siege
from exporter.config import WebSettings
from exporter.http.server import ServerThread
from tests.helpers import RunningExporter, exporter_config, running_exporter, running_sim
from tests.loopback.test_approval import settings


@contextmanager
def listener(tmp_path: Path, web: WebSettings | None = None) -> Iterator[tuple[RunningExporter, str, int]]:
    """An exporter with approval mode on (so the approve endpoint takes bodies), on the given limits."""
    with running_sim("seed") as sim:
        config = replace(exporter_config(sim.url, actions=settings(tmp_path)), web=web or WebSettings())
        with running_exporter(config) as exp:
            exp.poll()
            server = ServerThread(exp.exporter.app, web=config.web).start()
            try:
                yield exp, server.host, server.port
            finally:
                server.stop()


@pytest.mark.parametrize(("sources", "per_source"), [(1, 1000), (5, 200), (20, 100)])
def test_hostile_idle_and_trickling_clients_never_lock_out_prometheus(
    tmp_path: Path, sources: int, per_source: int
) -> None:
    """1,000 hostile connections (idle keep-alive, trickled heads, trickled approval bodies) from one
    address, from five, or from twenty (more than the listener holds): /metrics and /healthz from
    another address answer 200 within 1 s throughout. Before the fix every probe got 503."""
    with listener(tmp_path) as (_, host, port):
        got = siege(
            host, port, sources=[f"127.0.0.{2 + i}" for i in range(sources)], per_source=per_source, seconds=8
        )
    assert got.hostile_opened >= sources * per_source  # the siege was laid
    assert len(got.probes) > 10
    assert got.failed == 0, f"{got.failed} of {len(got.probes)} probes not answered 200"
    assert got.worst < 1.0, f"a probe took {got.worst:.2f} s"


def _send(host: str, port: int, data: bytes, wait: float = 5.0) -> tuple[bytes, float]:
    with socket.create_connection((host, port), timeout=wait) as s:
        t0 = time.monotonic()
        s.sendall(data)
        try:
            return s.recv(4096), time.monotonic() - t0
        except TimeoutError:
            return b"", time.monotonic() - t0


@pytest.mark.parametrize("kb", [33, 60, 100])
def test_a_whole_head_over_the_limit_in_one_write_is_refused(tmp_path: Path, kb: int) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    head += b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 1000) for i in range(kb)) + b"\r\n"
    with listener(tmp_path) as (_, host, port):
        got, _ = _send(host, port, head)
        assert got.startswith(b"HTTP/1.1 431"), got[:60]
        # a head within the limit, in one write, is served
        ok, _ = _send(
            host, port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 20_000 + b"\r\n\r\n"
        )
        assert ok.startswith(b"HTTP/1.1 200"), ok[:60]


def test_a_body_without_a_token_is_not_waited_for(tmp_path: Path) -> None:
    """The approve endpoint answers a missing token at once, before the (never sent) body."""
    with listener(tmp_path) as (_, host, port):
        head = (
            "POST /api/v1/decisions/0123/approve HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        )
        got, took = _send(host, port, head.encode())
        assert got.startswith(b"HTTP/1.1 401") and took < 2.0, (got[:60], took)


def test_a_trickled_body_and_an_idle_connection_are_closed_in_time(tmp_path: Path) -> None:
    web = WebSettings(body_timeout_seconds=1.0, idle_timeout_seconds=2)
    with listener(tmp_path, web) as (_, host, port):
        form = (
            "POST /api/v1/decisions/0123/approve HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 3000\r\n\r\ntoken="
        )
        with socket.create_connection((host, port), timeout=10) as s:
            s.sendall(form.encode())
            t0 = time.monotonic()
            got = b""
            while not got and time.monotonic() - t0 < 8:
                s.sendall(b"a")  # one byte a quarter second: the whole body would take 12 minutes
                s.settimeout(0.25)
                try:
                    got = s.recv(4096)
                except TimeoutError:
                    continue
            took = time.monotonic() - t0
        assert got.startswith(b"HTTP/1.1 408") and 0.9 < took < 3.0, (got[:60], took)
        # a form that does not say how long it is, or is longer than a decision form, is refused at once
        chunked = form.replace("Content-Length: 3000", "Transfer-Encoding: chunked").removesuffix("token=")
        refused, _ = _send(host, port, chunked.encode())
        assert refused.startswith(b"HTTP/1.1 411"), refused[:60]
        # an idle kept-alive connection is closed after web.idle_timeout_seconds
        with socket.create_connection((host, port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
            t0 = time.monotonic()
            assert s.recv(4096) == b""  # closed by the listener
            assert 1.5 < time.monotonic() - t0 < 4.0


def test_past_the_cap_the_address_holding_most_makes_room(tmp_path: Path) -> None:
    web = WebSettings(max_connections=20, max_connections_per_client=15, header_timeout_seconds=30)
    with listener(tmp_path, web) as (_, host, port):
        hog = [socket.create_connection((host, port), source_address=("127.0.0.2", 0)) for _ in range(15)]
        other = [socket.create_connection((host, port), source_address=("127.0.0.3", 0)) for _ in range(5)]
        try:
            time.sleep(0.2)
            # the hog's 16th is refused by its own cap; a third address is served
            over, _ = _send_from("127.0.0.2", host, port)
            assert over.startswith(b"HTTP/1.1 503") and b"this address" in over
            served, _ = _send_from("127.0.0.4", host, port)
            assert served.startswith(b"HTTP/1.1 200"), served[:60]
            hog[0].settimeout(2)
            assert hog[0].recv(4096).startswith(b"HTTP/1.1 503")  # the hog's oldest made room
            for s in other:  # the other address kept all of its connections
                s.setblocking(False)
                with pytest.raises(BlockingIOError):
                    s.recv(1)
        finally:
            for s in hog + other:
                s.close()


def _send_from(source: str, host: str, port: int) -> tuple[bytes, float]:
    with socket.create_connection((host, port), timeout=5, source_address=(source, 0)) as s:
        t0 = time.monotonic()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return s.recv(4096), time.monotonic() - t0


def test_clients_that_never_read_their_answers_hold_no_slot(tmp_path: Path) -> None:
    """Eight clients ask for /metrics twenty times each (pipelined) and never read: the listener's
    writes to them stall. Before the fix they held every slot for ever (503 for everyone else); now a
    stalled client is cut after web.body_timeout_seconds."""
    web = WebSettings(max_connections=8, body_timeout_seconds=1.0)
    with running_sim("seed") as sim:
        config = replace(exporter_config(sim.url), web=web)
        with running_exporter(config) as exp:
            exp.poll()
            server = ServerThread(exp.exporter.app, web=web)
            server.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # inherited when accepted
            server.start()
            hostile = []
            try:
                for _ in range(8):
                    s = socket.socket()
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    s.bind(("127.0.0.2", 0))
                    s.connect((server.host, server.port))
                    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 20)
                    hostile.append(s)
                time.sleep(2.5)  # stalled past the body time-out, and cut
                for _ in range(10):
                    got, took = _send_from("127.0.0.1", server.host, server.port)
                    assert got.startswith(b"HTTP/1.1 200") and took < 1.0, (got[:60], took)
                    time.sleep(0.1)
            finally:
                for s in hostile:
                    s.close()
                server.stop()
