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


PARENT_POLL_S = 0.5  # how often a worker checks that its parent still runs (where prctl is not available)
IN_WORKER = False
"""True in a worker process: work meant for a worker is done where it is, never sent on to another pool."""


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(0)


def initialize(parent: int, niceness: int) -> None:
    """Runs first in each worker: a worker must not outlive the server. Their pipes do not tell them (each worker
    holds both ends of the pool's queues), so without this a killed server left its workers (and multiprocessing's
    resource tracker) waiting for good. On Linux the kernel kills the worker the moment its parent dies
    (PR_SET_PDEATHSIG; strictly, when the thread that spawned it ends: the event loop's thread, which submits all
    work). Everywhere, a thread also polls for a new parent pid, which covers a parent that died before prctl was
    called and systems without prctl."""
    global IN_WORKER
    IN_WORKER = True
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before (or while) the worker started
        os._exit(0)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="watch-parent").start()
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
