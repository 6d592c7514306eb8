"""The embedded store: SQLite through aiosqlite, in WAL mode, with one writer connection for events.

The writer connection belongs to the batch writer (one `insert_events` call per batch, one thread hop, one
atomic statement); a second connection serves the rarer site and count queries, so they never wait behind a
batch.

Three files: `analytics.db` (sites, raw events, accounts), `analytics-aggregates.db` beside it (the aggregates,
attached to the second connection as `aggregates`) and `analytics-salts.db` (the daily salts). SQLite has one
write lock per file, and a day's rollup writes hundreds of thousands of rows in one transaction (seconds, atomic
so that no reader ever sees half a day); in the events' file that transaction held ingest's commits for up to
11 s. In a file of its own it holds nothing ingest needs.

The salts have a file of their own so that nothing can keep a destroyed salt on disk. In the events' file, a
deleted salt's old page stayed in the WAL until a checkpoint could truncate it, which needs a moment when no
reader is in the WAL: open-day workers re-reading today's events back to back, a backup, or any process left
inside a read transaction put that off for minutes or for good. The salts' file is opened by the server's
processes and the `analytics` commands only (`open`; not `open_for_reading`), through one connection each
(`_salts`), for statements of milliseconds, never by a worker, a backup's copy or the Stats API; and it has a
rollback journal instead of a WAL (analytics/store/sqlite_connect.py), whose commit leaves no copy of a deleted
page behind.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import json
import logging
import os
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import aiosqlite

from analytics import processes
from analytics.apikeys import ApiKey
from analytics.beacon import ENGAGEMENT
from analytics.drops import DropRow
from analytics.errors import Conflict, InvalidData, NotFound, StoreError, TooSlow
from analytics.events import COLUMNS, Event
from analytics.rollup import DAY, DIMENSIONS, HOUR, MONTH, PROP_KEYS, PROPS_BASE, Row, transposed
from analytics.sites import Site, SiteSettings
from analytics.store import sqlite_backup, sqlite_forget, sqlite_rollup, sqlite_steps
from analytics.store.base import Forgotten, Migration, load_migrations
from analytics.store.dialect import SQLITE
from analytics.store.sqlite_accounts import AccountsMixin
from analytics.store.sqlite_connect import WIPE_PAUSE_S, WIPE_TRIES, connect, empty_wal, quiet_driver_log

log = logging.getLogger("analytics.store")

AGGREGATE_TABLES = ("dim_values", "agg", "agg_days", "agg_months", "rollups")
"""Tables kept in the aggregates file (migrations create them in the main file; `migrate` moves them)."""
JOBS_IDLE_S = 60.0
PURGE_CHUNK = 5_000
"""Raw events deleted per transaction by the purge (~20 ms each here), so that ingest's commits never wait long."""

# SQLite's default limit on bound parameters per statement (since 3.32); larger batches are chunked.
MAX_PARAMETERS = 32_766
ROWS_PER_STATEMENT = MAX_PARAMETERS // len(COLUMNS)
READ_SECONDS = 5.0  # a Stats API read still running after this is interrupted (a dashboard's take milliseconds)
PROGRESS_STEPS = 5_000  # how often (in SQLite VM steps, some microseconds) a read checks its deadline


EVENTS_BETWEEN = f"SELECT {', '.join(COLUMNS)} FROM events WHERE site_id = ? AND ts >= ? AND ts < ? ORDER BY ts"  # noqa: S608


def read_events(path: str, site_id: int, start_ms: int, end_ms: int) -> list[Event]:
    """`events_between` without the store, for worker processes (analytics/openday.py): a connection of their
    own to the file (WAL lets them read while the server writes)."""
    db = connect(path, 5000)
    try:
        return [Event(*r) for r in db.execute(EVENTS_BETWEEN, (site_id, start_ms, end_ms))]
    finally:
        db.close()


def count_events(path: str, site_id: int, start_ms: int, end_ms: int) -> int:
    """How many raw events of the site are in [start, end) (from the index alone): what a worker compares with
    the events it keeps, to notice deletions (`analytics forget`, a purge)."""
    db = connect(path, 5000)
    try:
        found = db.execute(
            "SELECT COUNT(*) FROM events WHERE site_id = ? AND ts >= ? AND ts < ?", (site_id, start_ms, end_ms)
        ).fetchone()
        return int(found[0])
    finally:
        db.close()


def check_writable(path: Path, companions: Sequence[str] = ("-wal", "-shm")) -> None:
    """Refuses, with the file and the fix, a database whose files (itself and its `companions`: a WAL file's
    -wal and -shm, the salts' -journal) this process cannot write.

    SQLite quietly opens an unwritable -shm (the shared-memory index of the WAL) read-only; the server would
    then fail its first write with a bare "attempt to write a readonly database". As root, permissions never
    stop it, but the immutable flag (`chattr +i`) and a read-only mount do; open(O_RDWR) sees all of them.
    (The -shm is memory-mapped: truncated under a running server it kills the process with SIGBUS, which no
    check can prevent; see the README, Durability.)"""
    folder = path.parent
    for file in (path, *(path.with_name(path.name + suffix) for suffix in companions)):
        try:
            os.close(os.open(file, os.O_RDWR))
        except FileNotFoundError:
            continue  # SQLite creates it (the folder is checked below)
        except OSError as exc:
            fix = "make it writable by this user (`chattr -i` if `lsattr` shows it immutable, or remount read-write)"
            if file.name.endswith("-shm"):
                fix += ", or delete it while no process has the database open (SQLite makes a new one)"
            raise StoreError(f"cannot write {file} ({exc.strerror}): {fix}") from None
    if not os.access(folder, os.W_OK):
        raise StoreError(
            f"cannot write in the folder {folder}: SQLite creates the database's {' and '.join(companions)} files "
            "next to it; make the folder writable by this user"
        )


