"""The audit log of start requests: one JSON line per decision, on disk before the HTTP answer goes out.

It is also the persisted state of the guards. On start the exporter reads it back to learn which
idempotency keys were used and when each plan was last started, so a restart never forgets that a
failover was already started. A line cut short by a crash is skipped on reading; the lines before it
are intact because each one is written whole with a single `write` and fsync'd.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from exporter.http.strict_json import clean

log = logging.getLogger(__name__)

RECENT = 200  # decisions kept in memory for GET /api/v1/actions


class AuditLog:
    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._fd: int | None = None
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT)
        self.lines_written = 0
        self.skipped_on_load = 0
        self._torn = False  # a write failed part-way: end that line before the next record
        self._lock_fd: int | None = None
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._lock_fd = _exclusive(self.path)
                # O_APPEND: every write lands at the end, whole.
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            except OSError as exc:  # no directory, no inode left, not ours: the guards have no memory
                self.close()
                raise AuditLogUnavailable(
                    f"the audit log {self.path} cannot be opened ({exc.strerror or exc}): without it the "
                    "guards have no memory, so actions are not enabled"
                ) from None
            warn_if_others_can_read(self.path, "the audit log")
            # A crash cut the last line short: it is ended before the next record, or that record
            # would be glued to it and lost with it. On a full disk that waits (the exporter still
            # starts and serves; a start fails closed until the disk takes the line end).
            self._torn = _ends_mid_line(self.path)
            if self._torn:
                try:
                    self._end_torn_line()
                except OSError as exc:
                    log.error(
                        "audit log %s ends in a line cut short and the disk refuses its end (%s): "
                        "no start until it has room",
                        self.path,
                        exc.strerror or exc,
                    )

    def read(self) -> Iterator[dict[str, Any]]:
        """Every record, oldest first; cut-short lines counted in skipped_on_load (and what a cut-short
        `starting` line still says, salvaged)."""
        if self.path is None or not self.path.exists():
            return
        with self.path.open("rb") as f:
            for raw in f:
                if not raw.strip():
                    continue  # the end written after a failed write, or an editor's blank line
                try:
                    record = json.loads(raw)
                except (ValueError, RecursionError):
                    self.skipped_on_load += 1  # a line a crash or a full disk cut short
                    salvaged = _torn_start(raw)
                    if salvaged is not None:
                        yield salvaged
                    continue
                if isinstance(record, dict):
                    # whatever a hand edit or an older version left there, every view must survive it
                    yield _valid_text(record)

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append one record, whole and fsync'd, or raise AuditWriteError (disk full, I/O error): then
        part of it may be on disk, and the next record starts on a line of its own."""
        record = {"time": _now_iso(), **record}
        line = encode(record)
        with self._lock:
            if self._fd is not None:
                try:
                    if self._torn:
                        self._end_torn_line()
                    _write_all(self._fd, line)
                    os.fsync(self._fd)
                except OSError as exc:
                    self._torn = True
                    raise AuditWriteError(f"audit log {self.path}: {exc.strerror or exc}") from None
            self.recent.append(record)
            self.lines_written += 1
        return record

    def _end_torn_line(self) -> None:
        assert self._fd is not None
        _write_all(self._fd, b"\n")
        os.fsync(self._fd)
        self._torn = False

    def size(self) -> int:
        return 0 if self.path is None or not self.path.exists() else self.path.stat().st_size

    def rotate(self, snapshot: dict[str, Any], keep: int = 3) -> bool:
        """Start a new file that begins with `snapshot` (what replay needs of the old one); the old
        file is kept as `<name>.1` (and `.2` ... `.<keep>` before it). False if the disk would not let
        us: then the current file simply goes on."""
        if self.path is None or self._fd is None:
            return False
        fresh = self.path.with_name(self.path.name + ".new")
        with self._lock:
            try:
                fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    _write_all(fd, encode({"time": _now_iso(), **snapshot}))
                    os.fsync(fd)
                except OSError:
                    os.close(fd)
                    raise
                for i in range(keep - 1, 0, -1):
                    older = self.path.with_name(f"{self.path.name}.{i}")
                    if older.exists():
                        older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
                self.path.replace(self.path.with_name(self.path.name + ".1"))
                fresh.replace(self.path)
                _fsync_dir(self.path.parent)
            except OSError as exc:
                log.error("audit log: could not rotate %s (%s); it goes on growing", self.path, exc.strerror)
                fresh.unlink(missing_ok=True)
                return False
            os.close(self._fd)
            self._fd = fd
            os.lseek(fd, 0, os.SEEK_END)
            self._torn = False
        log.info("audit log: rotated %s (the old one is %s.1)", self.path, self.path.name)
        return True

    def latest(self, n: int, caller: str | None = None) -> list[dict[str, Any]]:
        """The newest `n` decisions, newest first; only `caller`'s if one is named."""
        with self._lock:
            mine = [r for r in self.recent if caller is None or r.get("caller") == caller]
        return mine[-n:][::-1]

    def close(self) -> None:
        with self._lock:
            for fd in (self._fd, self._lock_fd):
                if fd is not None:
                    os.close(fd)
            self._fd = self._lock_fd = None


