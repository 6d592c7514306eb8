"""What k (privacy.min_visitors) costs: the share of each breakdown merged into `(other)`, and stored bytes.

    python bench/anonymity.py [--sizes small large] [--ks 1 2 3 5 10] [--byte-days 30]

For a small site (300 pageviews a day) and a large one (27,000 a day, bench/query.py's 10M pageviews a year), a
year of bench/traffic.py's traffic is rolled up day by day with the product's rollup (rollup.rollup_window, k
applied as the rollup applies it), and for each unfiltered breakdown the share of visitors and of pageviews
that land in `(other)` (or in no row at all: a day too small for any row of that dimension) is printed for the
last 30 days and the 12 months, as the dashboard's 30d and 12mo reports show them (sums of daily rows).

Then the storage: the first `--byte-days` days (every filtered row included) are written through the product's
write path into an empty database, next to the same days' raw events in another, and both are measured with
SQLite's dbstat: bytes per pageview of the aggregates (values included) against the raw events they replace.
Filtered breakdowns by day are deleted after 35 days as the purge does (then kept by month only), so the
figure for a month of days is the largest per pageview, and a year's is the steady state.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics import rollup
from analytics.anonymity import OTHER
from analytics.events import Event
from analytics.rollup import DAY, DIMENSIONS
from analytics.sites import SiteSettings
from analytics.store import SQLiteStore
from analytics.store.sqlite_rollup import write_day
from bench.traffic import DAY_MS, Profile, generate

SIZES = {"small": 300, "large": 27_000}
UTC_ZONE = ZoneInfo("UTC")
FIRST = date(2025, 11, 28)


def day_events(site_id: int, day: int, pageviews_per_day: int) -> list[Event]:
    """One day of traffic (visits starting that day, with their events past midnight)."""
    start = datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=UTC) + timedelta(days=day)
    profile = Profile(visits_per_day=max(1, int(pageviews_per_day / 1.32)))
    return list(generate(site_id, int(start.timestamp() * 1000), 1, profile, seed=1000 + day))


def breakdown_shares(size: str, ks: list[int], days: int) -> None:
    """Per k, dimension and range: (visitors, pageviews) in (other) or in no row, over the breakdown's sums."""
    # sums[k][range][dimension] = [visitors all, visitors other, pageviews all, pageviews other]
    sums: dict[int, dict[str, dict[str, list[int]]]] = {
        k: {r: defaultdict(lambda: [0, 0, 0, 0]) for r in ("30d", "12mo")} for k in ks
    }
    started = time.perf_counter()
    for d in range(days):
        events = day_events(1, d, SIZES[size])
        start = int(datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=UTC).timestamp() * 1000) + d * DAY_MS
        ranges = ("30d", "12mo") if d >= days - 30 else ("12mo",)
        for k in ks:
            rows = rollup.rollup_window(events, start, start + DAY_MS, UTC_ZONE, d, None, min_visitors=k)
            totals = next(r for r in rows if r.period == DAY and not r.dimension)
            by_dim: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
            for r in rows:
                if r.period != DAY or not r.dimension:
                    continue
                acc = by_dim[r.dimension]
                acc[0] += r.visitors
                acc[2] += r.pageviews
                if r.value == OTHER:
                    acc[1] += r.visitors
                    acc[3] += r.pageviews
            for dimension in [*DIMENSIONS, "props:plan"]:
                acc = by_dim[dimension]
                if dimension.startswith("visit:"):  # a day too small for any row: its visits are in no row
                    lost_v = max(totals.visitors - acc[0], 0)
                    lost_p = max(totals.pageviews - acc[2], 0)
                    acc = [acc[0] + lost_v, acc[1] + lost_v, acc[2] + lost_p, acc[3] + lost_p]
                for r in ranges:
                    s = sums[k][r][dimension]
                    for i in range(4):
                        s[i] += acc[i]
        if d % 30 == 29:
            print(f"  {size}: {d + 1} days rolled up for k in {ks} ({time.perf_counter() - started:.0f} s)", flush=True)
    for r in ("30d", "12mo"):
        print(f"\n{size} site ({SIZES[size]:,} pageviews a day), {r}: share in (other), visitors / pageviews")
        print("| breakdown | " + " | ".join(f"k = {k}" for k in ks) + " |")
        print("|---|" + "---|" * len(ks))
        for dimension in [*DIMENSIONS, "props:plan"]:
            cells = []
            for k in ks:
                s = sums[k][r][dimension]
                if not s[0] and not s[2]:
                    cells.append("-")
                    continue
                v = s[1] / s[0] * 100 if s[0] else 0.0
                p = s[3] / s[2] * 100 if s[2] else 0.0
                cells.append(f"{v:.0f} % / {p:.0f} %")
            print(f"| {dimension} | " + " | ".join(cells) + " |")


