"""Drop counters: per site, local day and reason, counted in memory and written with the event batches."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, date, datetime

import pytest

from analytics.app import batch_insert, flush_drops, upkeep
from analytics.config import Config
from analytics.drops import FLUSH_SECONDS, DropCounts, DropRow, rows
from analytics.errors import StoreError
from analytics.events import Event
from analytics.jobs import purge
from analytics.rollup import day_number
from analytics.sites import Site
from analytics.store import Store
from tests.conftest import Clock, Harness, pageview, start

PARIS = Site(1, "example.com", "Europe/Paris")
TOKYO = Site(2, "example.jp", "Asia/Tokyo")


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_counts_wait_a_second_then_go_as_one_row_per_site_day_and_reason() -> None:
    ticks = Ticks()
    counts = DropCounts(ticks)
    assert not counts.due()
    for _ in range(1000):
        counts.add(PARIS, "bot")
    counts.add(PARIS, "property-not-allowed", 3)
    counts.add(TOKYO, "bot")
    assert counts.pending and not counts.due()
    ticks.now = FLUSH_SECONDS
    assert counts.due()
    # 23:30 UTC on March 14: already March 15 in Tokyo, still March 15 (00:30) in Paris.
    at = datetime(2026, 3, 14, 23, 30, tzinfo=UTC)
    assert rows(counts.take(), at) == [
        (1, day_number(date(2026, 3, 15)), "bot", 1000),
        (1, day_number(date(2026, 3, 15)), "property-not-allowed", 3),
        (2, day_number(date(2026, 3, 15)), "bot", 1),
    ]
    assert not counts.pending and not counts.due()
    counts.add(PARIS, "gpc")
    counts.request_flush()
    assert counts.due()  # a flush asked for does not wait


class FailingStore:
    def __init__(self) -> None:
        self.calls: list[tuple[int, Sequence[DropRow]]] = []

    async def insert_events(self, events: Sequence[Event], drops: Sequence[DropRow] = ()) -> None:
        self.calls.append((len(events), drops))
        raise StoreError("disk full")


async def test_counts_of_a_batch_that_failed_go_with_a_later_one() -> None:
    ticks = Ticks()
    counts = DropCounts(ticks)
    counts.add(PARIS, "bot", 2)
    ticks.now = FLUSH_SECONDS
    store = FailingStore()
    insert = batch_insert(store, counts, lambda: datetime(2026, 3, 14, 12, tzinfo=UTC))  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        await insert([])
    assert store.calls == [(0, [(1, day_number(date(2026, 3, 14)), "bot", 2)])]
    assert counts.pending  # given back
    counts.add(PARIS, "bot")
    assert rows(counts.take(), datetime(2026, 3, 14, 12, tzinfo=UTC)) == [(1, day_number(date(2026, 3, 14)), "bot", 3)]


async def _counts(h: Harness, site_id: int = 1) -> dict[str, int]:
    await flush_drops(h.services)
    today = day_number(h.clock.now.date())
    return {reason: count for _, _, reason, count in await h.store.drop_counts(site_id, today, today)}


async def test_every_drop_reason_and_every_property_left_out_is_counted_for_its_site(harness: Harness) -> None:
    await harness.add_site("other.example", allowed_hostnames=("*",), excluded_paths=("/admin/*",))
    assert (await harness.send(pageview(), headers={"Sec-GPC": "1"})).headers["x-analytics-dropped"] == "gpc"
    assert (await harness.send(pageview(), headers={"DNT": "1"})).headers["x-analytics-dropped"] == "dnt"
    assert (await harness.send(pageview(), headers={"User-Agent": "curl/8.0"})).headers["x-analytics-dropped"] == "bot"
    bots = await harness.send(pageview(domain="example.com,other.example"), headers={"User-Agent": "curl/8.0"})
    assert bots.headers["x-analytics-dropped"] == "bot"
    assert (await harness.send(pageview(url="https://elsewhere.example/"))).status_code == 202
    assert (await harness.send(pageview(domain="nobody.example"))).headers["x-analytics-dropped"] == "unknown-site"
    excluded = await harness.send(pageview(domain="other.example", url="https://other.example/admin/users"))
    assert excluded.headers["x-analytics-dropped"] == "excluded-path"
    stored = await harness.send(pageview(name="Signup", props={"plan": "pro", "email": "jane@example.com", "id": 7}))
    assert stored.status_code == 202 and "x-analytics-dropped" not in stored.headers
    both = await harness.send(pageview(domain="example.com,other.example", props={"plan": "pro"}))
    assert both.status_code == 202
    assert await _counts(harness) == {
        "gpc": 1,
        "dnt": 1,
        "bot": 2,
        "hostname-not-allowed": 1,
        "property-not-allowed": 2,  # email and id; plan is allowed
    }
    other = next(s for s in await harness.store.list_sites() if s.domain == "other.example")
    assert await _counts(harness, other.id) == {"bot": 1, "excluded-path": 1, "property-not-allowed": 1}
    columns = [r["name"] for r in await harness.rows("PRAGMA table_info(drops)")]
    assert columns == ["site_id", "day", "reason", "count"]  # nothing about a visitor, nor any value


async def test_a_quiet_server_writes_its_counters_with_the_upkeep(harness: Harness) -> None:
    await harness.send(pageview(), headers={"DNT": "1"})  # no event is stored, so no batch takes the count
    assert harness.services.drops.pending
    await upkeep(harness.services, harness.clock.now)
    assert not harness.services.drops.pending
    today = day_number(harness.clock.now.date())
    assert await harness.store.drop_counts(1, today, today) == [(1, today, "dnt", 1)]


async def test_the_counters_of_the_last_second_are_written_at_shutdown(config: Config, clock: Clock) -> None:
    async with start(config, clock) as h:
        await h.add_site()
        await h.send(pageview(), headers={"DNT": "1"})
        await h.send(pageview(props={"plan": "pro"}))
        assert h.services.drops.pending
    path = config.database.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        assert dict(db.execute("SELECT reason, count FROM drops").fetchall()) == {"dnt": 1, "property-not-allowed": 1}
    db.close()


async def test_counters_are_purged_with_the_aggregates(harness: Harness) -> None:
    store: Store = harness.store
    today = harness.clock.now.date()
    old = date(today.year - 3, 1, 1)
    await store.insert_events([], [(1, day_number(old), "bot", 5), (1, day_number(today), "bot", 1)])
    report = await purge(store, harness.clock.now, 48, 25)
    assert report.drop_counters == 1 and "1 daily drop counters" in str(report)
    assert await store.drop_counts(1, 0, 10**7) == [(1, day_number(today), "bot", 1)]