class AuditLogUnavailable(RuntimeError):
    """The audit log cannot be used at all: actions stay off, monitoring goes on."""


class AuditLogInUse(AuditLogUnavailable):
    """Another process holds the audit log: two exporters on one log could both start the same plan."""


def _exclusive(path: Path) -> int:
    """An exclusive lock on `<log>.lock` for as long as this process runs (a lock on the log itself would
    not survive its rotation); AuditLogInUse if another process holds it."""
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
        os.close(fd)
        raise AuditLogInUse(
            f"the audit log {path} is in use by another exporter process (pid {holder}): two processes on "
            "one log could both start a plan, so this one does not enable actions"
        ) from None
    with contextlib.suppress(OSError):  # the holder's pid, for the message above; a full disk may refuse
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


class AuditWriteError(OSError):
    """A record could not be put on disk whole. The message names the file, never the record."""


# The fields a torn line must still show, first: a "starting" line cut short still holds its plan.
LEADING = ("outcome", "plan_id", "request_id", "idempotency_key", "time")
MAX_TEXT = 1000  # characters a field keeps: no request or alert makes an audit line of 250 KB
_SALVAGE = re.compile(
    rb'^\{"outcome":"starting"(?:,"plan_id":"((?:[^"\\]|\\.)*)")?(?:,"request_id":"([^"]*)")?'
)


def encode(record: dict[str, Any]) -> bytes:
    ordered = {k: record[k] for k in LEADING if k in record}
    ordered.update((k, record[k]) for k in sorted(record) if k not in ordered)
    capped = {
        k: v[:MAX_TEXT] + "…" if isinstance(v, str) and len(v) > MAX_TEXT else v for k, v in ordered.items()
    }
    return (json.dumps(capped, separators=(",", ":")) + "\n").encode()


_WRITE = os.write  # one seam, for tests that make the disk full


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = _WRITE(fd, view)  # a full disk may take part of it, then refuse the rest
        if n <= 0:
            raise OSError(errno.ENOSPC, "no space left on device")
        view = view[n:]


def _torn_start(raw: bytes) -> dict[str, Any] | None:
    """What a cut-short "starting" line still says: it is a start, of this plan if the plan survived."""
    m = _SALVAGE.match(raw)
    if m is None:
        return None
    plan_id = json.loads(b'"' + m.group(1) + b'"') if m.group(1) is not None else None
    rid = m.group(2).decode("utf-8", "replace") if m.group(2) else "torn"
    return {"outcome": "starting", "plan_id": plan_id, "request_id": rid, "torn": True}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def warn_if_others_can_read(path: Path, what: str) -> None:
    """A file others on the machine may read or write (tokens, the guards' memory): said once, loudly."""
    mode = path.stat().st_mode
    if mode & 0o077:
        log.warning("%s %s is open to others (mode %o): chmod 600 it", what, path, mode & 0o777)


def _valid_text(value: Any) -> Any:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean(str(k)): _valid_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_valid_text(v) for v in value]
    return value


def _now_iso() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def _ends_mid_line(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"
