"""Worker processes for the heavy pure-Python work (rollups, open days), so the server's interpreter, which
parses and queues events, never waits for it behind the GIL.

Workers are spawned (the server's threads and sockets are not copied into them), run at a lower CPU priority
than the server, and exit by themselves when the process that started them dies, even by SIGKILL.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1


def _watch_parent(parent: int) -> None:
    """Portable fallback for the parent-death signal: poll, and exit once re-parented."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def initialize(parent: int, niceness: int) -> None:
    """Runs first in each worker."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(0)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="parent-watch").start()
    if niceness:
        with contextlib.suppress(OSError):
            os.nice(niceness)


def pool(workers: int, niceness: int = 0) -> concurrent.futures.ProcessPoolExecutor:
    return concurrent.futures.ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=initialize,
        initargs=(os.getpid(), niceness),
    )
