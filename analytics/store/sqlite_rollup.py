"""Writing a day's rollup into SQLite: one transaction on a plain sqlite3 connection, run in a worker thread.

A rollup writes thousands of rows and looks up thousands of dimension-value ids; done through aiosqlite each
statement would cost a thread hop (~170 us), so the whole job runs synchronously in one thread instead.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from analytics.rollup import DAY, DIMENSIONS, HOUR, MONTH, PROP_KEYS, PROPS_BASE, Row
from analytics.store.sqlite_connect import connect

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


class _Ids:
    """Dimension and value ids, looked up once per write (a day's filtered rows repeat the same values)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.dims: dict[str, int] = {}
        self.values: dict[tuple[int, str], int] = {}

    def dim(self, name: str) -> int:
        found = self.dims.get(name)
        if found is None:
            found = self.dims[name] = _dimension_id(self.db, name)
        return found

    def value(self, dim: int, value: str) -> int:
        if not dim:
            return 0
        found = self.values.get((dim, value))
        if found is None:
            found = self.values[(dim, value)] = _value_id(self.db, dim, value)
        return found

    def record(self, site_id: int, period: int, bucket: int, row: Row) -> tuple[int, ...]:
        fdim, dim = self.dim(row.filter_dimension), self.dim(row.dimension)
        return (
            site_id,
            period,
            bucket,
            fdim,
            self.value(fdim, row.filter_value),
            dim,
            self.value(dim, row.value),
            row.visitors,
            row.visits,
            row.pageviews,
            row.events,
            row.bounces,
            row.duration,
        )


INSERT = (
    "INSERT INTO {} (site_id, period, bucket, fdim, fval, dim, val, "  # noqa: S608 (constant table names)
    + COUNTERS
    + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
ADD_TO_MONTH = INSERT.format("agg") + (
    " ON CONFLICT (site_id, period, fdim, fval, dim, bucket, val) DO UPDATE SET "
    + ", ".join(f"{c} = agg.{c} + excluded.{c}" for c in COUNTERS.split(", "))
)


ADD_TO_PAIRS = (
    f"INSERT INTO agg_months (site_id, fdim, fval, dim, val, bucket, {COUNTERS}) "  # noqa: S608
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (site_id, fdim, fval, dim, val, bucket) DO UPDATE SET "
    + ", ".join(f"{c} = agg_months.{c} + excluded.{c}" for c in COUNTERS.split(", "))
)


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
    """Replaces the day's rows (and its hours'), then brings its month up to date; idempotent.

    Unfiltered monthly rows are recomputed from the daily ones. Filtered monthly rows are kept up to date by
    addition (the day's filtered daily breakdowns are kept for recent days only): re-writing a day first takes
    its previous rows off the month. A day whose recent rows were purged keeps its filtered rows as they are.
    `hours` is the [first, last) local-hour range of the day; `month` is (month bucket, first day, last day)."""
    db = connect(path, busy_timeout_ms)
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            _write_day(db, site_id, day, hours, month, rows, now_ms)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    finally:
        db.close()


def _write_day(
    db: sqlite3.Connection,
    site_id: int,
    day: int,
    hours: tuple[int, int],
    month: tuple[int, int, int],
    rows: Sequence[Row],
    now_ms: int,
) -> None:
    ids = _Ids(db)
    before = db.execute("SELECT recent FROM rollups WHERE site_id = ? AND day = ?", (site_id, day)).fetchone()
    filtered = before is None or bool(before[0])
    records = [ids.record(site_id, row.period, row.bucket, row) for row in rows if not row.filter_dimension]
    all_dims = _all_dimensions(db)
    for dim in all_dims:  # one index seek per dimension (the key starts with site, period, filter, dim)
        db.execute(
            "DELETE FROM agg WHERE site_id = ? AND period = ? AND fdim = 0 AND fval = 0 AND dim = ? AND bucket = ?",
            (site_id, DAY, dim, day),
        )
    db.execute(
        "DELETE FROM agg WHERE site_id = ? AND period = ? AND fdim = 0 AND fval = 0 AND dim = 0 "
        "AND bucket >= ? AND bucket < ?",
        (site_id, HOUR, *hours),
    )
    db.executemany(INSERT.format("agg"), records)
    bucket, first, last = month
    for dim in all_dims | set(ids.dims.values()):
        db.execute(
            "DELETE FROM agg WHERE site_id = ? AND period = ? AND fdim = 0 AND fval = 0 AND dim = ? AND bucket = ?",
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
    if filtered:
        _write_filtered(db, ids, site_id, day, bucket, rows, rewrite=before is not None)
    db.execute(
        "INSERT INTO rollups (site_id, day, rolled_at, recent) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (site_id, day) DO UPDATE SET rolled_at = excluded.rolled_at, recent = excluded.recent",
        (site_id, day, now_ms, int(filtered)),
    )


def _write_filtered(
    db: sqlite3.Connection,
    ids: _Ids,
    site_id: int,
    day: int,
    month: int,
    rows: Sequence[Row],
    rewrite: bool,
) -> None:
    old: list[tuple[int, ...]] = []
    if rewrite:  # take the day's previous filtered rows off its month, then remove them
        old = db.execute(
            f"SELECT fdim, fval, dim, val, {COUNTERS} FROM agg_days "  # noqa: S608
            "WHERE site_id = ? AND period = ? AND bucket = ?",
            (site_id, DAY, day),
        ).fetchall()
        _add_to_month(db, site_id, month, [(*r[:4], *(-c for c in r[4:])) for r in old])
        db.executemany(
            "DELETE FROM agg WHERE site_id = ? AND period = ? AND fdim = ? AND fval = ? AND dim = 0 AND bucket = ?",
            [(site_id, DAY, r[0], r[1], day) for r in old if r[2] == 0],
        )
        db.execute("DELETE FROM agg_days WHERE site_id = ? AND period = ? AND bucket = ?", (site_id, DAY, day))
    days = [ids.record(site_id, DAY, day, r) for r in rows if r.filter_dimension and r.period == DAY]
    db.executemany(INSERT.format("agg_days"), days)
    db.executemany(INSERT.format("agg"), [r for r in days if r[5] == 0])  # filtered totals by day: kept
    _add_to_month(db, site_id, month, [r[3:] for r in days])
    if old:  # rows the day alone had made
        db.executemany(
            "DELETE FROM agg WHERE site_id = ? AND period = ? AND bucket = ? AND fdim = ? AND fval = ? AND dim = 0 "
            "AND visits <= 0",
            [(site_id, MONTH, month, r[0], r[1]) for r in old if r[2] == 0],
        )
        db.executemany(
            "DELETE FROM agg_months WHERE site_id = ? AND fdim = ? AND fval = ? AND dim = ? AND val = ? AND bucket = ? "
            "AND visits <= 0",
            [(site_id, *r[:4], month) for r in old if r[2] != 0],
        )


def _add_to_month(db: sqlite3.Connection, site_id: int, month: int, rows: Sequence[Sequence[int]]) -> None:
    """Adds (fdim, fval, dim, val, counters...) rows to the month: totals to agg, breakdowns to agg_months."""
    db.executemany(ADD_TO_MONTH, [(site_id, MONTH, month, *r) for r in rows if r[2] == 0])
    db.executemany(ADD_TO_PAIRS, [(site_id, *r[:4], month, *r[4:]) for r in rows if r[2] != 0])
