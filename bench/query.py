"""Query benchmark: dashboard questions on a year of traffic, from aggregates vs a GROUP BY over raw events.

    python bench/query.py [--pageviews 10000000] [--keep DIR]

Generates `--pageviews` pageviews over 12 months for one site straight into the store (bench/traffic.py),
rolls every day up, then times each dashboard question for `30d` and `12mo` through the Stats API's query
layer, next to the same question answered by a GROUP BY over the raw events in the same database; and prints
the size of the aggregates and of the raw events per million pageviews. Filtered breakdowns are not
implemented yet and are reported as such.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.jobs import rollup_site
from analytics.query import parse, resolve
from analytics.rollup import DIMENSIONS, VISIT_FIELDS, day_bounds
from analytics.sites import SiteSettings
from analytics.stats import Answerer, OpenDays
from analytics.store import SQLiteStore
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
        print(f"generated {written:,} events in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        report = await rollup_site(store, site, now)
        print(f"rolled up {len(report.days)} days in {time.perf_counter() - started:.0f} s ({report.rows:,} rows)")
    site = (await store.list_sites())[0]
    raw = sqlite3.connect(path)
    pageviews = raw.execute("SELECT COUNT(*) FROM events WHERE name = 'pageview'").fetchone()[0]
    sizes = dict(raw.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
    agg_bytes = sizes.get("agg", 0) + sizes.get("dim_values", 0) + sizes.get("sqlite_autoindex_dim_values_1", 0)
    raw_bytes = sizes.get("events", 0) + sizes.get("events_site_ts", 0)
    print(
        f"\n{pageviews:,} pageviews; per million pageviews: aggregates {agg_bytes / pageviews:,.0f} MB, "
        f"raw events {raw_bytes / pageviews:,.0f} MB (ratio {agg_bytes / raw_bytes:.2f})"
    )

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
            if column:
                sql = (
                    f"SELECT {column}, COUNT(DISTINCT visitor_id), SUM(name = 'pageview') FROM events "
                    f"WHERE site_id = ? AND ts >= ? AND ts < ? GROUP BY {column} ORDER BY 2 DESC LIMIT 10"
                )
            elif "time:day" in body.get("dimensions", []):
                sql = (
                    "SELECT ts / 86400000, COUNT(DISTINCT visitor_id), SUM(name = 'pageview') FROM events "
                    "WHERE site_id = ? AND ts >= ? AND ts < ? GROUP BY 1"
                )
            else:
                sql = (
                    "SELECT COUNT(DISTINCT visitor_id), SUM(name = 'pageview') FROM events "
                    "WHERE site_id = ? AND ts >= ? AND ts < ?"
                )
            bounds = (site.id, start_ms, end_ms)
            raw_ms = timed(1, lambda s=sql, b=bounds: raw.execute(s, b).fetchall())
            print(f"{label:40}{range_name:>6}{agg_ms:>15.1f}{raw_ms:>17.0f}{raw_ms / agg_ms:>9.0f}x")
    print(f"\nslowest dashboard question at 12mo: {slowest:.1f} ms (target < 50 ms)")
    print("filtered breakdowns: not implemented yet (the API answers 400)")
    await store.close()


async def _time_async(make) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(3):
        started = time.perf_counter()
        await make()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


if __name__ == "__main__":
    asyncio.run(main())
