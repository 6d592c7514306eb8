"""Jobs that cron or the server's scheduler runs: the rollup of closed days into aggregates, and the purge.

Both run under one lease in the store, so that any number of workers (and cron) never run them twice at once.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from analytics import midnight, rollup
from analytics.errors import AnalyticsError
from analytics.profile import EVERYTHING, Collect
from analytics.sites import Site, minimised
from analytics.store.base import Store
from analytics.visits import TIMEOUT_MS


@dataclass(frozen=True, slots=True)
class RollupReport:
    site: str
    days: list[date]
    visits: int
    rows: int


def closed_days(site: Site, first_ts: int, now: datetime) -> list[date]:
    """Local days from the first raw event's to the last one whose visits can no longer change."""
    tz = ZoneInfo(site.timezone)
    first = datetime.fromtimestamp(first_ts / 1000, tz).date()
    days: list[date] = []
    day = first
    while True:
        _, end = rollup.day_bounds(day, tz)
        if end + TIMEOUT_MS > int(now.timestamp() * 1000):
            return days
        days.append(day)
        day += timedelta(days=1)


async def rollup_site(
    store: Store, site: Site, now: datetime, again: bool = False, *, min_visitors: int
) -> RollupReport:
    """Rolls up every closed day that has raw events and was not rolled up yet (all of them with `again`), with
    its rows folded at `min_visitors` (privacy.min_visitors)."""
    first_ts = await store.first_event_ts(site.id)
    if first_ts is None:
        return RollupReport(site.domain, [], 0, 0)
    done = set() if again else await store.rolled_up_days(site.id)
    report = RollupReport(site.domain, [], 0, 0)
    now_ms = int(now.timestamp() * 1000)
    for day in closed_days(site, first_ts, now):
        if rollup.day_number(day) in done:
            continue
        visits, rows = await store.roll_up_day(site, day, now_ms, min_visitors)
        report = RollupReport(site.domain, [*report.days, day], report.visits + visits, report.rows + rows)
    return report


def utc_now() -> datetime:
    return datetime.now(UTC)


LEASE = "rollup-and-purge"
LEASE_TTL_MS = 2 * 60 * 1000
"""The lease lapses this long after its holder stopped renewing it (a killed `analytics rollup`, a crashed
server): then another worker or cron takes over. The holder renews it every LEASE_RENEW_S while it works."""
LEASE_RENEW_S = 20.0


class Busy(AnalyticsError):
    """Another worker holds the jobs' lease."""


async def run_jobs(
    store: Store,
    now: datetime,
    holder: str,
    raw_retention_hours: int,
    aggregate_months: int,
    sites: str | None = None,
    again: bool = False,
    do_purge: bool = True,
    do_rollup: bool = True,
    *,
    min_visitors: int,
    collect: Collect = EVERYTHING,
) -> tuple[list[RollupReport], PurgeReport | None]:
    """Rollup then purge, under the lease; raises Busy when another worker is at it."""
    now_ms = int(now.timestamp() * 1000)
    if not await store.acquire_lease(LEASE, holder, now_ms, LEASE_TTL_MS):
        raise Busy("another worker is running the rollup or the purge right now; try again in a few minutes")
    renewing = asyncio.create_task(_renew(store, holder, now_ms), name="lease-renewal")
    try:
        reports = []
        if do_rollup:
            for site in await store.list_sites():
                if sites is None or site.domain == sites:
                    rolled = minimised(site, collect)  # no goal rows while its goals are off
                    reports.append(await rollup_site(store, rolled, now, again, min_visitors=min_visitors))
        cleaned = await purge(store, now, raw_retention_hours, aggregate_months) if do_purge else None
        return reports, cleaned
    finally:
        renewing.cancel()
        await store.release_lease(LEASE, holder)