async def stored_bytes(size: str, ks: list[int], days: int) -> None:
    """Bytes per pageview of the aggregates of `days` days (k applied) and of their raw events."""
    work = Path(tempfile.mkdtemp(prefix="analytics-anonymity-bench-"))
    raw_path = work / "raw.db"
    raw_store = SQLiteStore(raw_path)
    await raw_store.open()
    await raw_store.migrate()
    site = await raw_store.add_site(SiteSettings("bench.example"), 0)
    pageviews = 0
    all_days = [day_events(site.id, d, SIZES[size]) for d in range(days)]
    for events in all_days:
        await raw_store.insert_events(events)
        pageviews += sum(1 for e in events if e.name == "pageview")
    await raw_store.close()
    raw_bytes = _sizes(raw_path, "main", ("events", "events_site_ts"))
    print(f"\n{size} site, {days} days, {pageviews:,} pageviews: raw events {raw_bytes / pageviews:.0f} bytes/pageview")
    print("| k | aggregate rows | bytes/pageview | vs raw events |")
    print("|---|---|---|---|")
    for k in ks:
        path = work / f"agg-{k}.db"
        store = SQLiteStore(path)
        await store.open()
        await store.migrate()
        await store.add_site(SiteSettings("bench.example"), 0)
        aggregates = store.aggregates_path
        await store.close()
        rows = 0
        for d, events in enumerate(all_days):
            day = FIRST + timedelta(days=d)
            found = rollup.rollup_day(events, day, UTC_ZONE, min_visitors=k)
            hours, month = rollup.write_bounds(day, UTC_ZONE)
            write_day(aggregates, 5000, site.id, rollup.day_number(day), hours, month, found, 0)
            rows += len(found)
            _purge_recent(aggregates, site.id, rollup.day_number(day) - rollup.RECENT_DAYS + 1)
        agg_bytes = _sizes(aggregates, "main", ("agg", "agg_days", "agg_months", "dim_values"), indexes=True)
        print(f"| {k} | {rows:,} | {agg_bytes / pageviews:.0f} | {agg_bytes / raw_bytes:.2f}x |", flush=True)


def _purge_recent(path: Path, site_id: int, oldest: int) -> None:
    """What the purge does to filtered breakdowns by day past RECENT_DAYS (analytics/jobs.py)."""
    db = sqlite3.connect(path)
    with db:
        db.execute("DELETE FROM agg_days WHERE site_id = ? AND bucket < ?", (site_id, oldest))
        db.execute("UPDATE rollups SET recent = 0 WHERE site_id = ? AND day < ?", (site_id, oldest))
    db.close()


def _sizes(path: Path, schema: str, tables: tuple[str, ...], indexes: bool = False) -> int:
    db = sqlite3.connect(path)
    db.execute("VACUUM")
    found = dict(db.execute(f"SELECT name, SUM(pgsize) FROM dbstat('{schema}') GROUP BY name").fetchall())
    db.close()
    total = sum(found.get(t, 0) for t in tables)
    if indexes:
        total += sum(v for name, v in found.items() if name.startswith("sqlite_autoindex_dim_values"))
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["small", "large"])
    ap.add_argument("--ks", nargs="+", type=int, default=[1, 2, 3, 5, 10])
    ap.add_argument("--days", type=int, default=365, help="days of traffic for the breakdown shares")
    ap.add_argument("--byte-days", type=int, default=30, help="days rolled up in full for the stored bytes")
    args = ap.parse_args()
    for size in args.sizes:
        breakdown_shares(size, args.ks, args.days)
        asyncio.run(stored_bytes(size, args.ks, args.byte_days))


if __name__ == "__main__":
    main()
