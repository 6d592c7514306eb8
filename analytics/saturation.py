"""How saturated the server's event loop is, and how much ingest it should take: the lag of a timer that should
fire every 50 ms drives the share of requests admitted.

When the server cannot keep up, requests wait before their turn in the kernel's socket buffers and in the
loop's queue; no timestamp of the request's own shows that wait (its head is parsed at the end of it), but the
loop's lag does: a timer fires late by about as long as one turn of the loop takes, which is the wait of a
request that has just arrived. The lag is averaged over a few turns: one long pause (a collection, a big
answer) is not saturation, a loop that stays late is.

Refusing everything while the loop is late would starve the server: under a flood whose clients retry at once,
even cheap refusals keep the loop late. So the share admitted falls by a fifth each turn the loop is late and
rises by a twentieth each turn it is not (additive increase, multiplicative decrease, as TCP does): it settles
where the accepted requests keep the lag near its bound.

A loop can also be late because other programs keep the machine's cores busy: the server then waits for a core,
not for its own work, and refusing requests would lose honest events without making it any faster (a beacon is
not retried). So lateness counts only while the process itself is busy: while it ran for at least `BUSY` of
the time its loop was not waiting for a core (its CPU time over the same turns, all its threads, against the
wall time less the loop thread's wait in the kernel's run queue, read from /proc/self/schedstat on Linux;
averaged the same way). Without that correction, a saturated server on a machine whose other programs take
half the cores would look idle. A server starved by its neighbours keeps admitting everything;
`ingest.shed_after_ms` still bounds how long an event waits for its commit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

PERIOD = 0.05
LOWEST_SHARE = 0.05
BUSY = 0.5
"""The share of one core the process must use, of the time it could run, for its loop's lateness to count as
its own saturation: a flood at the maximum rate keeps it above 1 (the loop and the database's threads), light
traffic near 0.01."""
_SCHEDSTAT = Path("/proc/self/schedstat")


def run_queue_wait() -> float:
    """Seconds the loop's thread (the process's main thread) has waited for a core since it started; 0 where
    the kernel does not say (not Linux, or no schedstat)."""
    try:
        return int(_SCHEDSTAT.read_text().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


class LoopLag:
    def __init__(
        self,
        bound: float = 0.2,
        cpu: Callable[[], float] = time.process_time,
        waited: Callable[[], float] = run_queue_wait,
    ) -> None:
        self.bound = bound
        self._cpu = cpu
        self._waited = waited
        self.lag = 0.0
        """Seconds, an exponential average of the last turns' lags."""
        self.busy = 0.0
        """The share of a core the process used over the last turns, of the time it could run (averaged like
        `lag`)."""
        self.share = 1.0
        """The share of ingest requests admitted."""
        self._credit = 0.0

    def admit(self) -> bool:
        if self.share >= 1.0:
            return True
        self._credit += self.share
        if self._credit >= 1.0:
            self._credit -= 1.0
            return True
        return False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        started, used, waited = loop.time(), self._cpu(), self._waited()
        while True:
            await asyncio.sleep(PERIOD)
            now, cpu, wait = loop.time(), self._cpu(), self._waited()  # also the next turn's start
            took = now - started
            late = max(took - PERIOD, 0.0)
            could_run = max(took - (wait - waited), PERIOD / 10)
            self.lag = 0.7 * self.lag + 0.3 * late
            self.busy = 0.7 * self.busy + 0.3 * (cpu - used) / could_run
            started, used, waited = now, cpu, wait
            if self.lag > self.bound and self.busy >= BUSY:
                self.share = max(LOWEST_SHARE, self.share * 0.8)
            else:
                self.share = min(1.0, self.share + 0.05)
