"""Writing a day's rollup into SQLite: one transaction on a plain sqlite3 connection, run in a worker thread.

A rollup writes thousands of rows and looks up thousands of dimension-value ids; done through aiosqlite each
statement would cost a thread hop (~170 us), so the whole job runs synchronously in one thread instead.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from analytics.rollup import DAY, DIMENSIONS, HOUR, MONTH, PROP_KEYS, PROPS_BASE, Row

COUNTERS = "visitors, visits, pageviews, events, bounces, duration"


def _dimension_id(db: sqlite3.Connection, name: str) -> int:
    if name in DIMENSIONS:
        return DIMENSIONS[name]
    if not name:
        return 0
    key = name.removeprefix("props:")
    return PROPS_BASE + _value_id(db, PROP_KEYS, key)


def _value_id(db: sqlite3.Connection, dim: int, value: str) -> int:
    db.execute("INSERT INTO dim_values (dim, value) VALUES (?, ?) ON CONFLICT (dim, value) DO NOTHING", (dim, value))
    found = db.execute("SELECT id FROM dim_values WHERE dim = ? AND value = ?", (dim, value)).fetchone()
    return int(found[0])


def _all_dimensions(db: sqlite3.Connection) -> set[int]:
    """Every dimension id rows may have: the fixed ones, totals, and one per property key ever seen."""
    keys = {PROPS_BASE + int(r[0]) for r in db.execute("SELECT id FROM dim_values WHERE dim = ?", (PROP_KEYS,))}
    return {0, *DIMENSIONS.values(), *keys}


def write_day(
    path: Path,
    busy_timeout_ms: int,
    site_id: int,
    day: int,
    hours: tuple[int, int],
    month: tuple[int, int, int],
    rows: Sequence[Row],
    now_ms: int,
) -> None:
    """Replaces the day's rows (and its hours'), then recomputes its month from the daily rows; idempotent.

    `hours` is the [first, last) local-hour range of the day; `month` is (month bucket, first day, last day)."""
    db = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            dims: dict[str, int] = {}
            records = []
            for row in rows:
                dim = dims.get(row.dimension)
                if dim is None:
                    dim = dims[row.dimension] = _dimension_id(db, row.dimension)
                val = _value_id(db, dim, row.value) if dim else 0
                records.append(
                    (
                        site_id,
                        row.period,
                        row.bucket,
                        0,
                        0,
                        dim,
                        val,
                        row.visitors,
                        row.visits,
                        row.pageviews,
                        row.events,
                        row.bounces,
                        row.duration,
                    )
                )
            all_dims = _all_dimensions(db)
            for dim in all_dims:  # one index seek per dimension (the key starts with site, period, filter, dim)
                db.execute(
                    "DELETE FROM agg WHERE site_id = ? AND period = ? AND fdim = 0 AND fval = 0 AND dim = ? "
                    "AND bucket = ?",
                    (site_id, DAY, dim, day),
                )
            db.execute(
                "DELETE FROM agg WHERE site_id = ? AND period = ? AND fdim = 0 AND fval = 0 AND dim = 0 "
                "AND bucket >= ? AND bucket < ?",
                (site_id, HOUR, *hours),
            )
            db.executemany(
                f"INSERT INTO agg (site_id, period, bucket, fdim, fval, dim, val, {COUNTERS}) "  # noqa: S608
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                records,
            )
            bucket, first, last = month
            for dim in all_dims | set(dims.values()):
                db.execute(
                    "DELETE FROM agg WHERE site_id = ? AND period = ? AND fdim = 0 AND fval = 0 AND dim = ? "
                    "AND bucket = ?",
                    (site_id, MONTH, dim, bucket),
                )
                db.execute(
                    f"INSERT INTO agg (site_id, period, bucket, fdim, fval, dim, val, {COUNTERS}) "  # noqa: S608
                    "SELECT site_id, ?, ?, fdim, fval, dim, val, SUM(visitors), SUM(visits), SUM(pageviews), "
                    "SUM(events), SUM(bounces), SUM(duration) FROM agg WHERE site_id = ? AND period = ? "
                    "AND fdim = 0 AND fval = 0 AND dim = ? AND bucket BETWEEN ? AND ? "
                    "GROUP BY site_id, fdim, fval, dim, val",
                    (MONTH, bucket, site_id, DAY, dim, first, last),
                )
            db.execute(
                "INSERT INTO rollups (site_id, day, rolled_at) VALUES (?, ?, ?) "
                "ON CONFLICT (site_id, day) DO UPDATE SET rolled_at = excluded.rolled_at",
                (site_id, day, now_ms),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    finally:
        db.close()
