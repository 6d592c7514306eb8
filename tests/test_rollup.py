"""Rollup of closed days: rows computed from visits, written idempotently, in the site's time zone."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from analytics import jobs, rollup
from analytics.jobs import LEASE, LEASE_TTL_MS, Busy, closed_days, purge, rollup_site, run_jobs
from analytics.rollup import DAY, HOUR, Row, day_bounds, local_hour, rollup_day
from analytics.sites import Site
from tests.conftest import IPHONE_UA, Harness, pageview
from tests.test_store_sqlite import event

MIN = 60_000
PARIS = ZoneInfo("Europe/Paris")


def rows_by_key(rows: list[Row], period: int = DAY) -> dict[tuple[str, str], tuple[int, ...]]:
    return {
        (r.dimension, r.value): (r.visitors, r.visits, r.pageviews, r.events, r.bounces, r.duration)
        for r in rows
        if r.period == period and not r.filter_dimension
    }


def at(day: date, hour: int, minute: int = 0, tz: ZoneInfo = PARIS) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).timestamp() * 1000)


DAY1 = date(2026, 3, 14)


def test_totals_and_breakdowns_of_one_day() -> None:
    events = [
        event(ts=at(DAY1, 9), visitor_id=1, pathname="/", source="Google", country="FR"),
        event(ts=at(DAY1, 9, 5), visitor_id=1, pathname="/pricing", source="Google", country="FR"),
        event(ts=at(DAY1, 9, 6), visitor_id=1, name="Signup", pathname="/pricing", props='{"plan":"pro"}'),
        event(ts=at(DAY1, 11), visitor_id=2, pathname="/pricing", source="", country="DE"),
        event(ts=at(DAY1, 15), visitor_id=1, pathname="/", source="", country="FR"),  # a second visit
    ]
    rows = rows_by_key(rollup_day(events, DAY1, PARIS, min_visitors=1))
    # visitors, visits, pageviews, events, bounces, duration (s)
    assert rows[("", "")] == (2, 3, 4, 5, 2, 360)
    assert rows[("visit:source", "Google")] == (1, 1, 2, 3, 0, 360)
    assert rows[("visit:source", "")] == (2, 2, 2, 2, 2, 0)
    assert rows[("visit:country", "FR")] == (1, 2, 3, 4, 1, 360)
    assert rows[("visit:entry_page", "/")] == (1, 2, 3, 4, 1, 360)
    assert rows[("visit:exit_page", "/pricing")] == (2, 2, 3, 4, 1, 360)
    assert rows[("event:page", "/pricing")] == (2, 2, 2, 2, 1, 360)
    assert rows[("event:page", "/")] == (1, 2, 2, 2, 1, 360)
    assert rows[("event:name", "Signup")] == (1, 1, 0, 1, 0, 360)
    assert rows[("event:name", "pageview")] == (2, 3, 4, 4, 2, 360)
    assert rows[("props:plan", "pro")] == (1, 1, 0, 1, 0, 360)
    assert rows[("visit:browser_version", "Chrome 120")][1] == 3


def test_hourly_totals_are_in_the_sites_time_zone() -> None:
    events = [event(ts=at(DAY1, 0, 30), visitor_id=1), event(ts=at(DAY1, 23, 50), visitor_id=2)]
    hourly = rows_by_key(rollup_day(events, DAY1, PARIS, min_visitors=1), HOUR)
    assert list(hourly) == [("", "")]
    hours = sorted(
        r.bucket for r in rollup_day(events, DAY1, PARIS, min_visitors=1) if r.period == HOUR and not r.filter_dimension
    )
    assert hours == [local_hour(at(DAY1, 0, 30), PARIS), local_hour(at(DAY1, 23, 50), PARIS)]
    assert hours[1] - hours[0] == 23


def test_a_visit_belongs_to_the_day_it_starts_in_with_all_its_events() -> None:
    events = [
        event(ts=at(DAY1, 23, 50), visitor_id=1, pathname="/late"),
        event(ts=at(date(2026, 3, 15), 0, 10), visitor_id=1, pathname="/after-midnight"),
        event(ts=at(date(2026, 3, 15), 9), visitor_id=2, pathname="/next-day"),
    ]
    first = rows_by_key(rollup_day(events, DAY1, PARIS, min_visitors=1))
    second = rows_by_key(rollup_day(events, date(2026, 3, 15), PARIS, min_visitors=1))
    assert first[("", "")][:3] == (1, 1, 2)
    assert ("event:page", "/after-midnight") in first
    assert second[("", "")][:3] == (1, 1, 1)
    assert ("event:page", "/after-midnight") not in second


def test_days_close_30_minutes_after_local_midnight() -> None:
    site = Site(1, "example.com", "Europe/Paris")
    first = at(date(2026, 3, 12), 10)
    assert closed_days(site, first, datetime(2026, 3, 14, 23, 40, tzinfo=UTC)) == [
        date(2026, 3, 12),
        date(2026, 3, 13),
        date(2026, 3, 14),
    ]  # 00:20 in Paris on the 15th
    assert closed_days(site, first, datetime(2026, 3, 14, 23, 0, tzinfo=UTC))[-1] == date(2026, 3, 13)


def test_dst_days_have_23_and_25_hours() -> None:
    spring_start, spring_end = day_bounds(date(2026, 3, 29), PARIS)
    autumn_start, autumn_end = day_bounds(date(2026, 10, 25), PARIS)
    assert (spring_end - spring_start) // 3_600_000 == 23
    assert (autumn_end - autumn_start) // 3_600_000 == 25


async def agg(h: Harness, sql: str) -> list[dict[str, Any]]:
    return await h.rows(sql)


async def test_rollup_job_writes_days_and_months_idempotently(harness: Harness) -> None:
    await harness.store.remove_site("example.com")
    await harness.add_site("example.com", timezone="Europe/Paris")
    harness.clock.now = datetime(2026, 3, 13, 10, tzinfo=UTC)
    await harness.send(pageview(referrer="https://www.google.com/"))
    await harness.send(pageview(url="https://example.com/pricing"))
    harness.clock.now = datetime(2026, 3, 14, 10, tzinfo=UTC)
    await harness.send(pageview(), headers={"User-Agent": IPHONE_UA})
    site = next(s for s in await harness.store.list_sites() if s.domain == "example.com")
    report = await rollup_site(harness.store, site, datetime(2026, 3, 15, 12, tzinfo=UTC), min_visitors=1)
    assert report.days == [date(2026, 3, 13), date(2026, 3, 14)] and report.visits == 2
    query = (
        "SELECT period, bucket, dim, val, visitors, visits, pageviews, bounces FROM agg "
        "ORDER BY period, bucket, dim, val"
    )
    first = await agg(harness, query)
    totals = [(r["period"], r["visitors"], r["visits"], r["pageviews"]) for r in first if r["dim"] == 0]
    assert (1, 1, 1, 2) in totals and (1, 1, 1, 1) in totals  # the two days
    assert (2, 2, 2, 3) in totals  # March = the sum of its days
    assert (await rollup_site(harness.store, site, datetime(2026, 3, 15, 12, tzinfo=UTC), min_visitors=1)).days == []
    again = await rollup_site(harness.store, site, datetime(2026, 3, 15, 12, tzinfo=UTC), again=True, min_visitors=1)
    assert len(again.days) == 2
    assert await agg(harness, query) == first
    sources = await agg(
        harness,
        "SELECT v.value, a.visits FROM agg a JOIN dim_values v ON v.id = a.val "
        "WHERE a.period = 2 AND a.fdim = 0 AND a.dim = 4 ORDER BY v.value",
    )
    assert [(r["value"], r["visits"]) for r in sources] == [("", 1), ("Google", 1)]


async def test_purge_keeps_raw_events_until_rolled_up_and_old_enough(harness: Harness) -> None:
    harness.clock.now = datetime(2026, 3, 10, 10, tzinfo=UTC)
    await harness.send(pageview())
    harness.clock.now = datetime(2026, 3, 12, 10, tzinfo=UTC)
    await harness.send(pageview(url="https://example.com/later"))
    now = datetime(2026, 3, 12, 20, tzinfo=UTC)
    nothing = await purge(harness.store, now, 48, 25)
    assert nothing.raw_events == 0  # old enough, but not rolled up yet
    site = next(s for s in await harness.store.list_sites() if s.domain == "example.com")
    await rollup_site(harness.store, site, now, min_visitors=1)
    first = await purge(harness.store, now, 48, 25)
    assert first.raw_events == 1  # the 10th: rolled up and over 48 h old; the 12th is neither
    assert [r["pathname"] for r in await harness.rows()] == ["/later"]
    assert (await purge(harness.store, now, 48, 25)).raw_events == 0
    assert "removed 0 raw events" in str(await purge(harness.store, now, 48, 25))


async def test_purge_deletes_aggregates_past_retention_and_values_nothing_uses(harness: Harness) -> None:
    harness.clock.now = datetime(2024, 1, 10, 10, tzinfo=UTC)
    await harness.send(pageview(url="https://example.com/ancient-page"))
    harness.clock.now = datetime(2026, 2, 10, 10, tzinfo=UTC)
    await harness.send(pageview(url="https://example.com/recent-page"))
    site = next(s for s in await harness.store.list_sites() if s.domain == "example.com")
    await rollup_site(harness.store, site, datetime(2026, 2, 12, tzinfo=UTC), min_visitors=1)
    assert {"value": "/ancient-page"} in await harness.rows("SELECT value FROM dim_values")
    report = await purge(harness.store, datetime(2026, 3, 1, tzinfo=UTC), 48, 25)
    assert report.aggregate_rows > 0 and report.unused_values > 0 and report.raw_events == 2
    months = {r["bucket"] for r in await harness.rows("SELECT bucket FROM agg WHERE period = 2")}
    assert months == {2026 * 12 + 1}  # February 2026 is kept, January 2024 (26 months old) is gone
    values = await harness.rows("SELECT value FROM dim_values")
    assert {"value": "/ancient-page"} not in values and {"value": "/recent-page"} in values
    assert (await purge(harness.store, datetime(2026, 3, 1, tzinfo=UTC), 48, 25)).aggregate_rows == 0


async def test_the_jobs_lease_lets_one_worker_at_a_time(harness: Harness) -> None:
    store = harness.store
    assert await store.acquire_lease("jobs", "a", 1_000, 60_000)
    assert not await store.acquire_lease("jobs", "b", 2_000, 60_000)
    assert await store.acquire_lease("jobs", "a", 3_000, 60_000)  # renewing one's own lease
    assert await store.acquire_lease("jobs", "b", 63_001, 60_000)  # a's lease expired: a worker died
    await store.release_lease("jobs", "a")  # not a's any more: nothing happens
    assert not await store.acquire_lease("jobs", "a", 64_000, 60_000)
    await store.release_lease("jobs", "b")
    assert await store.acquire_lease("jobs", "a", 65_000, 60_000)


async def test_run_jobs_refuses_while_another_worker_runs_them(harness: Harness) -> None:
    now = datetime(2026, 3, 12, 20, tzinfo=UTC)
    assert await harness.store.acquire_lease(LEASE, "other-worker", int(now.timestamp() * 1000), 60_000)
    with pytest.raises(Busy, match="another worker"):
        await run_jobs(harness.store, now, "me", 48, 25, min_visitors=1)
    await harness.store.release_lease(LEASE, "other-worker")
    harness.clock.now = datetime(2026, 3, 10, 10, tzinfo=UTC)
    await harness.send(pageview())
    reports, cleaned = await run_jobs(harness.store, now, "me", 48, 25, min_visitors=1)
    assert [len(r.days) for r in reports] == [2] and cleaned is not None and cleaned.raw_events == 1


async def test_a_killed_jobs_holder_blocks_the_others_for_two_minutes_at_most(harness: Harness) -> None:
    now = datetime(2026, 3, 12, 20, tzinfo=UTC)
    # `analytics rollup` took the lease, then was killed with SIGKILL: nothing released or renews it.
    assert await harness.store.acquire_lease(LEASE, "cli-killed", int(now.timestamp() * 1000), LEASE_TTL_MS)
    with pytest.raises(Busy):
        await run_jobs(harness.store, now + timedelta(minutes=1), "server", 48, 25, min_visitors=1)
    reports, _ = await run_jobs(harness.store, now + timedelta(minutes=2, seconds=1), "server", 48, 25, min_visitors=1)
    assert reports


async def test_the_lease_is_renewed_while_the_jobs_run(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "LEASE_RENEW_S", 0.05)
    store = harness.store
    real = store.roll_up_day

    async def slow(*args: Any) -> tuple[int, int]:
        await asyncio.sleep(0.5)
        return await real(*args)

    monkeypatch.setattr(store, "roll_up_day", slow)
    harness.clock.now = datetime(2026, 3, 10, 10, tzinfo=UTC)
    await harness.send(pageview())
    now = datetime(2026, 3, 12, 20, tzinfo=UTC)
    running = asyncio.create_task(run_jobs(store, now, "me", 48, 25, min_visitors=1))
    await asyncio.sleep(0.3)
    [lease] = await harness.rows("SELECT holder, expires_at FROM leases")
    assert lease["holder"] == "me" and lease["expires_at"] > int(now.timestamp() * 1000) + LEASE_TTL_MS
    await running
    assert await harness.rows("SELECT * FROM leases") == []


async def test_the_rollup_runs_outside_the_servers_interpreter(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its pure-Python work held the GIL against the event loop: ingest answered in seconds during a rollup."""

    def not_here(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("rollup_day ran in the server's process")

    monkeypatch.setattr(rollup, "rollup_day", not_here)
    harness.clock.now = datetime(2026, 3, 10, 10, tzinfo=UTC)
    await harness.send(pageview())
    site = next(s for s in await harness.store.list_sites() if s.domain == "example.com")
    report = await rollup_site(harness.store, site, datetime(2026, 3, 12, 20, tzinfo=UTC), min_visitors=1)
    assert report.visits == 1 and report.rows > 0
