"""How the serving process is tuned for short scrape latencies and a small resident set (measured in
docs/benchmarks.md): the interpreter's switch interval and glibc's malloc."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys


def tune_serving_process() -> None:
    # The event loop answering scrapes shares the interpreter with the poller and the renderer, and
    # each of a scrape's system calls waits up to a switch interval to get it back: 0.2 ms, not 5.
    sys.setswitchinterval(0.0002)
    return_big_buffers_to_the_system()


MMAP_THRESHOLD = 128 * 1024
MALLOC_ARENAS = 2


def return_big_buffers_to_the_system() -> None:
    """glibc raises its mmap threshold each time a big block is freed, so after the first poll the
    14 MB exposition buffers and EM answers come from the heap and stay resident after use (measured:
    peak RSS 154 -> 110 MB with the helper process). A fixed threshold keeps them mmap'd: freed, returned.
    The environment variable does the same for the helper process, which glibc starts anew.

    And two heap arenas, not glibc's 8 a core: the poller, the renderer, the collections and the
    threadpool each filled their own, and the memory one freed stayed resident in it."""
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(MMAP_THRESHOLD))
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, MMAP_THRESHOLD)  # M_MMAP_THRESHOLD; a fixed value also stops its adjusting
        libc.mallopt(-8, MALLOC_ARENAS)  # M_ARENA_MAX, before the threads start
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass
