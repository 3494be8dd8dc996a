"""Scale benchmark: P plans x V VMs failing over at once, EM answering with a fixed latency.

    python -m benchmarks.scale                          # 200 plans x 50 VMs, 50 ms, about 3 minutes
    python -m benchmarks.scale --plans 5 --vms 4 --failover-seconds 8 --idle-seconds 4   # smoke run

The simulator and the exporter run as separate processes (as in production, they share no GIL); this
process scrapes. Side by side it runs a "naive" exporter that does what peers do: on every scrape it
logs on, reads the plans, then every session one request at a time, and renders afresh. Prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import multiprocessing
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from exporter.em import parse, xmldoc
from exporter.em.model import Session
from exporter.metrics.collectors import FailoverCollector
from exporter.polling.snapshot import Store

OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
END_RE = re.compile(rb"^veeam_failover_vm_end_timestamp_seconds\{([^}]*)\} ([0-9.e+]+)$", re.MULTILINE)
VALUE_RE = {
    name: re.compile(rb"^" + name.encode() + rb"(?:\{[^}]*\})? ([0-9.e+-]+)$", re.MULTILINE)
    for name in (
        "veeam_em_poll_requests",
        "veeam_em_poll_duration_seconds",
        "veeam_em_received_bytes_total",
        "veeam_em_last_successful_poll_timestamp_seconds",
    )
}
ACTIVE_RE = re.compile(
    rb'^veeam_failover_session_state\{[^}]*state="(?:Starting|Working|Stopping)"[^}]*\} 1\.0$', re.MULTILINE
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scenario(plans: int, vms: int, failover_seconds: float) -> dict[str, Any]:
    scale = 10.0
    results = ("Success", "Success", "Success", "Warning", "Success", "Failed", "Success")
    return {
        "name": f"scale-{plans}x{vms}",
        "time_scale": scale,
        "points_per_vm": 2,
        "plans": [
            {
                "name": f"Tenant {p:03d} failover",
                "tenant": f"tenant-{p:03d}",
                "backup_server": f"vbr{p % 4:02d}.example",
                "start_at_seconds": 0,
                "vm_stagger_seconds": failover_seconds * scale * 0.3 / max(1, vms),
                "vms": [
                    {
                        "name": f"t{p:03d}-vm{v:03d}",
                        "result": results[(p + v) % len(results)],
                        "duration_seconds": failover_seconds * scale * (0.5 + 0.2 * (v % 3)),
                        "restore_point_age_seconds": 600 + 300 * (v % 10),
                    }
                    for v in range(vms)
                ],
            }
            for p in range(plans)
        ],
    }


@contextlib.contextmanager
def process(
    args: list[str], ready: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **(env or {})}
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(ready, timeout=2).status_code < 500:
                    break
            if proc.poll() is not None:
                raise SystemExit(
                    f"{args[2:4]} exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}"
                )
            if time.monotonic() > deadline:
                raise SystemExit(f"{ready} not ready")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def simulator(scenario_file: Path, latency: float) -> Iterator[str]:
    """The EM simulator in its own process, answering `latency` seconds late; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "exporter", "simulate", "--scenario", str(scenario_file)]
    with process([*args, "--listen-address", f"127.0.0.1:{port}"], url + "/api/"):
        httpx.post(url + "/_sim/faults", json={"latency": latency})
        yield url