async def _renew(store: Store, holder: str, started_ms: int) -> None:
    """Keeps the lease while the jobs run (their `now` is fixed at the start; the lease follows the real time)."""
    started = time.monotonic()
    while True:
        await asyncio.sleep(LEASE_RENEW_S)
        elapsed_ms = int((time.monotonic() - started) * 1000)
        try:
            await store.acquire_lease(LEASE, holder, started_ms + elapsed_ms, LEASE_TTL_MS)
        except AnalyticsError:
            continue  # the store may be briefly busy; the next renewal comes well before the lease lapses


@dataclass(frozen=True, slots=True)
class PurgeReport:
    raw_events: int
    salts: int
    aggregate_rows: int
    unused_values: int
    sessions: int = 0
    drop_counters: int = 0
    emptied: bool = True
    """Whether the store's files were wiped after the deletes (Store.wipe): False while a reader held a WAL."""

    def __str__(self) -> str:
        text = (
            f"removed {self.raw_events} raw events, {self.salts} salts, {self.aggregate_rows} aggregate rows, "
            f"{self.drop_counters} daily drop counters, {self.unused_values} unused dimension values and "
            f"{self.sessions} expired dashboard sessions"
        )
        if not self.emptied:
            text += "; a reader kept the WAL from being emptied, so the deleted rows may stay in it until the next try"
        return text


def _raw_cutoff(site: Site, first_ts: int, rolled: set[int], now: datetime, retention_hours: int) -> int:
    """Raw events before this instant may go: old enough, and every day up to there rolled up (with the
    30 minutes before the first day not rolled up kept, since a visit may continue into it)."""
    tz = ZoneInfo(site.timezone)
    day = datetime.fromtimestamp(first_ts / 1000, tz).date()
    while rollup.day_number(day) in rolled:
        day += timedelta(days=1)
    first_open, _ = rollup.day_bounds(day, tz)
    return min(int(now.timestamp() * 1000) - retention_hours * 3_600_000, first_open - TIMEOUT_MS)


async def purge(store: Store, now: datetime, raw_retention_hours: int, aggregate_months: int) -> PurgeReport:
    """Deletes what is no longer needed; each step is its own transaction, so it is safe to interrupt and re-run."""
    raw = rows = counters = 0
    for site in await store.list_sites():
        first_ts = await store.first_event_ts(site.id)
        if first_ts is not None:
            cutoff = _raw_cutoff(site, first_ts, await store.rolled_up_days(site.id), now, raw_retention_hours)
            raw += await store.delete_events_before(site.id, cutoff)
        tz = ZoneInfo(site.timezone)
        today = now.astimezone(tz).date()
        months = rollup.month_number(today) - aggregate_months + 1  # keep the current month and the previous ones
        oldest = date(months // 12, months % 12 + 1, 1)
        start, _ = rollup.day_bounds(oldest, tz)
        old = await store.delete_aggregates_before(
            site.id, rollup.local_hour(start, tz), rollup.day_number(oldest), months
        )
        rows += old
        counters += await store.delete_drops_before(site.id, rollup.day_number(oldest))  # the same retention
        # Filtered breakdowns by day: for RECENT_DAYS, and never before their day's raw events are gone (a day
        # re-rolled with `rollup --again` needs them to take its old figures off its month).
        keep = max(rollup.RECENT_DAYS, raw_retention_hours // 24 + 2)
        rows += await store.delete_recent_before(site.id, rollup.day_number(today - timedelta(days=keep - 1)))
    salts = await store.delete_salts_before(await midnight.salts_expire_before(store, now))
    # Values nothing refers to any more (after old months went, a forgotten value, a removed site): every purge.
    unused = await store.delete_unused_values()
    sessions = await store.delete_expired_sessions(int(now.timestamp() * 1000))
    # Deleted rows are zeroed in their pages (secure_delete), but their pages as they were may still be in the WAL
    # (not the salts': their file keeps no copy, Store.delete_salts_before).
    emptied = await store.wipe()
    return PurgeReport(raw, salts, rows, unused, sessions, counters, emptied)
