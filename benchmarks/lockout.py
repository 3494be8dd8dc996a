"""Can hostile clients without a token lock Prometheus and Alertmanager out of the listener?

Real sockets on loopback. Hostile clients, from one address or a handful in 127.0.0.0/8, each keep up to
`per_source` connections open for the whole run, reconnecting as soon as the listener closes one, in
three kinds: one `GET /healthz` and then idle on keep-alive; a request head trickled a byte at a time; a
form body to the approve endpoint trickled a byte at a time. Meanwhile a prober from another address
(127.0.0.1) asks for `/metrics` and `/healthz` on fresh connections, ten times a second: every answer
and its latency is kept. Target: every probe answered 200 within 1 s, throughout.

    python -m benchmarks.lockout [--seconds 20] [--per-source 1000] [--sources 1]
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import selectors
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("idle", "trickle_head", "trickle_body")
TRICKLE_EVERY = 0.5  # seconds between two bytes of a trickling client


@dataclass
class Siege:
    """What the prober saw, and what the hostile clients managed."""

    probes: list[tuple[float, int]] = field(default_factory=list)  # (latency, status), 0: no answer
    hostile_opened: int = 0
    hostile_refused: int = 0  # answered 503 at once or closed
    peak_hostile_open: int = 0

    @property
    def worst(self) -> float:
        return max((lat for lat, _ in self.probes), default=0.0)

    @property
    def p99(self) -> float:
        lats = sorted(lat for lat, _ in self.probes)
        return lats[int(0.99 * (len(lats) - 1))] if lats else 0.0

    @property
    def failed(self) -> int:
        return sum(1 for _, status in self.probes if status != 200)


def _probe(host: str, port: int, path: str, timeout: float = 5.0) -> tuple[float, int]:
    t0 = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout, source_address=("127.0.0.1", 0)) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n".encode())
            head = s.recv(64)
    except OSError:
        return time.monotonic() - t0, 0
    status = int(head[9:12]) if head.startswith(b"HTTP/1.1 ") and head[9:12].isdigit() else 0
    return time.monotonic() - t0, status


def _opening(kind: str, decision: str) -> bytes:
    if kind == "idle":
        return b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    if kind == "trickle_head":
        return b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    body_head = (
        f"POST /api/v1/decisions/{decision}/approve HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 4000\r\n\r\n"
    )
    return body_head.encode()


def siege(
    host: str,
    port: int,
    *,
    sources: list[str],
    per_source: int,
    seconds: float,
    decision: str = "0" * 32,
) -> Siege:
    """The hostile clients in a process of their own (so they take no time from the listener's process
    but what the listener spends on them), the prober here; bounded in time and in sockets."""
    result = Siege()
    cmd = [sys.executable, "-m", "benchmarks.lockout", "--attack", host, str(port), ",".join(sources)]
    cmd += [str(per_source), str(seconds + 2), decision]
    attacker = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
    try:
        time.sleep(1.5)  # the siege is laid before the first probe
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for path in ("/metrics", "/healthz"):
                result.probes.append(_probe(host, port, path))
            time.sleep(0.1)
        out, _ = attacker.communicate(timeout=60)
    finally:
        if attacker.poll() is None:
            attacker.kill()
    opened, refused, peak = (int(x) for x in out.split())
    result.hostile_opened, result.hostile_refused, result.peak_hostile_open = opened, refused, peak
    return result


def attack(host: str, port: int, sources: list[str], per_source: int, seconds: float, decision: str) -> None:
    """The hostile clients: hold `per_source` connections from each source for `seconds`, coming back
    50 ms after the listener closes one. Prints what they managed: opened, refused, peak open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 2 * len(sources) * per_source + 256)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    sel = selectors.DefaultSelector()
    kinds: dict[socket.socket, tuple[str, str]] = {}
    due: list[tuple[float, str, str]] = [
        (0.0, src, KINDS[i % len(KINDS)]) for src in sources for i in range(per_source)
    ]
    opened = refused = peak = 0
    end = time.monotonic() + seconds
    next_trickle = time.monotonic() + TRICKLE_EVERY
    while time.monotonic() < end:
        now = time.monotonic()
        for item in [d for d in due if d[0] <= now]:
            due.remove(item)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.bind((item[1], 0))
                with contextlib.suppress(BlockingIOError):
                    s.connect((host, port))
            except OSError:
                s.close()
                due.append((now + 0.05, item[1], item[2]))
                continue
            sel.register(s, selectors.EVENT_WRITE, s)
            kinds[s] = (item[1], item[2])
            opened += 1
        for key, events in sel.select(timeout=0.02):
            s = key.data  # the socket itself, registered as its own data
            src, kind = kinds[s]
            if events & selectors.EVENT_WRITE:
                with contextlib.suppress(OSError):
                    s.send(_opening(kind, decision))
                sel.modify(s, selectors.EVENT_READ, s)
                continue
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if b" 503 " in data[:13]:
                refused += 1
            if not data:  # closed by the listener: come back in a moment
                sel.unregister(s)
                s.close()
                del kinds[s]
                due.append((time.monotonic() + 0.05, src, kind))
        if time.monotonic() >= next_trickle:
            next_trickle += TRICKLE_EVERY
            for s, (_, kind) in kinds.items():
                if kind != "idle":
                    with contextlib.suppress(OSError):
                        s.send(b"a")
        peak = max(peak, len(kinds))
    for s in kinds:
        s.close()
    print(opened, refused, peak)


def main() -> None:
    from exporter.http.server import ServerThread
    from exporter.simulator import Simulator, World, load_scenario
    from exporter.wiring import Exporter
    from tests.helpers import exporter_config

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--per-source", type=int, default=1000)
    ap.add_argument("--sources", type=int, default=1)
    ap.add_argument("--attack", nargs=6, help=argparse.SUPPRESS)  # the hostile clients' own process
    args = ap.parse_args()
    if args.attack:
        host, port, sources, per, secs, decision = args.attack
        attack(host, int(port), sources.split(","), int(per), float(secs), decision)
        return
    sim = ServerThread(Simulator(World(load_scenario("seed"))).app).start()
    exporter = Exporter(exporter_config(sim.url), start_poller=False)
    exporter.poller.poll_once()
    server = ServerThread(exporter.app).start()
    try:
        sources = [f"127.0.0.{2 + i}" for i in range(args.sources)]
        got = siege(
            server.host, server.port, sources=sources, per_source=args.per_source, seconds=args.seconds
        )
    finally:
        server.stop()
        sim.stop()
    print(f"hostile sources {len(sources)} x {args.per_source} connections, {args.seconds:.0f} s")
    print(f"  hostile connections opened {got.hostile_opened}, refused or closed {got.hostile_refused}")
    print(
        f"  probes {len(got.probes)}, not 200: {got.failed}, "
        f"p99 {got.p99 * 1000:.1f} ms, worst {got.worst * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
