"""Erasure: a value forgotten from one site's figures and raw events (`analytics forget`, the settings page).

The value's rows are not simply deleted: its counts move into the `(other)` row of each breakdown it appeared
in, so the site's totals and every breakdown's sums stay what they were; rows filtered by the value are
deleted; raw events that carry it get `(other)` in its place (so the open days' figures keep their totals too,
and a day rolled up again cannot bring the value back); the value itself goes once no other site uses it.
A value derived from another is forgotten with it (ALIASES); `remains` then says under which other dimensions
the site still stores the same value, so that whoever answers an erasure request knows where else to forget it.
"""

from __future__ import annotations

import aiosqlite

from analytics.anonymity import OTHER
from analytics.query import stored_dimension
from analytics.rollup import DIMENSIONS, PROP_KEYS, PROPS_BASE

COUNTERS = ("visitors", "visits", "pageviews", "events", "bounces", "duration")
PAGES = ("event:page", "visit:entry_page", "visit:exit_page")
SOURCES = ("visit:source", "visit:referrer", "visit:utm_source")
ALIASES = {name: group for group in (PAGES, SOURCES) for name in group}
"""A path is one value whether it is seen as a page, an entry page or an exit page; a source is one value whether
it came as the referrer's host, the `utm_source` (or `ref`) of a visit without a referrer, or as the source shown
for either: each is forgotten as all of its group."""
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
        pairs = [RAW[d] for d in ALIASES.get(name, (name,)) if d in RAW]
        sets = ", ".join(
            f"{column} = CASE WHEN {expression} = ? THEN ? ELSE {column} END" for expression, column in pairs
        )
        where = " OR ".join(f"{expression} = ?" for expression, _ in pairs)
        sql = f"UPDATE events SET {sets} WHERE site_id = ? AND ({where})"  # noqa: S608 (constant names)
        args = (*(x for _ in pairs for x in (value, OTHER)), site_id, *(value for _ in pairs))
    raw = (await db.execute(sql, args)).rowcount
    return rows, raw, ids


def also_forgotten(dimension: str) -> tuple[str, ...]:
    """The other dimensions a value is forgotten under when it is forgotten under `dimension` (ALIASES)."""
    name = stored_dimension(dimension)
    return tuple(d for d in ALIASES.get(name, ()) if d != name)


async def remains(db: aiosqlite.Connection, site_id: int, value: str) -> list[str]:
    """The dimensions (Stats API names) under which the site still stores `value`, in its aggregates or its raw
    events: the same text sent in another field (an address as utm_source and as utm_medium) is another value,
    forgotten on its own."""
    if value == OTHER:
        return []
    found: set[str] = set()
    dims = dict(DIMENSIONS)
    async with db.execute("SELECT id, value FROM dim_values WHERE dim = ?", (PROP_KEYS,)) as cur:
        dims.update({f"event:props:{key}": PROPS_BASE + int(key_id) async for key_id, key in cur})
    for name, dim in dims.items():
        val = await _value_id(db, dim, value)
        if val is None:
            continue
        for table in TABLES:
            sql = f"SELECT 1 FROM {table} WHERE site_id = ? AND dim = ? AND val = ? LIMIT 1"  # noqa: S608
            async with db.execute(sql, (site_id, dim, val)) as cur:
                if await cur.fetchone() is not None:
                    found.add(name)
                    break
    columns = ", ".join(f"MAX({expression} = ?)" for expression, _ in RAW.values())
    sql = f"SELECT {columns} FROM events WHERE site_id = ?"  # noqa: S608 (constant names)
    async with db.execute(sql, (*(value for _ in RAW), site_id)) as cur:
        row = await cur.fetchone()
    found.update(name for name, present in zip(RAW, row or (), strict=False) if present)
    sql = (
        "SELECT DISTINCT j.key FROM events, json_each(CASE WHEN json_valid(events.props) THEN events.props "
        "ELSE '{}' END) AS j WHERE events.site_id = ? AND events.props IS NOT NULL AND j.value = ?"
    )
    async with db.execute(sql, (site_id, value)) as cur:
        found.update([f"event:props:{key}" async for (key,) in cur])
    order = list(dims)  # as the Stats API lists dimensions, properties last
    return sorted(found, key=lambda d: (order.index(d) if d in order else len(order), d))
