"""Group commit: batching, acknowledgement after commit, bounded queue, failure isolation, flush on close."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from analytics.buffer import BatchWriter
from analytics.errors import StoreError, Unavailable
from analytics.events import Event
from tests.test_store_sqlite import event


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[Event]] = []
        self.fail = False
        self.gate: asyncio.Event | None = None

    async def __call__(self, events: Sequence[Event]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise StoreError("disk full")
        self.batches.append(list(events))


async def test_concurrent_requests_share_one_commit_and_are_answered_after_it() -> None:
    store = Recorder()
    writer = BatchWriter(store, max_events=100, interval=0.01, queue_max=1000)
    writer.start()
    futures = [writer.submit([event(ts=i)]) for i in range(10)]
    assert not any(f.done() for f in futures)
    await asyncio.gather(*futures)
    assert [len(b) for b in store.batches] == [10]
    await writer.close()


async def test_a_full_batch_is_committed_without_waiting_for_the_interval() -> None:
    store = Recorder()
    writer = BatchWriter(store, max_events=5, interval=60.0, queue_max=1000)
    writer.start()
    futures = [writer.submit([event(ts=i)]) for i in range(12)]
    await asyncio.wait_for(asyncio.gather(*futures[:10]), timeout=5)
    assert [len(b) for b in store.batches][:2] == [5, 5]
    await writer.close()  # the last two are flushed at close, not after 60 s
    assert sum(len(b) for b in store.batches) == 12


async def test_a_requests_events_stay_in_one_batch() -> None:
    store = Recorder()
    writer = BatchWriter(store, max_events=2, interval=0.001, queue_max=1000)
    writer.start()
    await asyncio.gather(writer.submit([event(ts=1)]), writer.submit([event(ts=2), event(ts=3)]))
    assert [[e.ts for e in b] for b in store.batches] == [[1, 2, 3]]
    await writer.close()


async def test_a_failed_commit_fails_its_requests_and_the_writer_goes_on() -> None:
    store = Recorder()
    writer = BatchWriter(store, max_events=100, interval=0.001, queue_max=1000)
    writer.start()
    store.fail = True
    with pytest.raises(Unavailable, match="disk full"):
        await writer.submit([event()])
    store.fail = False
    await writer.submit([event(ts=7)])
    assert [[e.ts for e in b] for b in store.batches] == [[7]]
    assert (writer.failed, writer.committed) == (1, 1)
    await writer.close()


async def test_the_queue_is_bounded() -> None:
    store = Recorder()
    store.gate = asyncio.Event()
    writer = BatchWriter(store, max_events=2, interval=0.0, queue_max=3)
    writer.start()
    first = writer.submit([event(), event()])
    for _ in range(100):  # let the writer take the first batch; it is then held by the gate
        if writer.waiting == 2 and not writer._pending:
            break
        await asyncio.sleep(0)
    second = writer.submit([event()])
    with pytest.raises(Unavailable, match="queue is full"):
        writer.submit([event()])
    store.gate.set()
    await asyncio.gather(first, second)
    writer.submit([event()])  # room again
    await writer.close()
    assert sum(len(b) for b in store.batches) == 4


async def test_close_flushes_everything_and_refuses_new_events() -> None:
    store = Recorder()
    writer = BatchWriter(store, max_events=1000, interval=60.0, queue_max=1000)
    writer.start()
    futures = [writer.submit([event(ts=i)]) for i in range(3)]
    await writer.close()
    assert all(f.done() and f.exception() is None for f in futures)
    with pytest.raises(Unavailable, match="shutting down"):
        writer.submit([event()])
