"""Group commit: events from many requests are written in one transaction, and each request is answered only
after the batch holding its events has committed ("acknowledged means durable").

A batch is committed when it holds `max_events` or `interval` after its first event, whichever comes first; while
one commit runs, the next batch fills. The queue is bounded: past `queue_max` waiting events, or when the store
fails, callers get `Unavailable` (HTTP 503) instead of the server buffering without bound or crashing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from analytics.errors import InvalidData, Unavailable
from analytics.events import Event
from analytics.metrics import Histogram

log = logging.getLogger("analytics.buffer")

Insert = Callable[[Sequence[Event]], Awaitable[None]]
Committed = Callable[[Sequence[Event]], None]


class BatchWriter:
    def __init__(
        self,
        insert: Insert,
        max_events: int,
        interval: float,
        queue_max: int,
        shed_after: float = 0.0,
        committed: Committed | None = None,
    ) -> None:
        self._insert = insert
        self._committed = committed
        """Told of each committed batch before its requests are answered (midnight.OpenVisits.record)."""
        self._shed_after = shed_after
        self._since: list[float] = []
        """When each pending request was queued (parallel to _pending)."""
        self._max_events = max_events
        self._interval = interval
        self._queue_max = queue_max
        self._pending: list[tuple[list[Event], asyncio.Future[None]]] = []
        self._pending_events = 0
        self._in_flight = 0
        self._has_items = asyncio.Event()
        self._full = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.committed = 0
        self.failed = 0
        self.rejected = 0
        self.shed = 0
        self.batch_seconds = Histogram()
        self._outage = Outage()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="batch-writer")

    @property
    def waiting(self) -> int:
        """Events accepted but not yet committed (queued or being written)."""
        return self._pending_events + self._in_flight

    def submit(self, events: list[Event]) -> asyncio.Future[None]:
        """Queues the events of one request; the future resolves once they are committed, or fails."""
        if self._closing:
            raise Unavailable("the server is shutting down")
        if self.waiting + len(events) > self._queue_max:
            raise Unavailable(f"the write queue is full ({self._queue_max} events waiting)")
        now = time.monotonic()
        if self._shed_after and self._since and now - self._since[0] > self._shed_after:
            # Queued events already wait longer than shed_after for their commit: more would only wait longer.
            self.shed += 1
            raise Unavailable(
                f"the server is saturated (events wait over {self._shed_after * 1000:.0f} ms to be stored)"
            )
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((events, future))
        self._since.append(now)
        self._pending_events += len(events)
        self._has_items.set()
        if self._pending_events >= self._max_events:
            self._full.set()
        return future

    async def close(self) -> None:
        """Stops taking events, commits everything queued, and returns when done."""
        self._closing = True
        self._has_items.set()
        self._full.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._has_items.wait()
            if not self._pending:
                if self._closing:
                    return
                self._has_items.clear()
                continue
            if self._pending_events < self._max_events and not self._closing and self._interval > 0:
                # A timer rather than wait_for(): no task is created per batch.
                timer = loop.call_later(self._interval, self._full.set)
                await self._full.wait()
                timer.cancel()
            await self._commit(self._take())

    def _take(self) -> list[tuple[list[Event], asyncio.Future[None]]]:
        """The oldest requests' events, up to `max_events` (a request's events are never split)."""
        count = cut = 0
        for cut, (events, _) in enumerate(self._pending, 1):  # noqa: B007 -- `cut` is used after the loop
            count += len(events)
            if count >= self._max_events:
                break
        taken = self._pending[:cut]
        del self._pending[:cut]
        del self._since[:cut]
        self._pending_events -= count
        if self._pending_events < self._max_events:
            self._full.clear()
        return taken

    async def _commit(self, taken: list[tuple[list[Event], asyncio.Future[None]]]) -> None:
        self._in_flight = sum(len(events) for events, _ in taken)
        started = time.perf_counter()
        try:
            await self._store(taken)
        finally:
            self._in_flight = 0
            self.batch_seconds.observe(time.perf_counter() - started)

    async def _store(self, taken: list[tuple[list[Event], asyncio.Future[None]]]) -> None:
        """Commits the requests' events together; when the store refuses a row as it is, the requests are split in
        halves and retried, so that only the request holding that row fails (log2 of the batch extra commits)."""
        batch = [event for events, _ in taken for event in events]
        try:
            await self._insert(batch)
        except InvalidData as exc:
            if len(taken) > 1:
                half = len(taken) // 2
                await self._store(taken[:half])
                await self._store(taken[half:])
                return
            self.rejected += len(batch)
            log.warning("a request's events were refused by the database (the request got 400): %s", exc)
            _fail(taken, exc)
        except Exception as exc:  # noqa: BLE001 -- the writer must outlive any failure of one batch
            self.failed += len(batch)
            self._outage.failed(len(batch), exc)
            _fail(taken, Unavailable(f"the database is not accepting writes: {exc}"))
        else:
            self.committed += len(batch)
            self._outage.recovered()
            if self._committed is not None:
                try:
                    self._committed(batch)
                except Exception:  # the writer must survive a bug here: the events are stored, answer them
                    log.exception("after a commit, recording %d events for midnight's visits failed", len(batch))
            for _, future in taken:
                if not future.done():
                    future.set_result(None)


def _fail(taken: list[tuple[list[Event], asyncio.Future[None]]], error: Exception) -> None:
    for _, future in taken:
        if not future.done():
            future.set_exception(error)


class Outage:
    """Logs a store outage once when it starts, then a summary at most every `every` seconds, and once more when
    writes succeed again: an outage under load fails hundreds of batches a second, one ERROR line each was noise
    that buried the cause."""

    def __init__(self, every: float = 10.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.every, self.monotonic = every, monotonic
        self.since: float | None = None
        self.lost = self.unlogged = 0
        self.logged_at = 0.0

    def failed(self, events: int, exc: BaseException) -> None:
        now = self.monotonic()
        self.lost += events
        if self.since is None:
            self.since, self.logged_at = now, now
            log.error("%d events were not stored (their requests got 503 and can be retried): %s", events, exc)
            return
        self.unlogged += events
        if now - self.logged_at >= self.every:
            log.error(
                "the database still refuses writes: %d more events got 503 in the last %.0f s (%s)",
                self.unlogged,
                now - self.logged_at,
                exc,
            )
            self.logged_at, self.unlogged = now, 0

    def recovered(self) -> None:
        if self.since is None:
            return
        log.warning(
            "the database accepts writes again after %.1f s; %d events got 503 meanwhile",
            self.monotonic() - self.since,
            self.lost,
        )
        self.since, self.lost, self.unlogged = None, 0, 0