def family(pid: int) -> list[int]:
    """The process and all its descendants (the exporter's helper process, its resource tracker)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    found = [pid]
    for p in found:
        found.extend(c for c, parent in parents.items() if parent == p)
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process and its descendants."""
    total = 0.0
    for p in family(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def peak_rss_mb(pid: int) -> list[float]:
    """The peak RSS of the process and of each of its descendants; their sum is an upper bound of
    their peak together."""
    peaks = []
    for p in family(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
    return peaks


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class RawScraper:
    """Scrapes over one kept-alive raw socket, as a Prometheus scraper keeps its connection.

    It reads like Prometheus does (native code, no per-chunk interpreter work), so the figure is the
    exporter's, not an HTTP client library's.
    """

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self.sock: socket.socket | None = None
        self.buf = bytearray(1 << 20)

    def scrape(self, zipped: bool) -> tuple[float, int]:
        """(seconds from request to last byte, body bytes)."""
        request = (
            f"GET /metrics HTTP/1.1\r\nHost: {self.address[0]}:{self.address[1]}\r\nAccept: {OPENMETRICS}\r\n"
            f"Accept-Encoding: {'gzip' if zipped else 'identity'}\r\n\r\n"
        ).encode()
        t0 = time.perf_counter()
        head = b""
        for attempt in (1, 2):
            # the server may have closed the idle connection: then connect again, as Prometheus does
            if self.sock is None:
                self.sock = socket.create_connection(self.address, timeout=120)
            with contextlib.suppress(ConnectionError):
                self.sock.sendall(request)
                head = self.sock.recv(65536)
            if head:
                break
            self.sock.close()
            self.sock = None
            if attempt == 2:
                raise RuntimeError("the exporter closed the connection twice")
        while b"\r\n\r\n" not in head:
            assert self.sock is not None
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("the exporter closed the connection mid-answer")
            head += chunk
        head, _, start = head.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"scrape failed: {head[:80]!r}")
        length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
        if len(self.buf) < length:
            self.buf = bytearray(length)
        assert self.sock is not None
        view = memoryview(self.buf)
        view[: len(start)] = start
        size = len(start)
        while size < length:
            n = self.sock.recv_into(view[size:length])
            if n == 0:
                raise RuntimeError("the exporter closed the connection mid-body")
            size += n
        view.release()
        return time.perf_counter() - t0, length


def latency_load(host: str, port: int, seconds: float, burst: int, plain_every: int, result: Any) -> None:
    """In its own process: two scrapers every second (gzip, as Prometheus asks) plus a burst of `burst`
    concurrent scrapes every 2.5 s, every `plain_every`th burst in plain text. Sends back the latencies:
    "gzip" (all), "gzip_clean" (those that did not overlap a plain burst) and "plain"."""
    gzip_spans: list[tuple[float, float, float]] = []  # (start, end, latency)
    plain: list[float] = []
    plain_bursts: list[tuple[float, float]] = []
    lock = threading.Lock()
    stop = threading.Event()
    mine = threading.local()  # one kept-alive connection per scraping thread

    def one(zipped: bool) -> None:
        if not hasattr(mine, "scraper"):
            mine.scraper = RawScraper(host, port)
        start = time.monotonic()
        took, _ = mine.scraper.scrape(zipped)
        with lock:
            if zipped:
                gzip_spans.append((start, time.monotonic(), took))
            else:
                plain.append(took)

    def prometheus_like() -> None:
        while not stop.wait(1.0):
            one(True)

    threads = [threading.Thread(target=prometheus_like, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    end = time.monotonic() + seconds
    n = 0
    with ThreadPoolExecutor(burst) as pool:
        while time.monotonic() < end:
            time.sleep(2.5)
            zipped = not plain_every or n % plain_every != plain_every - 1
            began = time.monotonic()
            list(pool.map(one, [zipped] * burst))
            if not zipped:
                plain_bursts.append((began, time.monotonic()))
            n += 1
    stop.set()
    for t in threads:
        t.join(timeout=30)
    clean = [
        took for start, stop_, took in gzip_spans if not any(a < stop_ and start < b for a, b in plain_bursts)
    ]
    result.send({"gzip": [t for _, _, t in gzip_spans], "gzip_clean": clean, "plain": plain})


class Scraper:
    """Scrapes with httpx: for the watcher (reads values) and the naive mode."""

    def __init__(self, url: str) -> None:
        self.url = url + "/metrics"
        self.latency: dict[str, list[float]] = {"gzip": [], "plain": []}
        self.series = 0
        self._lock = threading.Lock()

    def scrape(self, zipped: bool, http: httpx.Client, decode: bool = True) -> bytes:
        headers = {"Accept": OPENMETRICS, "Accept-Encoding": "gzip" if zipped else "identity"}
        t0 = time.perf_counter()
        with http.stream("GET", self.url, headers=headers, timeout=120) as r:
            raw = b"".join(r.iter_raw())
        took = time.perf_counter() - t0
        with self._lock:
            self.latency["gzip" if zipped else "plain"].append(took)
        # decompressing is the scraper's CPU, on the same cores as the exporter: only when needed
        return gzip.decompress(raw) if zipped and decode else raw

    def burst(self, n: int, zipped: bool) -> None:
        with ThreadPoolExecutor(n) as pool, httpx.Client() as http:
            list(pool.map(lambda _: self.scrape(zipped, http, decode=False), range(n)))


def run_ours(args: argparse.Namespace, sim_url: str, workdir: Path) -> dict[str, Any]:
    port = free_port()
    config = {
        "em": {
            "url": sim_url,
            "username": "admin",
            "timeout_seconds": 60,
            "max_body_bytes": 512 * 1024 * 1024,
        },
        "poll": {
            "active_interval_seconds": args.active_interval,
            "idle_interval_seconds": args.idle_interval,
        },
        "listen_address": f"127.0.0.1:{port}",
        "log_level": "warning",
        "helper_process": args.helper_process,
        "readiness": {"enabled": args.readiness},
    }
    (workdir / "exporter.yaml").write_text(yaml.safe_dump(config))
    out: dict[str, Any] = {"polls": []}
    with process(
        [sys.executable, "-m", "exporter", "run", "--config", str(workdir / "exporter.yaml")],
        f"http://127.0.0.1:{port}/healthz",
        {"VEEAM_EM_PASSWORD": "admin"},
    ) as proc:
        url = f"http://127.0.0.1:{port}"
        scraper = Scraper(url)
        stop = threading.Event()
        seen_ends: dict[bytes, float] = {}
        freshness: list[float] = []
        cpu0 = cpu_seconds(proc.pid)
        first_poll: list[float] = []

        def watcher() -> None:
            last_ts = None
            last_bytes = None
            last_raw = b""
            with httpx.Client() as http:
                # Every 0.2 s, so freshness is measured to within that; the body only changes when a
                # poll publishes, and only a changed one is unpacked and read.
                while not stop.wait(0.2):
                    raw = scraper.scrape(True, http, decode=False)
                    now = time.time()
                    if raw == last_raw:
                        continue
                    last_raw = raw
                    body = gzip.decompress(raw)
                    for labels, value in END_RE.findall(body):
                        if labels not in seen_ends:
                            seen_ends[labels] = float(value)
                            if last_ts is not None:  # ends seen in the first scrape predate the watch
                                freshness.append(now - float(value))
                    vals = {
                        k: float(m.group(1)) if (m := r.search(body)) else None for k, r in VALUE_RE.items()
                    }
                    ts = vals["veeam_em_last_successful_poll_timestamp_seconds"]
                    if ts and ts != last_ts:
                        if not first_poll:
                            first_poll.append(now)
                        nbytes = vals["veeam_em_received_bytes_total"] or 0
                        out["polls"].append(
                            {
                                "requests": vals["veeam_em_poll_requests"],
                                "duration": vals["veeam_em_poll_duration_seconds"],
                                "bytes": None if last_bytes is None else nbytes - last_bytes,
                                "active": bool(ACTIVE_RE.search(body)),
                                "at": now,
                            }
                        )
                        last_ts, last_bytes = ts, nbytes
                    scraper.series = body.count(b"\n") - body.count(b"\n#")

        watch = threading.Thread(target=watcher, daemon=True)
        watch.start()
        # The latency scrapers run in their own process: the watcher's decompressing and regex work
        # would otherwise hold this interpreter and inflate their timings.
        ctx = multiprocessing.get_context("spawn")
        receive, send = ctx.Pipe(duplex=False)
        seconds = args.failover_seconds + args.idle_seconds + 10
        load = ctx.Process(
            target=latency_load, args=("127.0.0.1", port, seconds, 20, args.plain_every, send), daemon=True
        )
        load.start()
        while not receive.poll(1.0):
            if not load.is_alive():
                raise SystemExit(f"the latency scrapers died (exit code {load.exitcode})")
        latency = receive.recv()
        load.join(timeout=30)
        stop.set()
        watch.join(timeout=30)
        out["cpu"] = cpu_seconds(proc.pid) - cpu0
        out["rss"] = peak_rss_mb(proc.pid)
        out["latency"] = latency
        out["series"] = scraper.series
        out["freshness"] = freshness
        out["vms_ended"] = len(seen_ends)
    return out


class NaiveExporter:
    """What peers do: per scrape, log on, list, fetch each session, render from scratch."""

    def __init__(self, sim_url: str) -> None:
        self.sim = sim_url + "/api"
        self.requests = 0

    def collect(self) -> bytes:
        with httpx.Client(headers={"Accept": "application/xml"}, timeout=120) as http:
            r = http.post(self.sim + "/sessionMngr/?v=latest", auth=("admin", "admin"))
            h = {"X-RestSvcSessionId": r.headers["X-RestSvcSessionId"]}
            plans, _ = parse.parse_plans(
                http.get(self.sim + "/cloud/cloudFailoverPlans?format=Entity", headers=h).content
            )
            refs = xmldoc.parse_document(http.get(self.sim + "/cloud/failoverSessions", headers=h).content)
            ids = [xmldoc.id_from_uid(ref.get("UID")) for ref in refs]
            sessions: dict[tuple[str, str], Session] = {}
            for sid in ids:
                s = parse.parse_session(
                    http.get(f"{self.sim}/cloud/failoverSessions/{sid}?format=Entity", headers=h).content
                )
                key = (s.backup_server, s.plan)
                if key not in sessions or (s.start or 0) > (sessions[key].start or 0):
                    sessions[key] = s
            self.requests = 3 + len(ids)
        store = Store()
        store.publish(plans=tuple(plans), sessions=tuple(sessions.values()), up=True, ready=True)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(FailoverCollector(store))
        return generate_latest(registry)

    def serve(self, port: int) -> ThreadingHTTPServer:
        naive = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = naive.collect()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


def run_naive(args: argparse.Namespace, sim_url: str) -> dict[str, Any]:
    naive = NaiveExporter(sim_url)
    port = free_port()
    server = naive.serve(port)
    scraper = Scraper(f"http://127.0.0.1:{port}")
    try:
        with httpx.Client() as http:
            for _ in range(args.naive_scrapes):
                scraper.scrape(False, http)
        if args.naive_burst:
            scraper.burst(args.naive_burst, zipped=False)
    finally:
        server.shutdown()
    return {"latency": scraper.latency["plain"], "requests": naive.requests}


def table(rows: list[tuple[str, str, str]]) -> str:
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    return "\n".join(f"{a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows)


def ms(v: float) -> str:
    return f"{v * 1000:.1f} ms" if v < 1 else f"{v:.2f} s"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plans", type=int, default=200)
    ap.add_argument("--vms", type=int, default=50, help="VMs per plan")
    ap.add_argument("--latency", type=float, default=0.05, help="seconds EM adds to every answer")
    ap.add_argument("--failover-seconds", type=float, default=60, help="how long the failovers run")
    ap.add_argument("--idle-seconds", type=float, default=35, help="how long to watch after they end")
    ap.add_argument("--active-interval", type=float, default=5)
    ap.add_argument("--idle-interval", type=float, default=15)
    ap.add_argument("--naive-scrapes", type=int, default=3)
    ap.add_argument(
        "--no-helper-process",
        dest="helper_process",
        action="store_false",
        help="run the exporter with helper_process: false (everything in one process)",
    )
    ap.add_argument(
        "--no-readiness",
        dest="readiness",
        action="store_false",
        help="run the exporter with readiness.enabled: false (no replica points read)",
    )
    ap.add_argument(
        "--plain-every", type=int, default=2, help="every Nth burst asks for plain text (0: never)"
    )
    ap.add_argument(
        "--naive-burst", type=int, default=0, help="concurrent naive scrapes after the serial ones"
    )
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "scenario.yaml").write_text(
            yaml.safe_dump(scenario(args.plans, args.vms, args.failover_seconds))
        )
        with simulator(workdir / "scenario.yaml", args.latency) as sim_url:
            ours = run_ours(args, sim_url, workdir)
            naive = run_naive(args, sim_url)

    polls = ours["polls"]
    # The poll that first sees every session stopped still read them running: it counts as active.
    for prev, cur in zip([{"active": False}, *polls], polls, strict=False):
        cur["read_running"] = cur["active"] or prev["active"]
    active = [p for p in polls if p["read_running"]]
    idle = [p for p in polls if not p["read_running"]]
    later = active[1:] or active  # the first poll also logs on
    later_requests = [p["requests"] for p in later]
    g, gc, pl = ours["latency"]["gzip"], ours["latency"]["gzip_clean"], ours["latency"]["plain"]
    nv = naive["latency"]
    rows = [
        ("", "veeam-failover-exporter", "naive (peers)"),
        (
            "EM requests per poll, active",
            f"first {active[0]['requests']:.0f} (with the logon), then p50 "
            f"{statistics.median(later_requests):.0f} max {max(later_requests):.0f}"
            if active
            else "n/a",
            f"{naive['requests']} per scrape",
        ),
        (
            "EM requests per poll, idle",
            f"p50 {statistics.median(p['requests'] for p in idle):.0f} "
            f"max {max(p['requests'] for p in idle):.0f}"
            if idle
            else "n/a",
            "same",
        ),
        (
            "EM bytes per poll, active",
            f"p50 {statistics.median(p['bytes'] for p in active if p['bytes']) / 1e6:.2f} MB"
            if [p for p in active if p["bytes"]]
            else "n/a",
            "",
        ),
        (
            "poll cycle wall time",
            f"p50 {ms(statistics.median(p['duration'] for p in polls))} "
            f"max {ms(max(p['duration'] for p in polls))}"
            if polls
            else "n/a",
            "",
        ),
        (
            "/metrics gzip p50 / p99",
            f"{ms(pct(gc, 50))} / {ms(pct(gc, 99))}  (n={len(gc)}; not during a plain burst)",
            "",
        ),
        (
            "  the same, all samples",
            f"{ms(pct(g, 50))} / {ms(pct(g, 99))}  (n={len(g)}; incl. during 20 x plain bursts)",
            "",
        ),
        (
            "/metrics plain p50 / p99",
            f"{ms(pct(pl, 50))} / {ms(pct(pl, 99))}  (n={len(pl)})",
            f"{ms(pct(nv, 50))} / {ms(pct(nv, 99))}  (n={len(nv)})",
        ),
        ("naive p50 / ours gzip p99", f"{pct(nv, 50) / pct(gc, 99):.0f}x", ""),
        ("series", str(ours["series"]), ""),
        (
            "freshness p50 / p99",
            f"{ms(pct(ours['freshness'], 50))} / {ms(pct(ours['freshness'], 99))}"
            f"  ({len(ours['freshness'])} VM ends)",
            "",
        ),
        (
            "exporter peak RSS",
            f"{sum(ours['rss']):.0f} MB"
            + (
                f" ({' + '.join(f'{r:.0f}' for r in ours['rss'])}: its processes)"
                if len(ours["rss"]) > 1
                else ""
            ),
            "",
        ),
        (
            "exporter CPU per poll cycle",
            f"{ours['cpu'] / max(1, len(polls)):.2f} s ({len(polls)} polls, "
            f"{ours['cpu']:.1f} s total incl. serving)",
            "",
        ),
    ]
    print(
        f"scale benchmark: {args.plans} plans x {args.vms} VMs = {args.plans * args.vms} VMs, EM latency "
        f"{args.latency * 1000:.0f} ms, scrapers: 2 every 1 s + bursts of 20; "
        f"poll every {args.active_interval:g} s active / {args.idle_interval:g} s idle; "
        f"helper_process: {str(args.helper_process).lower()}, readiness: {str(args.readiness).lower()}"
    )
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
