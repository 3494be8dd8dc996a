"""CPU-heavy work in a helper process: parsing EM's large answers and rendering a large exposition.

The serving process answers scrapes on an event loop. A CPU-bound thread beside it (a 2 MB XML page,
a 120k-series exposition) holds the interpreter, and each of a scrape's system calls then waits up to
a switch interval to get it back. In a helper process that work shares no interpreter with the loop,
and the second core does it (figures in docs/benchmarks.md).

The helper is a plain child interpreter (`python -m exporter.metrics.offload`) that reads jobs from its
stdin and writes results to its stdout, pickled and length-prefixed: no multiprocessing machinery, so no
resource-tracker process and nothing imported but what the jobs need. One job at a time. It exits when
its stdin closes, which is also what happens when the exporter dies, however (kill -9 included). Small
jobs stay inline (tests, small installations): the helper costs a start and its memory. If the helper
dies (e.g. killed for memory), the job runs inline and the next big one starts a new helper.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

PARSE_MIN_BYTES = 256 * 1024  # an EM answer this large is parsed in the helper
RENDER_MIN_TASKS = 2000  # a snapshot with this many VM tasks (~24k series) is rendered in the helper
_LENGTH = struct.Struct("!Q")
# An answer is a kind byte and its data: bytes as they are (a rendered exposition: no second copy to
# unpickle), or a pickled (ok, value) for anything else.
_RAW, _PICKLED = b"R", b"P"


class HelperDied(Exception):
    pass


class Chunks(list[bytes]):
    """A job's answer of many byte strings: the helper sends them one after the other and the serving
    process reads them as one bytes object, so neither side holds a joined copy beside the parts."""


class Offload:
    def __init__(
        self, parse_min_bytes: int = PARSE_MIN_BYTES, render_min_tasks: int = RENDER_MIN_TASKS
    ) -> None:
        self.parse_min_bytes = parse_min_bytes
        self.render_min_tasks = render_min_tasks
        self._lock = threading.Lock()  # one job at a time, and the helper's start and stop
        self._proc: subprocess.Popen[bytes] | None = None
        self._closed = False
        self.jobs = 0  # run in the helper
        self.restarts = 0  # helpers found dead

    @property
    def helper_pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) in the helper process (fn and args must pickle), or inline if it cannot be used."""
        with self._lock:
            proc = self._ensure()
            if proc is not None:
                try:
                    ok, value = _call(proc, fn, args)
                except HelperDied:
                    log.warning(
                        "the helper process died; running this job inline and starting a new one next time"
                    )
                    self._forget(proc)
                else:
                    self.jobs += 1
                    if ok:
                        return value  # type: ignore[no-any-return]
                    raise value
        return fn(*args)

    def _ensure(self) -> subprocess.Popen[bytes] | None:
        if self._closed:
            return None
        if self._proc is None:
            try:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "exporter.metrics.offload"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    close_fds=True,
                )
            except OSError as exc:
                log.warning("cannot start a helper process (%s); parsing and rendering inline", exc)
                self._closed = True
        return self._proc

    def _forget(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = None
        self.restarts += 1
        proc.kill()
        proc.wait()

    def close(self) -> None:
        """Stop the helper: it finishes the job at hand (at most one render or parse) and exits."""
        with self._lock:
            self._closed = True
            proc, self._proc = self._proc, None
        if proc is not None:
            assert proc.stdin is not None
            proc.stdin.close()  # its end of input: it exits
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _call(proc: subprocess.Popen[bytes], fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
    assert proc.stdin is not None and proc.stdout is not None
    job = pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
    try:
        proc.stdin.write(_LENGTH.pack(len(job)) + job)
        proc.stdin.flush()
        answer = _read_answer(proc.stdout)
    except (BrokenPipeError, ConnectionError, OSError):
        raise HelperDied from None
    if answer is None:
        raise HelperDied
    kind, data = answer
    if kind == _RAW:
        return True, data
    ok, value = pickle.loads(data)  # noqa: S301 - our own child's answer, over its own pipe
    return bool(ok), value


def _read(stream: IO[bytes]) -> bytes | None:
    """One length-prefixed message, or None at the end of the stream."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    body = stream.read(size)
    return body if len(body) == size else None


def _read_answer(stream: IO[bytes]) -> tuple[bytes, bytes] | None:
    kind = stream.read(1)
    body = _read(stream)
    return None if not kind or body is None else (kind, body)


def serve() -> None:
    """The helper's loop: a job in, its result (or its exception) out, until stdin closes."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the answers
    jobs = sys.stdin.buffer
    while True:
        message = _read(jobs)
        if message is None:
            return  # the exporter closed our input, or is gone
        fn, args = pickle.loads(message)  # noqa: S301 - our parent's job, over our own pipe
        value: Any = None
        try:
            value = fn(*args)
            if isinstance(value, Chunks | bytes):
                kind, data = _RAW, list(value) if isinstance(value, Chunks) else [value]
            else:
                kind, data = _PICKLED, [_pickled(True, value)]
        except Exception as exc:
            kind, data = _PICKLED, [_pickled(False, exc)]
        out.write(kind + _LENGTH.pack(sum(len(d) for d in data)))
        for chunk in data:
            out.write(chunk)
        out.flush()
        del fn, args, data, message, value  # nothing held between jobs
        _trim()


def _trim() -> None:
    """Give the heap's free pages back after a job: a parse leaves the heap fragmented with the pieces of
    a freed tree, and the next render would otherwise grow the process past them (measured: the
    helper's peak after many jobs is well above a single render's)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _libc() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


_LIBC = _libc() if sys.platform == "linux" else None


def _pickled(ok: bool, value: Any) -> bytes:
    return pickle.dumps((ok, value), protocol=pickle.HIGHEST_PROTOCOL)


if __name__ == "__main__":
    serve()
