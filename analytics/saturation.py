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
"""

from __future__ import annotations

import asyncio

PERIOD = 0.05
LOWEST_SHARE = 0.05


class LoopLag:
    def __init__(self, bound: float = 0.2) -> None:
        self.bound = bound
        self.lag = 0.0
        """Seconds, an exponential average of the last turns' lags."""
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
        while True:
            started = loop.time()
            await asyncio.sleep(PERIOD)
            late = max(loop.time() - started - PERIOD, 0.0)
            self.lag = 0.7 * self.lag + 0.3 * late
            if self.lag > self.bound:
                self.share = max(LOWEST_SHARE, self.share * 0.8)
            else:
                self.share = min(1.0, self.share + 0.05)
