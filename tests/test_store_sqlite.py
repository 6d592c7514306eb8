"""The SQLite store: migrations, sites, salts shared between workers, atomic event batches."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from analytics import rollup
from analytics.errors import Conflict, InvalidData, NotFound, StoreError
from analytics.events import COLUMNS, Event
from analytics.sites import SiteSettings
from analytics.store import SQLiteStore
from analytics.store.base import load_migrations
from analytics.store.sqlite import ROWS_PER_STATEMENT


def event(site_id: int = 1, ts: int = 0, **changes: object) -> Event:
    base = Event(
        site_id,
        ts,
        123,
        "pageview",
        "example.com",
        "/",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "Chrome",
        "120",
        "Windows",
        "10",
        "desktop",
        "laptop",
        "FR",
        "",
        "",
        None,
        None,
        None,
        True,
        None,
        None,
    )
    return base._replace(**changes)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "sub" / "a.db")
    await s.open()
    await s.migrate()
    yield s
    await s.close()


async def test_migrations_apply_once_and_record_their_version(store: SQLiteStore) -> None:
    assert await store.migrate() == []
    assert await store.schema_is_current()
    async with store.admin.execute("SELECT version, name FROM schema_migrations") as cur:
        recorded = [tuple(r) for r in await cur.fetchall()]
    assert recorded == [(m.version, m.name) for m in load_migrations()]
    assert recorded[:3] == [(1, "initial"), (2, "aggregates"), (3, "api_keys")]


async def test_database_runs_in_wal_mode_with_the_configured_sync_level(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "a.db", synchronous="FULL")
    await s.open()
    async with s.admin.execute("PRAGMA journal_mode") as cur:
        assert (await cur.fetchone())[0] == "wal"  # type: ignore[index]
    async with s.admin.execute("PRAGMA synchronous") as cur:
        assert (await cur.fetchone())[0] == 2  # type: ignore[index]
    await s.close()


async def test_sites_add_list_remove(store: SQLiteStore) -> None:
    site = await store.add_site(
        SiteSettings("example.com", "Europe/Paris", ("example.com",), ("10.0.0.0/8",), ("/admin/*",)), 0
    )
    assert await store.list_sites() == [site]
    with pytest.raises(Conflict):
        await store.add_site(SiteSettings("example.com"), 0)
    await store.insert_events([event(site.id), event(site.id), event(site.id + 1)])
    removed, count = await store.remove_site("example.com")
    assert (removed, count) == (site, 2)
    assert await store.list_sites() == []
    assert await store.count_events() == 1
    with pytest.raises(NotFound):
        await store.remove_site("example.com")


async def test_the_first_worker_to_create_a_days_salt_wins(store: SQLiteStore, tmp_path: Path) -> None:
    other = SQLiteStore(tmp_path / "sub" / "a.db")
    await other.open()
    day = date(2026, 3, 14)
    first = await store.salt(day, b"a" * 32, 0)
    second = await other.salt(day, b"b" * 32, 0)
    assert first == second == b"a" * 32
    assert await store.salt(date(2026, 3, 15), b"c" * 32, 0) == b"c" * 32
    assert await other.delete_salts_before(date(2026, 3, 15)) == 1
    assert await store.salt(day, b"d" * 32, 0) == b"d" * 32  # a deleted salt is gone for good
    await other.close()


@pytest.mark.parametrize("size", [3, ROWS_PER_STATEMENT + 5])
async def test_a_batch_is_stored_whole_or_not_at_all(store: SQLiteStore, size: int) -> None:
    good = [event(ts=i) for i in range(size)]
    await store.insert_events(good)
    assert await store.count_events() == size
    bad = [event(ts=i) for i in range(size - 1)] + [event(name=None)]
    with pytest.raises(InvalidData, match="could not be stored as it is"):
        await store.insert_events(bad)
    assert await store.count_events() == size


async def test_a_locked_database_is_a_store_error_not_a_crash(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "a.db", busy_timeout_ms=50)
    await s.open()
    await s.migrate()
    blocker = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreError, match="locked"):
        await s.insert_events([event()])
    blocker.execute("ROLLBACK")
    await s.insert_events([event()])
    assert await s.count_events() == 1
    blocker.close()
    await s.close()


async def test_an_unopenable_path_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot open"):
        await SQLiteStore(tmp_path / "file" / "a.db").open()


def _old_layout(path: Path) -> None:
    """A database as the versions before the aggregates file made it: every table in the one file."""
    from analytics.store.dialect import SQLITE

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT)")
    for migration in load_migrations():
        for statement in SQLITE.migration(migration.sql):
            db.execute(statement)
        db.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (migration.version, migration.name))
    db.execute("INSERT INTO dim_values (id, dim, value) VALUES (7, 1, '/pricing')")
    db.execute("INSERT INTO agg VALUES (1, 1, 740000, 0, 0, 1, 7, 3, 4, 5, 0, 1, 60)")
    db.execute("INSERT INTO rollups (site_id, day, rolled_at, recent) VALUES (1, 740000, 0, 1)")
    db.close()


async def test_an_existing_database_moves_its_aggregates_to_their_own_file_without_loss(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    _old_layout(path)
    s = SQLiteStore(path)
    await s.open()
    try:
        await s.migrate()
        assert await s.rolled_up_days(1) == {740000}
        sums = await s.sum_aggregates(1, "event:page", [(1, 740000, 740000)])
        assert sums == {(0, "/pricing"): (3, 4, 5, 0, 1, 60)}
        await s.migrate()  # again: nothing left to move, nothing lost
        assert await s.rolled_up_days(1) == {740000}
    finally:
        await s.close()
    main = sqlite3.connect(path)
    tables = {r[0] for r in main.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert not tables & {"agg", "agg_days", "agg_months", "dim_values", "rollups"}
    assert "events" in tables
    aggregates = sqlite3.connect(tmp_path / "a-aggregates.db")
    assert aggregates.execute("SELECT visitors, visits FROM agg").fetchall() == [(3, 4)]


async def test_ingest_commits_while_a_rollup_holds_the_aggregates_write_lock(tmp_path: Path) -> None:
    """A day's rollup is one long transaction; it used to hold the write lock ingest's commits need."""
    s = SQLiteStore(tmp_path / "a.db", busy_timeout_ms=3000)
    await s.open()
    await s.migrate()
    rollup = sqlite3.connect(tmp_path / "a-aggregates.db", isolation_level=None)
    rollup.execute("BEGIN IMMEDIATE")
    rollup.execute("INSERT INTO dim_values (dim, value) VALUES (1, '/being-rolled-up')")
    try:
        started = time.perf_counter()
        for i in range(20):
            await s.insert_events([event(ts=i)])
        assert time.perf_counter() - started < 1.0  # 20 commits, none waited for the 3 s busy timeout
        assert await s.count_events() == 20
    finally:
        rollup.execute("ROLLBACK")
        await s.close()


async def test_the_purge_deletes_raw_events_in_short_transactions(store: SQLiteStore) -> None:
    from analytics.store.sqlite import PURGE_CHUNK

    await store.insert_events([event(ts=i) for i in range(2 * PURGE_CHUNK + 10)])
    await store.insert_events([event(ts=10**9)])
    statements: list[str] = []
    await store.admin.set_trace_callback(statements.append)
    assert await store.delete_events_before(1, 10**8) == 2 * PURGE_CHUNK + 10
    await store.admin.set_trace_callback(None)
    assert await store.count_events() == 1
    assert sum(s.startswith("DELETE FROM events") for s in statements) == 3  # each its own (autocommit) statement


async def test_a_backup_copies_both_files_while_the_store_is_open_and_never_over_itself(
    store: SQLiteStore, tmp_path: Path
) -> None:
    site = await store.add_site(SiteSettings("example.com"), 0)
    await store.insert_events([event(site.id, ts) for ts in range(1000)])
    copies = await store.backup(tmp_path / "backup")
    await store.insert_events([event(site.id, 5000)])  # after the copy: not in it
    assert [c.name for c in copies] == [store.path.name, store.aggregates_path.name]
    copy = SQLiteStore(tmp_path / "backup" / store.path.name)
    await copy.open()
    try:
        assert await copy.schema_is_current()
        assert await copy.count_events() == 1000 and [s.domain for s in await copy.list_sites()] == ["example.com"]
    finally:
        await copy.close()
    with pytest.raises(StoreError, match="holds the database itself"):
        await store.backup(store.path.parent)


def _before_version(path: Path, version: int) -> sqlite3.Connection:
    """A database as an older version left it: the migrations before `version` applied."""
    from analytics.store.dialect import SQLITE

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT)")
    for migration in load_migrations():
        if migration.version < version:
            for statement in SQLITE.migration(migration.sql):
                db.execute(statement)
            db.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (migration.version, migration.name)
            )
    return db


async def test_sites_made_before_the_allow_list_keep_the_property_keys_they_use(tmp_path: Path) -> None:
    db = _before_version(tmp_path / "a.db", 7)
    for id_, domain in ((1, "old.example"), (2, "quiet.example")):
        db.execute(
            "INSERT INTO sites (id, domain, timezone, allowed_hostnames, excluded_ips, excluded_paths, created_at) "
            "VALUES (?, ?, 'UTC', '[]', '[]', '[]', 0)",
            (id_, domain),
        )
    db.execute("INSERT INTO dim_values (id, dim, value) VALUES (3, 99, 'plan'), (4, 99, 'x@example.com')")
    db.execute("INSERT INTO agg VALUES (1, 2, 24000, 0, 0, 1003, 9, 1, 1, 1, 1, 0, 0)")  # a month of plan = ...
    db.execute("INSERT INTO agg VALUES (1, 2, 24000, 0, 0, 1004, 9, 1, 1, 1, 1, 0, 0)")
    db.execute("INSERT INTO agg VALUES (2, 1, 740000, 1003, 9, 1, 7, 1, 1, 1, 1, 0, 0)")  # filtered: not a key used
    row = event(1, props='{"author": "x", "user_48151623": "y", "plan": "pro"}')
    db.execute(f"INSERT INTO events ({', '.join(Event._fields)}) VALUES ({', '.join('?' * len(row))})", row)
    db.close()
    s = SQLiteStore(tmp_path / "a.db")
    await s.open()
    try:
        assert min(m.version for m in await s.migrate()) == 7  # and the ones after it
        sites = {site.domain: site.allowed_props for site in await s.list_sites()}
        assert sites == {"old.example": ("author", "plan"), "quiet.example": ()}
        new = await s.add_site(SiteSettings("new.example"), 0)
        assert new.allowed_props == ()
    finally:
        await s.close()


async def test_drop_counters_add_up_by_site_day_and_reason_and_go_with_their_site(store: SQLiteStore) -> None:
    site = await store.add_site(SiteSettings("example.com"), 0)
    other = await store.add_site(SiteSettings("other.example"), 0)
    await store.insert_events([event(site.id)], [(site.id, 740000, "bot", 2), (site.id, 740000, "gpc", 1)])
    await store.insert_events(
        [], [(site.id, 740000, "bot", 3), (site.id, 740001, "bot", 1), (other.id, 740000, "dnt", 4)]
    )
    assert await store.count_events() == 1
    assert await store.drop_counts(site.id, 740000, 740001) == [
        (site.id, 740000, "bot", 5),
        (site.id, 740000, "gpc", 1),
        (site.id, 740001, "bot", 1),
    ]
    assert await store.drop_counts(site.id, 740001, 740001) == [(site.id, 740001, "bot", 1)]
    assert await store.delete_drops_before(site.id, 740001) == 2
    await store.remove_site("other.example")
    assert await store.drop_counts(other.id, 0, 10**6) == []
    with pytest.raises(InvalidData):  # a refused row takes the counts of its batch with it
        await store.insert_events([event(site.id, ts=2**64)], [(site.id, 740001, "bot", 10)])
    assert await store.drop_counts(site.id, 740001, 740001) == [(site.id, 740001, "bot", 1)]


async def test_the_visitors_of_the_last_minutes_are_read_with_their_last_event(store: SQLiteStore) -> None:
    site = await store.add_site(SiteSettings("example.com"), 0)
    await store.insert_events(
        [
            event(site.id, 100, visitor_id=1),
            event(site.id, 200, visitor_id=1),
            event(site.id, 300, visitor_id=1, name="engagement"),  # a ping is not a visit's last event
            event(site.id, 150, visitor_id=2),
            event(site.id, 250, visitor_id=3),
            event(site.id + 1, 250, visitor_id=4),  # no such site
        ]
    )
    assert sorted(await store.visitors_last_seen(0, 1000)) == [(site.id, 1, 200), (site.id, 2, 150), (site.id, 3, 250)]
    assert sorted(await store.visitors_last_seen(180, 1000, seen_between=(0, 160))) == [(site.id, 1, 200)]


async def test_a_database_of_the_previous_version_keeps_its_visits_across_midnight_and_every_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events stored with `prev_visitor_id` (the hash under yesterday's salt, in the first 30 minutes after UTC
    midnight): the events the old join put in a visit begun under another hash get that hash, then the column
    goes. Figures of both days stay what they were."""
    from analytics.store import sqlite as sqlite_module

    monkeypatch.setattr(sqlite_module, "load_migrations", lambda: [m for m in load_migrations() if m.version < 8])
    path = tmp_path / "a.db"
    old = SQLiteStore(path)
    await old.open()
    try:
        before = await _previous_version_events(old)
    finally:
        await old.close()
    monkeypatch.undo()

    new = SQLiteStore(path)
    await new.open()
    try:
        assert [m.version for m in await new.migrate()][:1] == [8]  # and any later ones
        async with new.admin.execute("SELECT rowid, * FROM events") as cur:
            names = [d[0] for d in cur.description]
            after = {r[0]: dict(zip(names[1:], r[1:], strict=True)) for r in await cur.fetchall()}
        assert "prev_visitor_id" not in names and len(after) == len(before) == 12
        for rowid, old_row in before.items():  # every event, every value but the hash it was given
            assert {k: v for k, v in after[rowid].items() if k != "visitor_id"} == {
                k: v for k, v in old_row.items() if k not in ("visitor_id", "prev_visitor_id")
            }
        hashes = [after[rowid]["visitor_id"] for rowid in sorted(after)]
        assert hashes == [10, 10, 10, 10, 11, 20, 21, 31, 40, 40, 41, 41]

        def visits(events: list[Event], day: date) -> tuple[object, ...]:
            rows = rollup.rollup_day(events, day, ZoneInfo("UTC"), filters=None, min_visitors=1)
            totals = next(r for r in rows if r.period == rollup.DAY and not r.dimension)
            exits = sorted(r.value for r in rows if r.period == rollup.DAY and r.dimension == "visit:exit_page")
            return totals.visitors, totals.visits, totals.pageviews, *exits

        first = await new.events_between(1, 0, 2**62)
        assert visits(first, date(2026, 3, 14)) == (2, 2, 4, "/c", "/x")
        assert visits(first, date(2026, 3, 15)) == (3, 3, 3, "/again", "/y", "/z")
        second = await new.events_between(2, 0, 2**62)
        assert visits(second, date(2026, 3, 14)) == (1, 1, 2, "/q")
        assert visits(second, date(2026, 3, 15)) == (1, 1, 2, "/s")
    finally:
        await new.close()


