"""Erasure: a value forgotten from one site's figures and raw events (`analytics forget`, the settings page).

The value's rows are not simply deleted: its counts move into the `(other)` row of each breakdown it appeared
in, so the site's totals and every breakdown's sums stay what they were; rows filtered by the value are
deleted; raw events that carry it get `(other)` in its place (so the open days' figures keep their totals too,
and a day rolled up again cannot bring the value back); the value itself goes once no other site uses it.
"""

from __future__ import annotations

import aiosqlite

from analytics.anonymity import OTHER
from analytics.query import stored_dimension
from analytics.rollup import DIMENSIONS, PROP_KEYS, PROPS_BASE

COUNTERS = ("visitors", "visits", "pageviews", "events", "bounces", "duration")
ALIASES = {
    "event:page": ("event:page", "visit:entry_page", "visit:exit_page"),
    "visit:entry_page": ("event:page", "visit:entry_page", "visit:exit_page"),
    "visit:exit_page": ("event:page", "visit:entry_page", "visit:exit_page"),
}
"""A path is one value whether it is seen as a page, an entry page or an exit page: it is forgotten as all three."""
RAW = {
    "event:page": ("pathname", "pathname"),
    "visit:source": ("source", "source"),
    "visit:referrer": ("referrer", "referrer"),
    "visit:utm_source": ("utm_source", "utm_source"),
    "visit:utm_medium": ("utm_medium", "utm_medium"),
    "visit:utm_campaign": ("utm_campaign", "utm_campaign"),
    "visit:utm_content": ("utm_content", "utm_content"),
    "visit:utm_term": ("utm_term", "utm_term"),
    "visit:country": ("country", "country"),
    "visit:region": ("region", "region"),
    "visit:city": ("city", "city"),
    "visit:browser": ("browser", "browser"),
    "visit:browser_version": ("TRIM(browser || ' ' || browser_version)", "browser_version"),
    "visit:os": ("os", "os"),
    "visit:os_version": ("TRIM(os || ' ' || os_version)", "os_version"),
    "visit:device": ("device", "device"),
    "visit:screen": ("screen", "screen"),
    "event:name": ("name", "name"),
}
"""Per dimension: the raw events' expression that holds its value, and the column rewritten to `(other)`."""


async def _dimension_ids(db: aiosqlite.Connection, name: str) -> list[int]:
    if name.startswith("props:"):
        async with db.execute(
            "SELECT id FROM dim_values WHERE dim = ? AND value = ?", (PROP_KEYS, name.removeprefix("props:"))
        ) as cur:
            found = await cur.fetchone()
        return [] if found is None else [PROPS_BASE + int(found[0])]
    return [DIMENSIONS[d] for d in ALIASES.get(name, (name,))]


async def _value_id(db: aiosqlite.Connection, dim: int, value: str) -> int | None:
    async with db.execute("SELECT id FROM dim_values WHERE dim = ? AND value = ?", (dim, value)) as cur:
        found = await cur.fetchone()
    return None if found is None else int(found[0])


async def _other_id(db: aiosqlite.Connection, dim: int) -> int:
    await db.execute(
        "INSERT INTO dim_values (dim, value) VALUES (?, ?) ON CONFLICT (dim, value) DO NOTHING", (dim, OTHER)
    )
    found = await _value_id(db, dim, OTHER)
    assert found is not None
    return found


TABLES = {
    # table: the columns that identify a breakdown (its rows differ by `val` only)
    "agg": ("site_id", "period", "bucket", "fdim", "fval", "dim"),
    "agg_days": ("site_id", "period", "bucket", "fdim", "fval", "dim"),
    "agg_months": ("site_id", "fdim", "fval", "dim", "bucket"),
}


async def forget(db: aiosqlite.Connection, site_id: int, dimension: str, value: str) -> tuple[int, int, list[int]]:
    """In the caller's transaction: (aggregate rows changed, raw events deleted, value ids no longer referred to
    by this site)."""
    name = stored_dimension(dimension)
    rows = 0
    ids: list[int] = []
    for dim in await _dimension_ids(db, name):
        val = await _value_id(db, dim, value)
        if val is None:
            continue
        ids.append(val)
        other = await _other_id(db, dim)
        for table, group in TABLES.items():
            cur = await db.execute(
                f"DELETE FROM {table} WHERE site_id = ? AND fdim = ? AND fval = ?",  # noqa: S608 (constant names)
                (site_id, dim, val),
            )
            rows += cur.rowcount
            columns = ", ".join(group)
            sums = ", ".join(COUNTERS)
            updates = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in COUNTERS)
            key = ", ".join((*group, "val"))
            cur = await db.execute(
                f"INSERT INTO {table} ({columns}, val, {sums}) "  # noqa: S608
                f"SELECT {columns}, ?, {sums} FROM {table} WHERE site_id = ? AND dim = ? AND val = ? "
                f"ON CONFLICT ({key}) DO UPDATE SET {updates}",
                (other, site_id, dim, val),
            )
            cur = await db.execute(
                f"DELETE FROM {table} WHERE site_id = ? AND dim = ? AND val = ?",  # noqa: S608 (constant names)
                (site_id, dim, val),
            )
            rows += cur.rowcount
    if name.startswith("props:"):  # the property keeps its key, with (other) for a value
        path = '$."' + name.removeprefix("props:").replace('"', '\\"') + '"'
        sql = "UPDATE events SET props = json_set(props, ?, ?) WHERE site_id = ? AND json_valid(props) "
        sql += "AND json_extract(props, ?) = ?"
        args: tuple[object, ...] = (path, OTHER, site_id, path, value)
    else:
        expression, column = RAW[ALIASES.get(name, (name,))[0]]
        sql = f"UPDATE events SET {column} = ? WHERE site_id = ? AND {expression} = ?"  # noqa: S608 (constants)
        args = (OTHER, site_id, value)
    raw = (await db.execute(sql, args)).rowcount
    return rows, raw, ids
