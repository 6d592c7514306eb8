"""Query benchmark: dashboard questions on a year of traffic, from aggregates vs a GROUP BY over raw events.

    python bench/query.py [--pageviews 10000000] [--keep DIR]

Generates `--pageviews` pageviews over 12 months for one site straight into the store (bench/traffic.py),
rolls every day up, then times each dashboard question for `30d` and `12mo` through the Stats API's query
layer, next to the same question answered by a GROUP BY over the raw events in the same database; and prints
the size of the aggregates and of the raw events per million pageviews. Filtered questions use one filter
on a coarse dimension (source = Google) and one on a fine one (page = /): the dashboard after a click.

The rollup of a year (every filtered row included) takes about an hour at 10M pageviews on 2 cores: each day's
rows are computed in a second process while the previous day's are written, as the product's rollup would
compute them one after the other. Use --keep to reuse the generated database.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from analytics import rollup
from analytics.jobs import closed_days, rollup_site
from analytics.query import parse, resolve
from analytics.rollup import DIMENSIONS, VISIT_FIELDS, day_bounds
from analytics.sites import SiteSettings
from analytics.stats import Answerer, OpenDays
from analytics.store import SQLiteStore
from analytics.visits import TIMEOUT_MS
from bench.traffic import Profile, generate

# Raw-event equivalents of the visit-level dimensions (first event of the visit ~ the event itself here).
RAW_COLUMNS = {**VISIT_FIELDS, "event:page": "pathname", "event:name": "name"}


def timed(samples: int, work) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pageviews", type=int, default=10_000_000)
    ap.add_argument("--keep", type=Path, help="reuse (or create) the generated database in this folder")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="analytics-query-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / "bench.db"
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    store = SQLiteStore(path)
    await store.open()
    await store.migrate()
    sites = await store.list_sites()
    if not sites:
        site = await store.add_site(SiteSettings("bench.example"), 0)
        first_day = now.date() - timedelta(days=365)
        start_ms = int(datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC).timestamp() * 1000)
        profile = Profile(visits_per_day=int(args.pageviews / 365 / 1.32))
        started = time.perf_counter()
        batch = []
        written = 0
        for event in generate(site.id, start_ms, 366, profile):
            batch.append(event)
            if len(batch) >= 50_000:
                await store.insert_events(batch)
                written += len(batch)
                batch = []
        await store.insert_events(batch)
        written += len(batch)
        print(f"generated {written:,} events in {time.perf_counter() - started:.0f} s", flush=True)
        started = time.perf_counter()
        days, rows = await _rollup_pipelined(store, site, now)
        assert (
            await rollup_site(store, site, now, min_visitors=1)
        ).days == []  # the product's job finds nothing left to do
        print(f"rolled up {days} days in {time.perf_counter() - started:.0f} s ({rows:,} rows)")
    site = (await store.list_sites())[0]
    raw = sqlite3.connect(path)
    raw.execute("ATTACH DATABASE ? AS aggregates", (str(store.aggregates_path),))
    pageviews = raw.execute("SELECT COUNT(*) FROM events WHERE name = 'pageview'").fetchone()[0]
    sizes = dict(raw.execute("SELECT name, SUM(pgsize) FROM dbstat('main') GROUP BY name").fetchall())
    sizes.update(raw.execute("SELECT name, SUM(pgsize) FROM dbstat('aggregates') GROUP BY name").fetchall())
    values = sizes.get("dim_values", 0) + sizes.get("sqlite_autoindex_dim_values_1", 0)
    unfiltered = sizes.get("agg", 0)
    recent = sizes.get("agg_days", 0)
    months = sizes.get("agg_months", 0)
    agg_bytes = unfiltered + recent + months + values
    raw_bytes = sizes.get("events", 0) + sizes.get("events_site_ts", 0)
    by_kind = dict(
        raw.execute(
            "SELECT CASE WHEN fdim = 0 THEN 'unfiltered' WHEN dim = 0 THEN 'filtered totals' "
            "ELSE 'filtered breakdowns' END, COUNT(*) FROM agg GROUP BY 1"
        ).fetchall()
    )
    print(
        f"\n{pageviews:,} pageviews; per million pageviews: aggregates {agg_bytes / pageviews:,.0f} MB "
        f"(unfiltered and filtered totals {unfiltered / pageviews:,.0f} MB, filtered breakdowns by month "
        f"{months / pageviews:,.0f} MB, by day for recent days {recent / pageviews:,.0f} MB), raw events "
        f"{raw_bytes / pageviews:,.0f} MB; ratio {agg_bytes / raw_bytes:.2f}"
    )
    counts = {t: raw.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("agg_days", "agg_months")}
    print(f"rows in agg: {by_kind}; rows in agg_days and agg_months: {counts}")

    questions = [
        (
            "totals + comparison",
            {
                "metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"],
                "include": {"comparisons": {"mode": "previous_period"}},
            },
        )
    ]
    questions += [("time series", {"metrics": ["visitors", "pageviews"], "dimensions": ["time:day"]})]
    questions += [
        (
            f"breakdown {d}",
            {"metrics": ["visitors", "pageviews", "bounce_rate"], "dimensions": [d], "pagination": {"limit": 10}},
        )
        for d in DIMENSIONS
    ]
    coarse, fine = ["is", "visit:source", ["Google"]], ["is", "event:page", ["/"]]
    questions += [("Google: totals", {"metrics": ["visitors", "visits", "pageviews"], "filters": [coarse]})]
    questions += [
        (
            f"Google: {d}",
            {"metrics": ["visitors", "pageviews"], "dimensions": [d], "filters": [coarse], "pagination": {"limit": 10}},
        )
        for d in DIMENSIONS
        if d != "visit:source"
    ]
    questions += [
        (
            f"page /: {d}",
            {"metrics": ["visitors", "pageviews"], "dimensions": [d], "filters": [fine], "pagination": {"limit": 10}},
        )
        for d in DIMENSIONS
        if not rollup.is_fine(d)
    ]
    open_days = OpenDays()  # as in the server: today's rows are computed once, then reused for 10 s
    print(f"\n{'question':40}{'range':>6}{'aggregates ms':>15}{'raw GROUP BY ms':>17}{'speed-up':>10}")
    slowest = 0.0
    for range_name in ("30d", "12mo"):
        for label, body in questions:
            query = parse({"site_id": site.domain, "date_range": range_name, **body})
            agg_ms = await _time_async(lambda q=query: Answerer(store, site, q, now, open_days).answer())
            slowest = max(slowest, agg_ms) if range_name == "12mo" else slowest
            first, last = resolve(range_name, now.date(), now.date() - timedelta(days=365))
            start_ms, _ = day_bounds(first, ZoneInfo("UTC"))
            _, end_ms = day_bounds(last, ZoneInfo("UTC"))
            column = RAW_COLUMNS.get(body.get("dimensions", [""])[0], "")  # type: ignore[index]
            where = ""
            if body.get("filters"):  # the same filter on the raw rows (a visit's source is on each of its events)
                where = " AND source = 'Google'" if label.startswith("Google") else " AND pathname = '/'"
            if column:
                sql = (
                    f"SELECT {column}, COUNT(DISTINCT visitor_id), SUM(name = 'pageview') FROM events "
                    f"WHERE site_id = ? AND ts >= ? AND ts < ?{where} GROUP BY {column} ORDER BY 2 DESC LIMIT 10"
                )
            elif "time:day" in body.get("dimensions", []):
                sql = (
                    "SELECT ts / 86400000, COUNT(DISTINCT visitor_id), SUM(name = 'pageview') FROM events "
                    "WHERE site_id = ? AND ts >= ? AND ts < ? GROUP BY 1"
                )
            else:
                sql = (
                    "SELECT COUNT(DISTINCT visitor_id), SUM(name = 'pageview') FROM events "
                    f"WHERE site_id = ? AND ts >= ? AND ts < ?{where}"
                )
            bounds = (site.id, start_ms, end_ms)
            if body.get("filters") and not label.endswith(("totals", "event:page", "visit:source")):
                print(f"{label:40}{range_name:>6}{agg_ms:>15.1f}{'-':>17}", flush=True)  # raw: like the ones above
                continue
            raw_ms = timed(1, lambda s=sql, b=bounds: raw.execute(s, b).fetchall())
            print(f"{label:40}{range_name:>6}{agg_ms:>15.1f}{raw_ms:>17.0f}{raw_ms / agg_ms:>9.0f}x", flush=True)
    print(f"\nslowest dashboard question at 12mo: {slowest:.1f} ms (target < 50 ms)")
    await store.close()


def _compute(events: list, day, tz: str) -> list[rollup.Row]:  # type: ignore[type-arg,no-untyped-def]
    return rollup.rollup_day(events, day, ZoneInfo(tz))


async def _rollup_pipelined(store: SQLiteStore, site, now: datetime) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """What rollup_site does, with each day's rows computed in another process while the previous day's are
    written (the same functions: rollup.rollup_day, then the store's write_rollup)."""
    tz = ZoneInfo(site.timezone)
    first_ts = await store.first_event_ts(site.id)
    days = closed_days(site, first_ts, now)
    written = 0
    loop = asyncio.get_running_loop()
    with concurrent.futures.ProcessPoolExecutor(2) as pool:

        async def submit(day):  # type: ignore[no-untyped-def]
            start, end = day_bounds(day, tz)
            events = await store.events_between(site.id, start - TIMEOUT_MS, end + rollup.LOOKAHEAD_MS)
            return loop.run_in_executor(pool, _compute, events, day, site.timezone)

        pending = [await submit(day) for day in days[:2]]
        for i, day in enumerate(days):
            rows = await pending.pop(0)
            if i + 2 < len(days):
                pending.append(await submit(days[i + 2]))
            start, end = day_bounds(day, tz)
            first = day.replace(day=1)
            last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
            hours = (rollup.local_hour(start, tz), rollup.local_hour(end, tz))
            month = (rollup.month_number(day), rollup.day_number(first), rollup.day_number(last))
            await store.write_rollup(site.id, rollup.day_number(day), hours, month, rows, 0)
            written += len(rows)
            if i % 30 == 0 or i + 1 == len(days):  # the purge keeps RECENT_DAYS of recent rows, as in production
                recent = day - timedelta(days=rollup.RECENT_DAYS - 1)
                await store.delete_recent_before(site.id, rollup.day_number(recent))
                print(f"  rolled up {day} ({i + 1}/{len(days)} days)", flush=True)
    return len(days), written


async def _time_async(make) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(3):
        started = time.perf_counter()
        await make()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


if __name__ == "__main__":
    asyncio.run(main())