@lru_cache(maxsize=64)
def _insert_sql(rows: int) -> str:
    one = f"({SQLITE.params(len(COLUMNS))})"
    # Only column names and placeholders are formatted in; values are always bound.
    return f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES " + ", ".join([one] * rows)  # noqa: S608


SITE_COLUMNS = "id, domain, timezone, allowed_hostnames, excluded_ips, excluded_paths, allowed_props, collect"
ADD_DROPS = (
    "INSERT INTO drops (site_id, day, reason, count) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (site_id, day, reason) DO UPDATE SET count = drops.count + excluded.count"
)


def _site(r: sqlite3.Row | tuple[Any, ...]) -> Site:
    id_, domain, tz, hosts, ips, paths, props, collect = r
    return Site(
        int(id_),
        str(domain),
        str(tz),
        tuple(json.loads(str(hosts))),
        tuple(json.loads(str(ips))),
        tuple(json.loads(str(paths))),
        allowed_props=tuple(json.loads(str(props))),
        collect=tuple(sorted(json.loads(str(collect)).items())),
    )


@contextlib.asynccontextmanager
async def _transaction(conn: aiosqlite.Connection) -> AsyncIterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error (the write lock is taken up front, so a busy
    database fails at BEGIN, before anything is written)."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already (e.g. after SQLITE_FULL)
            await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


def aggregates_path(path: Path) -> Path:
    """`data/analytics.db` -> `data/analytics-aggregates.db`."""
    return path.with_name(f"{path.stem}-aggregates{path.suffix or '.db'}")


def salts_path(path: Path) -> Path:
    """`data/analytics.db` -> `data/analytics-salts.db`."""
    return path.with_name(f"{path.stem}-salts{path.suffix or '.db'}")


SALTS_TABLE = "CREATE TABLE IF NOT EXISTS salts (day TEXT PRIMARY KEY, salt BLOB NOT NULL, created_at BIGINT NOT NULL)"
"""The salts' file's one table, as migration 0001 made it in the events' file (where `_move_salts` takes it from)."""
SALTS_JOURNAL = "DELETE"
"""The salts' file's journal (analytics/store/sqlite_connect.py): a rollback journal, deleted at each commit."""
SALTS_SYNCHRONOUS = "EXTRA"
"""FULL, and the folder synced once the journal is deleted: a salt's deletion, once returned, survives a power
loss (under FULL, a deletion not yet durable could be rolled back at the next start, bringing the salt back).
Two writes a day: the cost is nothing."""


@dataclass(frozen=True, slots=True)
class Files:
    """What a worker process needs to reach the store itself (picklable): the two files and the busy timeout."""

    events: str
    aggregates: str
    busy_timeout_ms: int


UNUSED_VALUES: tuple[str, tuple[object, ...]] = (
    "DELETE FROM dim_values WHERE (dim <> ? AND id NOT IN "
    "(SELECT val FROM agg UNION SELECT fval FROM agg UNION SELECT val FROM agg_days "
    "UNION SELECT fval FROM agg_days UNION SELECT val FROM agg_months UNION SELECT fval FROM agg_months)) "
    "OR (dim = ? AND id NOT IN (SELECT dim - ? FROM agg WHERE dim >= ? "
    "UNION SELECT fdim - ? FROM agg WHERE fdim >= ? UNION SELECT dim - ? FROM agg_days WHERE dim >= ? "
    "UNION SELECT fdim - ? FROM agg_days WHERE fdim >= ? UNION SELECT dim - ? FROM agg_months WHERE dim >= ? "
    "UNION SELECT fdim - ? FROM agg_months WHERE fdim >= ?))",
    (PROP_KEYS, PROP_KEYS, *[PROPS_BASE] * 12),
)
"""Values no aggregate row refers to (property keys: by their dimension id)."""


