"""The SQLite store: migrations, sites, salts shared between workers, atomic event batches."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from analytics.errors import Conflict, NotFound, StoreError
from analytics.events import Event
from analytics.sites import SiteSettings
from analytics.store import SQLiteStore
from analytics.store.base import load_migrations
from analytics.store.sqlite import ROWS_PER_STATEMENT


def event(site_id: int = 1, ts: int = 0, **changes: object) -> Event:
    base = Event(
        site_id,
        ts,
        123,
        None,
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
    with pytest.raises(StoreError, match=f"writing {size} events failed"):
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