async def _previous_version_events(old: SQLiteStore) -> dict[int, dict[str, object]]:
    """Two sites' events around two midnights, stored as the previous version did; returns them by rowid."""
    await old.migrate()
    for domain in ("a.example", "b.example"):
        await old.add_site(SiteSettings(domain), 0)
    midnight = 1_773_532_800_000  # 2026-03-15 00:00 UTC
    minute = 60_000
    # (site, minutes from midnight, visitor_id, prev_visitor_id, name, page), as the previous version stored them
    stored = [
        (1, -10, 10, None, "pageview", "/a"),  # A: one visit 23:50 - 00:35, back at 02:00
        (1, 10, 11, 10, "pageview", "/b"),
        (1, 35, 11, None, "pageview", "/c"),
        (1, 40, 11, None, "engagement", "/c"),
        (1, 120, 11, None, "pageview", "/again"),
        (1, -20, 20, None, "pageview", "/x"),  # B: back after 40 minutes, a visit of each day
        (1, 20, 21, 20, "pageview", "/y"),
        (1, 5, 31, 30, "pageview", "/z"),  # C: today only
        (2, -1, 40, None, "pageview", "/p"),  # on another site, and on the next night
        (2, 1, 41, 40, "pageview", "/q"),
        (2, 24 * 60 - 2, 41, None, "pageview", "/r"),
        (2, 24 * 60 + 3, 42, 41, "pageview", "/s"),
    ]
    columns = [c for c in COLUMNS if c != "visitor_id"]
    for site, minutes, visitor, previous, name, page in stored:
        values = event(site, midnight + minutes * minute, name=name, pathname=page)._asdict()
        await old.admin.execute(
            f"INSERT INTO events (visitor_id, prev_visitor_id, {', '.join(columns)}) "
            f"VALUES (?, ?, {', '.join('?' * len(columns))})",
            (visitor, previous, *(values[c] for c in columns)),
        )
    async with old.admin.execute("SELECT rowid, * FROM events") as cur:
        names = [d[0] for d in cur.description]
        return {r[0]: dict(zip(names[1:], r[1:], strict=True)) for r in await cur.fetchall()}


async def test_a_sqlite_too_old_to_drop_a_column_stops_the_migration_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analytics.store import sqlite as sqlite_module

    monkeypatch.setattr(sqlite_module, "load_migrations", lambda: [m for m in load_migrations() if m.version < 8])
    s = SQLiteStore(tmp_path / "a.db")
    await s.open()
    try:
        await s.migrate()
        monkeypatch.setattr(sqlite_module, "load_migrations", load_migrations)
        monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
        with pytest.raises(StoreError, match=r"SQLite 3\.35 or newer"):
            await s.migrate()
        assert not await s.schema_is_current()
        async with s.admin.execute(
            "SELECT COUNT(*) FROM pragma_table_info('events') WHERE name = 'prev_visitor_id'"
        ) as c:
            assert (await c.fetchone()) == (1,)  # rolled back: nothing changed
    finally:
        await s.close()