class SQLiteStore(AccountsMixin):
    def __init__(self, path: Path, synchronous: str = "NORMAL", busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self.aggregates_path = aggregates_path(path)
        self.salts_path = salts_path(path)
        self._synchronous = synchronous.upper()
        self._busy_timeout_ms = busy_timeout_ms
        self._writer: aiosqlite.Connection | None = None
        self._admin: aiosqlite.Connection | None = None
        self._salts: aiosqlite.Connection | None = None
        self._jobs: concurrent.futures.ProcessPoolExecutor | None = None
        self._jobs_used = 0.0
        self._jobs_running = 0
        # The Stats API's aggregate reads have their own connection, so that one can be interrupted when it runs
        # past its time budget without touching the statements of anyone else.
        self._reader: aiosqlite.Connection | None = None
        self._reader_lock = asyncio.Lock()
        self.read_seconds = READ_SECONDS
        self.progress_steps = PROGRESS_STEPS
        # Deletes of raw events (and of other rows of the WAL files), counted, and how many of them the last wipe
        # covered. 1 and 0: what an earlier process deleted and had no time to wipe may be in the WALs, until a
        # first wipe. Salts need no wipe: see `delete_salts_before`.
        self._deletes = 1
        self._wiped = 0
        self._blocked_since = 0.0
        self.wipe_tries = WIPE_TRIES
        self.wipe_pause_s = WIPE_PAUSE_S
        self.wal_blocked = 0
        """Times a reader kept a WAL from being emptied (a /metrics counter)."""

    async def _connect(self, attach: bool) -> aiosqlite.Connection:
        # Opened (and set up, sqlite_connect.connect) in the connection's own thread, as aiosqlite.connect does.
        connector = partial(
            connect,
            self.path,
            self._busy_timeout_ms,
            self._synchronous,
            self.aggregates_path if attach else None,
        )
        return await aiosqlite.Connection(connector, iter_chunk_size=64)

    async def _connect_salts(self) -> aiosqlite.Connection:
        connector = partial(
            connect, self.salts_path, self._busy_timeout_ms, SALTS_SYNCHRONOUS, journal_mode=SALTS_JOURNAL
        )
        return await aiosqlite.Connection(connector, iter_chunk_size=64)

    def files(self) -> Files:
        return Files(str(self.path.resolve()), str(self.aggregates_path.resolve()), self._busy_timeout_ms)

    async def open(self) -> None:
        quiet_driver_log()
        opening = self.path
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for path in (self.path, self.aggregates_path):
                check_writable(path)  # a StoreError of its own, naming the file
            check_writable(self.salts_path, ("-journal",))
            self._admin = await self._connect(attach=True)
            self._writer = await self._connect(attach=False)
            self._reader = await self._connect(attach=True)
            opening = self.salts_path
            self._salts = await self._connect_salts()
        except StoreError:
            await self.close()
            raise
        except (OSError, sqlite3.Error) as exc:
            await self.close()
            full = isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL"
            hint = ": free some space on the disk that holds it" if full else ""
            raise StoreError(f"cannot open the SQLite database {opening}: {exc}{hint}") from None

    async def open_for_reading(self) -> None:
        """Opens the connections that read (a worker process's store: it answers questions, never writes, and
        never opens the salts' file)."""
        quiet_driver_log()
        try:
            self._admin = await self._connect(attach=True)
            self._reader = await self._connect(attach=True)
        except StoreError:
            await self.close()
            raise
        except (OSError, sqlite3.Error) as exc:
            await self.close()
            raise StoreError(f"cannot open the SQLite database {self.path}: {exc}") from None

    async def close(self) -> None:
        self._stop_jobs_pool()
        for conn in (self._salts, self._reader, self._writer, self._admin):
            if conn is not None:
                await conn.close()
        self._writer = self._admin = self._reader = self._salts = None

    @property
    def admin(self) -> aiosqlite.Connection:
        if self._admin is None:
            raise StoreError("the store is not open")
        return self._admin

    @property
    def salts_db(self) -> aiosqlite.Connection:
        """The one connection to the salts' file (opened by `open`, not by `open_for_reading`)."""
        if self._salts is None:
            raise StoreError("the store is not open for writing")
        return self._salts

    async def _applied(self) -> set[int]:
        await self.admin.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        )
        async with self.admin.execute("SELECT version FROM schema_migrations") as cur:
            return {int(r[0]) for r in await cur.fetchall()}

    async def migrate(self) -> list[Migration]:
        applied: list[Migration] = []
        try:
            await self.salts_db.execute(SALTS_TABLE)
            done = await self._applied()
            for migration in load_migrations():
                if migration.version in done:
                    continue
                async with _transaction(self.admin):
                    # Another process may have applied it while we waited for the lock.
                    async with self.admin.execute(
                        "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
                    ) as cur:
                        if await cur.fetchone() is not None:
                            continue
                    step = sqlite_steps.BEFORE.get(migration.version)
                    if step is not None:
                        await step(self.admin)
                    for statement in SQLITE.migration(migration.sql):
                        await self.admin.execute(statement)
                    await self.admin.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                        (migration.version, migration.name),
                    )
                applied.append(migration)
            await self._move_aggregates()
            await self._move_salts()
        except sqlite3.Error as exc:
            raise StoreError(f"migrating {self.path} failed: {exc}") from None
        return applied

    async def _move_aggregates(self) -> None:
        """Moves aggregate tables that are still in the main file (databases made before the aggregates had a
        file of their own, and tables new migrations create) into the aggregates file. Each step writes one file
        only, so each is atomic, and re-running after a crash at any point redoes the copy, never loses rows."""
        for table in AGGREGATE_TABLES:
            async with self.admin.execute(
                "SELECT sql FROM main.sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ) as cur:
                found = await cur.fetchone()
            if found is None:
                continue
            log.info("moving table %s into %s (once)", table, self.aggregates_path.name)
            create = re.sub(rf"^CREATE TABLE {table}\b", f"CREATE TABLE IF NOT EXISTS aggregates.{table}", found[0])
            async with _transaction(self.admin):  # writes the aggregates file only
                await self.admin.execute(create)
                await self.admin.execute(f"DELETE FROM aggregates.{table}")  # noqa: S608 (constant names)
                await self.admin.execute(f"INSERT INTO aggregates.{table} SELECT * FROM main.{table}")  # noqa: S608
            async with _transaction(self.admin):  # writes the main file only
                await self.admin.execute(f"DROP TABLE main.{table}")

    async def _move_salts(self) -> None:
        """Moves the salts out of the events' file (databases made before the salts had a file of their own, and
        the empty table migration 0001 makes), then erases them there. VACUUM rebuilds the file from its live rows:
        salts deleted by an earlier version, or by a SQLite without secure_delete, could lie in the free space of
        any page or in a free page, and VACUUM leaves neither. The table is dropped after it, so that a crash in
        between leaves it there to say the work is unfinished (re-run, the salts are copied again, the same rows);
        its pages, freed, are zeroed (secure_delete). The WAL still holds every page as it was: it is emptied
        last (`wipe`; if a reader holds it up, the next upkeep or start tries again)."""
        async with self.admin.execute(
            "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = 'salts'"
        ) as cur:
            if await cur.fetchone() is None:
                return
        async with self.admin.execute("SELECT day, salt, created_at FROM main.salts") as cur:
            rows = list(await cur.fetchall())
        if rows:
            log.info(
                "moving %d salts into %s, erasing them from %s (once)", len(rows), self.salts_path.name, self.path.name
            )
        async with _transaction(self.salts_db):
            await self.salts_db.executemany(
                "INSERT INTO salts (day, salt, created_at) VALUES (?, ?, ?) ON CONFLICT (day) DO NOTHING", rows
            )
        await self.admin.execute("VACUUM main")
        await self.admin.execute("DROP TABLE IF EXISTS main.salts")
        self._deletes += 1
        await self.wipe()

    async def schema_is_current(self) -> bool:
        try:
            return await self._applied() >= {m.version for m in load_migrations()}
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {self.path}: {exc}") from None

    async def ping(self) -> None:
        try:
            async with self.admin.execute("SELECT COUNT(*) FROM schema_migrations") as cur:
                await cur.fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {self.path}: {exc}") from None

    async def add_site(self, settings: SiteSettings, now_ms: int) -> Site:
        try:
            cur = await self.admin.execute(
                "INSERT INTO sites (domain, timezone, allowed_hostnames, excluded_ips, excluded_paths, allowed_props, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    settings.domain,
                    settings.timezone,
                    json.dumps(list(settings.allowed_hostnames)),
                    json.dumps(list(settings.excluded_ips)),
                    json.dumps(list(settings.excluded_paths)),
                    json.dumps(list(settings.allowed_props)),
                    now_ms,
                ),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"site {settings.domain} already exists") from None
        except sqlite3.Error as exc:
            raise StoreError(f"cannot add site {settings.domain}: {exc}") from None
        assert cur.lastrowid is not None
        return Site(
            cur.lastrowid,
            settings.domain,
            settings.timezone,
            settings.allowed_hostnames,
            settings.excluded_ips,
            settings.excluded_paths,
            allowed_props=settings.allowed_props,
        )

    async def list_sites(self) -> list[Site]:
        try:
            async with self.admin.execute(f"SELECT {SITE_COLUMNS} FROM sites ORDER BY domain") as cur:  # noqa: S608
                sites = [_site(tuple(r)) for r in await cur.fetchall()]
            async with self.admin.execute("SELECT site_id, value FROM goals WHERE kind = 'page' ORDER BY id") as cur:
                goals = await cur.fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the sites: {exc}") from None
        pages: dict[int, list[str]] = {}
        for site_id, value in goals:
            pages.setdefault(int(site_id), []).append(str(value))
        return [replace(s, page_goals=tuple(pages[s.id])) if s.id in pages else s for s in sites]

    async def remove_site(self, domain: str) -> tuple[Site, int]:
        site = next((s for s in await self.list_sites() if s.domain == domain), None)
        if site is None:
            raise NotFound(f"no site {domain}; `analytics site list` shows the registered ones")
        try:
            async with _transaction(self.admin):
                cur = await self.admin.execute("DELETE FROM events WHERE site_id = ?", (site.id,))
                removed = cur.rowcount
                # Its figures, links and goals go with it, and no key or user keeps its id (SQLite may reuse it).
                for table in ("agg", "agg_days", "agg_months", "rollups", "shared_links", "goals", "drops"):
                    await self.admin.execute(f"DELETE FROM {table} WHERE site_id = ?", (site.id,))  # noqa: S608
                for table in ("api_keys", "users"):
                    async with self.admin.execute(
                        f"SELECT id, site_ids FROM {table} WHERE site_ids IS NOT NULL"  # noqa: S608
                    ) as cur:
                        for id_, ids in await cur.fetchall():
                            kept = [i for i in json.loads(str(ids)) if i != site.id]
                            await self.admin.execute(
                                f"UPDATE {table} SET site_ids = ? WHERE id = ?",  # noqa: S608
                                (json.dumps(kept), id_),
                            )
                await self.admin.execute("DELETE FROM sites WHERE id = ?", (site.id,))
                await self.admin.execute(
                    *UNUSED_VALUES
                )  # its pages, cities, properties... unless another site has them
        except sqlite3.Error as exc:
            raise StoreError(f"cannot remove site {domain}: {exc}") from None
        self._deletes += 1
        return site, removed

    async def salt(self, day: date, candidate: bytes, now_ms: int) -> bytes:
        try:
            await self.salts_db.execute(
                "INSERT INTO salts (day, salt, created_at) VALUES (?, ?, ?) ON CONFLICT (day) DO NOTHING",
                (day.isoformat(), candidate, now_ms),
            )
            async with self.salts_db.execute("SELECT salt FROM salts WHERE day = ?", (day.isoformat(),)) as cur:
                found = await cur.fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read or create the salt of {day}: {exc}") from None
        assert found is not None
        return bytes(found[0])

    async def delete_salts_before(self, day: date) -> int:
        """Once this returns, the salts are in no file: secure_delete zeroes them in their page, and the commit
        deletes the rollback journal, the only other copy of that page (nothing to wipe). Another process
        inside a read transaction on the salts' file (none of the server's own: an `sqlite3` shell left inside
        BEGIN) would make the DELETE wait, and fail after the busy timeout: the salt is then still in use,
        and the next upkeep deletes it."""
        try:
            cur = await self.salts_db.execute("DELETE FROM salts WHERE day < ?", (day.isoformat(),))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot delete old salts: {exc}") from None
        return cur.rowcount

    async def salt_days(self) -> list[date]:
        """The UTC days whose salt exists, oldest first."""
        try:
            async with self.salts_db.execute("SELECT day FROM salts ORDER BY day") as cur:
                return [date.fromisoformat(str(r[0])) for r in await cur.fetchall()]
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the days of the salts: {exc}") from None

    @property
    def wipe_pending(self) -> bool:
        return self._deletes > self._wiped

    async def wipe(self) -> bool:
        """Empties the WALs of the events' and the aggregates' files (sqlite_connect.empty_wal): rows deleted
        since the last time (raw events, a removed site's rows, a forgotten value), zeroed in their pages by
        secure_delete, then leave no older page image behind on disk. Tried
        `wipe_tries` times, `wipe_pause_s` apart, each try holding ingest's commits 0.1 s at most. False when
        readers were in a WAL at every try; `wipe_pending` then stays true, and the server's upkeep tries again
        at its next round (analytics/app.py)."""
        covered = self._deletes  # a delete made while this runs may land in the WAL after it is emptied
        for path in (self.path, self.aggregates_path):
            for attempt in range(self.wipe_tries):
                if attempt:
                    await asyncio.sleep(self.wipe_pause_s)
                try:
                    if await asyncio.to_thread(empty_wal, path):
                        break
                except sqlite3.Error as exc:
                    raise StoreError(f"cannot empty the WAL of {path}: {exc}") from None
            else:
                self.wal_blocked += 1
                self._blocked_since = self._blocked_since or time.monotonic()
                log.info(
                    "the WAL of %s is not emptied yet: readers were in it at each of %d tries over %.0f s; "
                    "rows deleted may stay in it until the next round",
                    path.name,
                    self.wipe_tries,
                    (self.wipe_tries - 1) * self.wipe_pause_s,
                )
                return False
        if self._blocked_since:
            log.info("the WALs are emptied, %.0f s after the first try", time.monotonic() - self._blocked_since)
        self._wiped = covered
        self._blocked_since = 0.0
        return True

    async def insert_events(self, events: Sequence[Event], drops: Sequence[DropRow] = ()) -> None:
        if self._writer is None:
            raise StoreError("the store is not open")
        writer = self._writer
        try:
            if not drops and 0 < len(events) <= ROWS_PER_STATEMENT:
                # One multi-row INSERT in autocommit mode: atomic, and a single hop to the sqlite thread.
                await writer.execute(_insert_sql(len(events)), list(itertools.chain.from_iterable(events)))
                return
            async with _transaction(writer):
                if 0 < len(events) <= ROWS_PER_STATEMENT:
                    await writer.execute(_insert_sql(len(events)), list(itertools.chain.from_iterable(events)))
                elif events:
                    await writer.executemany(_insert_sql(1), events)
                if drops:
                    await writer.executemany(ADD_DROPS, drops)
        except (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError, ValueError, OverflowError) as exc:
            # A value SQLite cannot hold (text that is not UTF-8, an integer beyond 64 bits): these rows, not the
            # database, are at fault, so the batch writer retries the other requests' events without them.
            raise InvalidData(f"an event could not be stored as it is: {exc}") from None
        except sqlite3.Error as exc:
            raise StoreError(f"writing {len(events)} events failed: {exc}") from None

    async def drop_counts(self, site_id: int, first_day: int, last_day: int) -> list[DropRow]:
        try:
            async with self.admin.execute(
                "SELECT site_id, day, reason, count FROM drops WHERE site_id = ? AND day BETWEEN ? AND ? "
                "ORDER BY day, reason",
                (site_id, first_day, last_day),
            ) as cur:
                return [(int(r[0]), int(r[1]), str(r[2]), int(r[3])) for r in await cur.fetchall()]
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the drop counters: {exc}") from None

    async def delete_drops_before(self, site_id: int, day: int) -> int:
        return await self._change("DELETE FROM drops WHERE site_id = ? AND day < ?", (site_id, day), "drop counters")

    async def events_between(self, site_id: int, start_ms: int, end_ms: int) -> list[Event]:
        try:
            async with self.admin.execute(EVENTS_BETWEEN, (site_id, start_ms, end_ms)) as cur:
                return [Event(*r) for r in await cur.fetchall()]
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read events: {exc}") from None

    async def first_event_ts(self, site_id: int) -> int | None:
        try:
            async with self.admin.execute("SELECT MIN(ts) FROM events WHERE site_id = ?", (site_id,)) as cur:
                found = await cur.fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read events: {exc}") from None
        return int(found[0]) if found and found[0] is not None else None

    async def rolled_up_days(self, site_id: int) -> set[int]:
        try:
            async with self.admin.execute("SELECT day FROM rollups WHERE site_id = ?", (site_id,)) as cur:
                return {int(r[0]) for r in await cur.fetchall()}
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the rollup state: {exc}") from None

    async def write_rollup(
        self,
        site_id: int,
        day: int,
        hours: tuple[int, int],
        month: tuple[int, int, int],
        rows: Sequence[Row],
        now_ms: int,
    ) -> None:
        try:
            await asyncio.to_thread(
                sqlite_rollup.write_day,
                self.aggregates_path,
                self._busy_timeout_ms,
                site_id,
                day,
                hours,
                month,
                rows,
                now_ms,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"writing the rollup of day {day} failed: {exc}") from None

    async def roll_up_day(self, site: Site, day: date, now_ms: int, min_visitors: int) -> tuple[int, int]:
        """In the jobs' worker process (analytics/store/sqlite_jobs.py): the day's events are read, its rows computed
        (folded at `min_visitors`) and written there; this process only waits."""
        from analytics.store import sqlite_jobs

        args = (self.files(), site.id, day.toordinal(), site.timezone, site.page_goals, now_ms, min_visitors)
        self._jobs_running += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._jobs_pool(), sqlite_jobs.roll_day, *args)
        except sqlite3.Error as exc:
            raise StoreError(f"writing the rollup of {site.domain} on {day} failed: {exc}") from None
        except BrokenProcessPool:
            self._stop_jobs_pool()
            raise StoreError(f"the rollup worker of {site.domain} on {day} died; it will be retried") from None
        finally:
            self._jobs_running -= 1
            self._jobs_used = time.monotonic()

    def _jobs_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._jobs is None:
            # One process, below the server's priority: the server parses and queues events, the rollup waits.
            self._jobs = processes.pool(1, niceness=10)
            self._jobs_used = time.monotonic()
            self._idle_check()
        return self._jobs

    def _idle_check(self) -> None:
        """The worker goes once idle for JOBS_IDLE_S (it holds a busy day's events, ~200 MB, until it exits)."""
        if self._jobs is None:
            return
        if not self._jobs_running and time.monotonic() - self._jobs_used > JOBS_IDLE_S:
            self._stop_jobs_pool()
            return
        with contextlib.suppress(RuntimeError):  # no running loop: the pool goes at close()
            asyncio.get_running_loop().call_later(JOBS_IDLE_S / 4, self._idle_check)

    def _stop_jobs_pool(self) -> None:
        if self._jobs is not None:
            self._jobs.shutdown(wait=False, cancel_futures=True)
        self._jobs = None

    async def _change(self, sql: str, args: tuple[object, ...], what: str) -> int:
        try:
            cur = await self.admin.execute(sql, args)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot change {what}: {exc}") from None
        return cur.rowcount

    async def delete_events_before(self, site_id: int, ts_ms: int) -> int:
        """In chunks of PURGE_CHUNK, each its own transaction: one DELETE of a busy day's 200,000 events held
        the write lock for seconds, during which ingest's commits waited (and past the busy timeout, failed)."""
        removed = 0
        while True:
            done = await self._change(
                "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE site_id = ? AND ts < ? LIMIT ?)",
                (site_id, ts_ms, PURGE_CHUNK),
                "raw events",
            )
            removed += done
            self._deletes += done > 0
            if done < PURGE_CHUNK:
                return removed
            await asyncio.sleep(0.005)  # the batch writer's turn

    async def delete_aggregates_before(self, site_id: int, hour: int, day: int, month: int) -> int:
        async with self.admin.execute("SELECT MIN(day) FROM rollups WHERE site_id = ?", (site_id,)) as cur:
            oldest = await cur.fetchone()
        if oldest is None or oldest[0] is None or oldest[0] >= day:
            return 0  # aggregates exist for rolled-up days only: nothing is that old (and no table is scanned)
        removed = 0
        for period, bucket in ((HOUR, hour), (DAY, day), (MONTH, month)):
            removed += await self._change(
                "DELETE FROM agg WHERE site_id = ? AND period = ? AND bucket < ?",
                (site_id, period, bucket),
                "aggregates",
            )
        removed += await self._change(
            "DELETE FROM agg_months WHERE site_id = ? AND bucket < ?", (site_id, month), "aggregates"
        )
        await self._change("DELETE FROM rollups WHERE site_id = ? AND day < ?", (site_id, day), "rollup records")
        return removed

    async def delete_recent_before(self, site_id: int, day: int) -> int:
        removed = await self._change(
            "DELETE FROM agg_days WHERE site_id = ? AND period = ? AND bucket < ?",
            (site_id, DAY, day),
            "recent filtered rows",
        )
        await self._change(
            "UPDATE rollups SET recent = 0 WHERE site_id = ? AND day < ? AND recent = 1", (site_id, day), "rollups"
        )
        return removed

    async def delete_unused_values(self) -> int:
        return await self._change(*UNUSED_VALUES, "unused dimension values")

    async def forget_value(self, site: Site, dimension: str, value: str) -> Forgotten:
        """Forgets a value from the site's figures and raw events (analytics/store/sqlite_forget.py), in one
        transaction; the value itself goes once nothing refers to it. Says where else the site stores it."""
        try:
            async with _transaction(self.admin):
                rows, raw, _ = await sqlite_forget.forget(self.admin, site.id, dimension, value)
                values = (await self.admin.execute(*UNUSED_VALUES)).rowcount
                remains = await sqlite_forget.remains(self.admin, site.id, value)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot forget {dimension} = {value!r}: {exc}") from None
        self._deletes += 1
        also = sqlite_forget.also_forgotten(dimension)
        return Forgotten(dimension, value, rows, raw, values, also, tuple(remains))

    async def add_api_key(
        self, name: str, key_hash: bytes, prefix: str, site_ids: Sequence[int], now_ms: int
    ) -> ApiKey:
        try:
            cur = await self.admin.execute(
                "INSERT INTO api_keys (name, key_hash, prefix, site_ids, created_at) VALUES (?, ?, ?, ?, ?)",
                (name, key_hash, prefix, json.dumps(list(site_ids)), now_ms),
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot create the API key: {exc}") from None
        assert cur.lastrowid is not None
        return ApiKey(cur.lastrowid, name, prefix, tuple(site_ids), now_ms, None)

    async def _api_keys(self, where: str, args: tuple[object, ...]) -> list[ApiKey]:
        sql = f"SELECT id, name, prefix, site_ids, created_at, revoked_at FROM api_keys {where} ORDER BY id"  # noqa: S608
        try:
            async with self.admin.execute(sql, args) as cur:
                rows = await cur.fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read API keys: {exc}") from None
        return [
            ApiKey(
                int(r[0]),
                str(r[1]),
                str(r[2]),
                tuple(json.loads(str(r[3]))),
                int(r[4]),
                None if r[5] is None else int(r[5]),
            )
            for r in rows
        ]

    async def find_api_key(self, key_hash: bytes) -> ApiKey | None:
        found = await self._api_keys("WHERE key_hash = ?", (key_hash,))
        return found[0] if found else None

    async def list_api_keys(self) -> list[ApiKey]:
        return await self._api_keys("", ())

    async def revoke_api_key(self, key_id: int, now_ms: int) -> bool:
        return bool(
            await self._change(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now_ms, key_id), "API key"
            )
        )

    async def _dimension_id(self, name: str) -> int | None:
        if not name or name in DIMENSIONS:
            return DIMENSIONS.get(name, 0)
        async with self.admin.execute(
            "SELECT id FROM dim_values WHERE dim = ? AND value = ?", (PROP_KEYS, name.removeprefix("props:"))
        ) as cur:
            key = await cur.fetchone()
        return None if key is None else PROPS_BASE + int(key[0])

    async def _value_id(self, dim: int, value: str) -> int | None:
        async with self.admin.execute("SELECT id FROM dim_values WHERE dim = ? AND value = ?", (dim, value)) as cur:
            found = await cur.fetchone()
        return None if found is None else int(found[0])

    async def sum_aggregates(
        self,
        site_id: int,
        dimension: str,
        ranges: Sequence[tuple[int, int, int]],
        by_bucket: bool = False,
        filter: tuple[str, str] | None = None,
    ) -> dict[tuple[int, str], tuple[int, ...]]:
        """Sums of the rows of one dimension ("" = totals), unfiltered or under one (dimension, value) filter,
        over (period, first bucket, last bucket) ranges, by value (and by bucket when asked); keys are
        (bucket or 0, value). Filtered breakdowns are read from agg_days (by day) and agg_months, transposed
        when rollup.transposed says so."""
        if not ranges:
            return {}
        dim = await self._dimension_id(dimension)
        if dim is None:
            return {}
        fdim = fval = 0
        if filter is not None:
            found = await self._dimension_id(filter[0])
            value = None if found is None else await self._value_id(found, filter[1])
            if found is None or value is None:
                return {}
            fdim, fval = found, value
        bucket = "a.bucket" if by_bucket else "0"
        counters = "a.visitors, a.visits, a.pageviews, a.events, a.bounces, a.duration"
        parts: list[str] = []
        args: list[object] = []
        flip = filter is not None and transposed(filter[0], dimension)
        for period, first, last in ranges:
            if not (fdim and dim):  # totals, unfiltered rows, filtered totals: one index range each
                parts.append(
                    f"SELECT {bucket} AS b, a.val AS val, {counters} FROM agg a WHERE a.site_id = ? "  # noqa: S608
                    "AND a.period = ? AND a.fdim = ? AND a.fval = ? AND a.dim = ? AND a.bucket BETWEEN ? AND ?"
                )
                args += [site_id, period, fdim, fval, dim, first, last]
                continue
            if flip:  # the rows of (breakdown value, filter value) pairs: one range per breakdown value
                select = f"SELECT {bucket} AS b, a.fval AS val, {counters}"
                match = "a.fdim = ? AND a.fval IN (SELECT id FROM dim_values WHERE dim = ?) AND a.dim = ? AND a.val = ?"
                match_args = [dim, dim, fdim, fval]
            else:
                select = f"SELECT {bucket} AS b, a.val AS val, {counters}"
                match = "a.fdim = ? AND a.fval = ? AND a.dim = ?"
                match_args = [fdim, fval, dim]
            if period == DAY:  # recent days: one index range per day
                days = list(range(first, last + 1))
                parts.append(
                    f"{select} FROM agg_days a WHERE a.site_id = ? AND a.period = ? "
                    f"AND a.bucket IN ({', '.join('?' * len(days))}) AND {match}"
                )
                args += [site_id, DAY, *days, *match_args]
            else:
                parts.append(f"{select} FROM agg_months a WHERE a.site_id = ? AND {match} AND a.bucket BETWEEN ? AND ?")
                args += [site_id, *match_args, first, last]
        group = "s.b, s.val" if by_bucket else "s.val"  # not by a constant: rows come in value order, no sorting
        sql = (  # summed first, then each distinct value's text looked up once
            "SELECT g.b, COALESCE(v.value, ''), g.visitors, g.visits, g.pageviews, g.events, g.bounces, g.duration "  # noqa: S608
            "FROM (SELECT s.b AS b, s.val AS val, SUM(s.visitors) AS visitors, SUM(s.visits) AS visits, "
            "SUM(s.pageviews) AS pageviews, SUM(s.events) AS events, SUM(s.bounces) AS bounces, "
            f"SUM(s.duration) AS duration FROM ({' UNION ALL '.join(parts)}) s GROUP BY {group}) g "
            "LEFT JOIN dim_values v ON v.id = g.val"
        )
        rows = await self._bounded_read(sql, args)
        return {(r[0], r[1]): tuple(r[2:]) for r in rows}  # SQLite returns the sums as ints already

    async def _bounded_read(self, sql: str, args: Sequence[object]) -> list[sqlite3.Row]:
        """The rows of one read, interrupted (TooSlow) once it has run `read_seconds`: SQLite calls the progress
        handler every few thousand steps of the statement, and a true answer stops it."""
        if self._reader is None:
            raise StoreError("the store is not open")
        reader = self._reader
        async with self._reader_lock:  # one read at a time on this connection: the deadline is its own
            deadline = time.monotonic() + self.read_seconds
            try:
                # Queued on the connection's thread just before the statement, so it times this statement only.
                await reader.set_progress_handler(lambda: time.monotonic() > deadline, self.progress_steps)
                async with reader.execute(sql, args) as cur:
                    return list(await cur.fetchall())
            except sqlite3.OperationalError as exc:
                if "interrupted" in str(exc):
                    raise TooSlow(f"reading the aggregates took longer than {self.read_seconds:g} seconds") from None
                raise StoreError(f"cannot read aggregates: {exc}") from None
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read aggregates: {exc}") from None

    def reader_path(self) -> str | None:
        return str(self.path.resolve())

    async def backup(self, folder: Path) -> list[Path]:
        """The copy runs in a thread, and asks this store's connection for the oldest salt's day when its
        snapshot has begun (analytics/store/sqlite_backup.py): the salts' file is opened by nothing else."""
        loop = asyncio.get_running_loop()

        def oldest_salt() -> date | None:
            days = asyncio.run_coroutine_threadsafe(self.salt_days(), loop).result()
            return days[0] if days else None

        return await asyncio.to_thread(
            sqlite_backup.backup, self.path, self.aggregates_path, folder, self._busy_timeout_ms, oldest_salt
        )

    async def property_keys(self, site_id: int, since_ms: int) -> list[str]:
        """The custom property keys the site's events have used: in its aggregates and its raw events since the
        instant (those of days not rolled up yet)."""
        try:
            async with self.admin.execute(
                "SELECT v.value FROM dim_values v WHERE v.dim = ? AND v.id + ? IN (SELECT DISTINCT dim FROM agg "
                "WHERE site_id = ? AND period = ? AND fdim = 0 AND fval = 0 AND dim >= ?)",
                (PROP_KEYS, PROPS_BASE, site_id, MONTH, PROPS_BASE),
            ) as cur:
                keys = {str(r[0]) for r in await cur.fetchall()}
            async with self.admin.execute(
                "SELECT DISTINCT props FROM events WHERE site_id = ? AND ts >= ? AND props IS NOT NULL LIMIT 1000",
                (site_id, since_ms),
            ) as cur:
                for (props,) in await cur.fetchall():
                    keys.update(json.loads(str(props)))
        except (sqlite3.Error, ValueError) as exc:
            raise StoreError(f"cannot read the property keys: {exc}") from None
        return sorted(keys)

    async def recent_visitors(self, site_id: int, since_ms: int) -> int:
        try:
            async with self.admin.execute(
                "SELECT COUNT(DISTINCT visitor_id) FROM events WHERE site_id = ? AND ts >= ?", (site_id, since_ms)
            ) as cur:
                found = await cur.fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot count recent visitors: {exc}") from None
        return int(found[0]) if found else 0

    async def visitors_last_seen(
        self, since_ms: int, until_ms: int, seen_between: tuple[int, int] | None = None
    ) -> list[tuple[int, int, int]]:
        # Sites through `IN (SELECT id FROM sites)`: one range of the (site_id, ts) index each, not a table scan.
        sql = (
            "SELECT site_id, visitor_id, MAX(ts) FROM events WHERE site_id IN (SELECT id FROM sites) "
            "AND ts >= ? AND ts < ? AND name <> ?"
        )
        args: list[object] = [since_ms, until_ms, ENGAGEMENT]
        if seen_between is not None:
            sql += (
                " AND (site_id, visitor_id) IN (SELECT site_id, visitor_id FROM events "
                "WHERE site_id IN (SELECT id FROM sites) AND ts >= ? AND ts < ?)"
            )
            args += seen_between
        try:
            async with self.admin.execute(f"{sql} GROUP BY site_id, visitor_id", args) as cur:
                return [(int(r[0]), int(r[1]), int(r[2])) for r in await cur.fetchall()]
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the visitors of the last minutes: {exc}") from None

    async def acquire_lease(self, name: str, holder: str, now_ms: int, ttl_ms: int) -> bool:
        try:
            await self.admin.execute(
                "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
                "SET holder = excluded.holder, expires_at = excluded.expires_at "
                "WHERE leases.expires_at <= ? OR leases.holder = excluded.holder",
                (name, holder, now_ms + ttl_ms, now_ms),
            )
            async with self.admin.execute("SELECT holder FROM leases WHERE name = ?", (name,)) as cur:
                found = await cur.fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot take the {name} lease: {exc}") from None
        return found is not None and found[0] == holder

    async def release_lease(self, name: str, holder: str) -> None:
        await self._change("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder), "lease")

    async def count_events(self, site_id: int | None = None) -> int:
        sql, args = (
            ("SELECT COUNT(*) FROM events", ())
            if site_id is None
            else ("SELECT COUNT(*) FROM events WHERE site_id = ?", (site_id,))
        )
        try:
            async with self.admin.execute(sql, args) as cur:
                found = await cur.fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot count events: {exc}") from None
        return int(found[0]) if found else 0
