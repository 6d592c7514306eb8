"""Data steps of migrations that SQL alone cannot express, run in the migration's transaction before its SQL.

Migration 0008 drops `prev_visitor_id`, through which the visit builder used to join a visit across UTC midnight
(an event just after midnight carried the visitor's hash under yesterday's salt too). Raw events stored that way
would then make two visits of one, so first every event the old join put in a visit begun under another hash
is given that hash, as the ingest now stores it (analytics/midnight.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Iterable

import aiosqlite

from analytics.beacon import ENGAGEMENT
from analytics.errors import StoreError
from analytics.midnight import DAY_MS
from analytics.visits import TIMEOUT_MS

Row = tuple[int, int, int, int | None, str]
"""rowid, ts, visitor_id, prev_visitor_id, name"""


def first_hashes(rows: Iterable[Row]) -> list[tuple[int, int]]:
    """(hash the visit began with, rowid) of each event the old join put in a visit begun under another hash.
    `rows` are one site's events in time order; the join is the old visit builder's, step for step."""
    first: list[int] = []  # by visit: the hash it began with, and its last event (engagement pings aside)
    end: list[int] = []
    open_by_visitor: dict[int, int] = {}
    changes: list[tuple[int, int]] = []
    for rowid, ts, visitor, previous, name in rows:
        current = open_by_visitor.get(visitor)
        if current is not None and ts - end[current] > TIMEOUT_MS:
            current = None
        if current is None and previous is not None:
            joined = open_by_visitor.get(previous)
            if joined is not None and ts - end[joined] <= TIMEOUT_MS:
                current = joined
        if current is None:
            if name == ENGAGEMENT:
                continue  # in no visit
            current = len(first)
            first.append(visitor)
            end.append(ts)
        open_by_visitor[visitor] = current
        if name != ENGAGEMENT:
            end[current] = max(end[current], ts)
        if first[current] != visitor:
            changes.append((first[current], rowid))
    return changes


async def keep_midnight_visits_whole(conn: aiosqlite.Connection) -> None:
    if sqlite3.sqlite_version_info < (3, 35, 0):
        raise StoreError(
            f"this database needs SQLite 3.35 or newer to migrate (DROP COLUMN); Python's sqlite3 module here uses "
            f"{sqlite3.sqlite_version}: use a Python built with a newer SQLite (Debian 12, Ubuntu 22.04 and later)"
        )
    async with conn.execute(
        "SELECT DISTINCT site_id, ts / ? FROM events WHERE prev_visitor_id IS NOT NULL ORDER BY 1, 2", (DAY_MS,)
    ) as cur:
        midnights = [(int(site), int(day) * DAY_MS) for site, day in await cur.fetchall()]
    for site_id, midnight in midnights:
        # From 30 minutes before this midnight to 30 minutes before the next: the old join never reached further.
        async with conn.execute(
            "SELECT rowid, ts, visitor_id, prev_visitor_id, name FROM events WHERE site_id = ? AND ts >= ? "
            "AND ts < ? ORDER BY ts, rowid",
            (site_id, midnight - TIMEOUT_MS, midnight + DAY_MS - TIMEOUT_MS),
        ) as cur:
            rows = [(int(r[0]), int(r[1]), int(r[2]), r[3], str(r[4])) for r in await cur.fetchall()]
        await conn.executemany("UPDATE events SET visitor_id = ? WHERE rowid = ?", first_hashes(rows))


BEFORE: dict[int, Callable[[aiosqlite.Connection], Awaitable[None]]] = {8: keep_midnight_visits_whole}
"""Migration version -> its data step."""
