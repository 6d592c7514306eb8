"""Group commit: events from many requests are written in one transaction, and each request is answered only
after the batch holding its events has committed ("acknowledged means durable").

A batch is committed when it holds `max_events` or `interval` after its first event, whichever comes first; while
one commit runs, the next batch fills. The queue is bounded: past `queue_max` waiting events, or when the store
fails, callers get `Unavailable` (HTTP 503) instead of the server buffering without bound or crashing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from analytics.errors import Unavailable
from analytics.events import Event

log = logging.getLogger("analytics.buffer")

Insert = Callable[[Sequence[Event]], Awaitable[None]]


class BatchWriter:
    def __init__(self, insert: Insert, max_events: int, interval: float, queue_max: int) -> None:
        self._insert = insert
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
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((events, future))
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
        self._pending_events -= count
        if self._pending_events < self._max_events:
            self._full.clear()
        return taken

    async def _commit(self, taken: list[tuple[list[Event], asyncio.Future[None]]]) -> None:
        batch = [event for events, _ in taken for event in events]
        self._in_flight = len(batch)
        try:
            await self._insert(batch)
        except Exception as exc:  # noqa: BLE001 -- the writer must outlive any failure of one batch
            self.failed += len(batch)
            log.error("%d events were not stored (their requests got 503 and can be retried): %s", len(batch), exc)
            error = Unavailable(f"the database is not accepting writes: {exc}")
            for _, future in taken:
                if not future.done():
                    future.set_exception(error)
        else:
            self.committed += len(batch)
            for _, future in taken:
                if not future.done():
                    future.set_result(None)
        finally:
            self._in_flight = 0
