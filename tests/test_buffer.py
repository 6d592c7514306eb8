"""Group commit: batching, acknowledgement after commit, bounded queue, failure isolation, flush on close."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from analytics.buffer import BatchWriter
from analytics.errors import InvalidData, StoreError, Unavailable
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


class PickyStore(Recorder):
    """Refuses any batch holding an event whose path is `/bad`, as SQLite refuses text it cannot encode."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    async def __call__(self, events: Sequence[Event]) -> None:
        self.attempts += 1
        if any(e.pathname == "/bad" for e in events):
            raise InvalidData("an event could not be stored as it is")
        await super().__call__(events)


async def test_a_row_the_store_refuses_fails_only_its_own_request() -> None:
    store = PickyStore()
    writer = BatchWriter(store, max_events=1000, interval=0.01, queue_max=10_000)
    writer.start()
    honest = [writer.submit([event(ts=i)]) for i in range(40)]
    poisoned = writer.submit([event(ts=99, pathname="/bad")])
    honest += [writer.submit([event(ts=100 + i)]) for i in range(40)]
    results = await asyncio.gather(*honest, poisoned, return_exceptions=True)
    assert results[:-1] == [None] * 80
    assert isinstance(results[-1], InvalidData)
    assert sorted(e.ts for b in store.batches for e in b) == [*range(40), *range(100, 140)]
    assert (writer.committed, writer.rejected, writer.failed) == (80, 1, 0)
    assert store.attempts <= 2 * 7 + 1  # halves down to the one request: about 2 log2(81) commits
    await writer.close()


async def test_an_outage_is_logged_once_then_summarised_then_its_end(caplog: pytest.LogCaptureFixture) -> None:
    store = Recorder()
    writer = BatchWriter(store, max_events=1, interval=0.0, queue_max=1000)
    writer.start()
    store.fail = True
    for _ in range(50):
        with pytest.raises(Unavailable):
            await writer.submit([event()])
    store.fail = False
    await writer.submit([event()])
    await writer.close()
    errors = [r for r in caplog.records if r.name == "analytics.buffer" and r.levelname == "ERROR"]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert any("accepts writes again" in r.getMessage() and "50 events" in r.getMessage() for r in caplog.records)


async def test_events_that_would_wait_too_long_for_their_commit_are_refused_at_once() -> None:
    store = Recorder()
    store.gate = asyncio.Event()  # the database is slow: the first commit does not end
    writer = BatchWriter(store, max_events=1, interval=0.0, queue_max=1000, shed_after=0.05)
    writer.start()
    first, second = writer.submit([event(ts=1)]), writer.submit([event(ts=2)])
    await asyncio.sleep(0.1)  # the second has now waited longer than shed_after behind the first
    with pytest.raises(Unavailable, match="saturated"):
        writer.submit([event(ts=3)])
    assert writer.shed == 1
    store.gate.set()
    await asyncio.gather(first, second)
    await writer.submit([event(ts=4)])  # the queue drained: accepted again
    await writer.close()
