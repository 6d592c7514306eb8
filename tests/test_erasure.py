"""What is deleted is gone: a destroyed salt and purged raw events are in no file the store wrote (database, WAL,
shared memory, journal, backup), even while other processes read the events and the aggregates, and a database
of an earlier version keeps no salt in its events' file once migrated; a backup taken during the day holds no
salt and no raw event of that day, and no log line at any level shows a salt, a visitor hash, an event or a
shared link's token."""

from __future__ import annotations

import ast
import contextlib
import logging
import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from analytics import privacy
from analytics.app import AccessLog, upkeep
from analytics.config import Config
from analytics.errors import StoreError
from analytics.events import Event
from analytics.jobs import run_jobs
from analytics.store import SQLiteStore
from analytics.store.base import load_migrations
from analytics.store.dialect import SQLITE
from analytics.store.sqlite_connect import JOURNAL_SIZE_LIMIT, WAL_AUTOCHECKPOINT_PAGES, connect
from tests.conftest import Clock, Harness, pageview, start

ANALYTICS = Path(__file__).parent.parent / "analytics"
DAY = datetime(2026, 3, 14, tzinfo=UTC)
IPS = ["81.2.69.142", "175.16.199.37", "2a02:ec0:dead:beef::7", "193.51.24.77"]
MARKER = "gone-q8v2x"


def sqlite_int(value: int) -> bytes:
    """An integer as SQLite's record format stores it (big-endian, in the fewest of 1, 2, 3, 4, 6 or 8 bytes)."""
    for size in (1, 2, 3, 4, 6, 8):
        if -(1 << (8 * size - 1)) <= value < 1 << (8 * size - 1):
            return value.to_bytes(size, "big", signed=True)
    raise ValueError(value)


def read(path: Path) -> bytes:
    """A file's bytes, read by another process: closing a descriptor of a database file releases every POSIX lock
    this process holds on it (the store's connections' too), and SQLite then fails with SQLITE_IOERR_SHORT_READ."""
    return subprocess.run(["cat", str(path)], capture_output=True, check=False).stdout


def found(files: list[Path], needles: dict[str, bytes]) -> list[str]:
    hits = []
    for path in files:
        content = read(path)
        hits += [f"{name} in {path.name}" for name, needle in needles.items() if needle in content]
    return hits


def data_files(h: Harness) -> list[Path]:
    store = h.store
    assert isinstance(store, SQLiteStore)
    return sorted(p for p in store.path.parent.iterdir() if p.is_file())


def main_files(h: Harness) -> list[Path]:
    """The events' file and its WAL and shared memory (the aggregates' file holds paths by design)."""
    store = h.store
    assert isinstance(store, SQLiteStore)
    return [store.path, store.path.with_name(store.path.name + "-wal"), store.path.with_name(store.path.name + "-shm")]


READER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
for i, path in enumerate(sys.argv[2:]):
    db.execute(f"ATTACH DATABASE ? AS other{i}", (path,))
db.execute("BEGIN")
for schema in ["main"] + [f"other{i}" for i in range(len(sys.argv) - 2)]:
    db.execute(f"SELECT COUNT(*) FROM {schema}.sqlite_master").fetchone()
print("reading", flush=True)
sys.stdin.read()
"""


@contextlib.contextmanager
def reading(*files: Path) -> Iterator[None]:
    """Another process inside one read transaction on the files until the end of the block: an open-day worker's
    read of the events' file, a backup's, a dashboard's, an `sqlite3` shell left inside BEGIN."""
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, *map(str, files)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline() == "reading\n"  # inside its read transactions
        yield
    finally:
        reader.communicate()


async def ingest_a_day(h: Harness, visitors: int = 4) -> tuple[bytes, list[int]]:
    """Events of a few visitors through the endpoint (their hashes under the day's salt), then 1000 more stored
    directly, so that the purge frees whole pages; returns the day's salt and the day's visitor hashes."""
    for i, ip in enumerate(IPS[:visitors]):
        response = await h.send(pageview(url=f"https://example.com/{MARKER}/{i}"), headers={"X-Forwarded-For": ip})
        assert response.status_code == 202
    day = h.clock().astimezone(UTC).date()
    start_ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    rows = await h.rows(f"SELECT * FROM events WHERE ts >= {start_ms} ORDER BY ts")
    template = Event(*rows[0].values())
    await h.store.insert_events(
        [template._replace(ts=template.ts + i, visitor_id=i % 50, pathname=f"/{MARKER}/{i % 9}") for i in range(1000)]
    )
    salt = (await h.salts())[day.isoformat()]
    return salt, [int(r["visitor_id"]) for r in rows]


def salt_needles(salt: bytes) -> dict[str, bytes]:
    return {"salt": salt, "salt (hex)": salt.hex().encode(), "half the salt": salt[:16]}


def visitor_needles(ids: list[int]) -> dict[str, bytes]:
    return {f"visitor {v}": sqlite_int(v) for v in ids}


async def test_a_destroyed_salt_is_in_no_file_and_purged_events_in_no_free_page(
    config: Config, clock: Clock, tmp_path: Path
) -> None:
    async with start(config, clock) as h:
        await h.add_site()
        salt, ids = await ingest_a_day(h)
        # The salt is on disk while it is in use, in its own file only; and so are the events, in theirs.
        assert found(data_files(h), {"salt": salt}) == ["salt in analytics-salts.db"]
        assert found(main_files(h), {"path": MARKER.encode()})

        # During the day, a backup holds neither the salt nor any raw event of the day.
        copies = await h.store.backup(tmp_path / "backup")
        assert found(copies, {**salt_needles(salt), **visitor_needles(ids), "path": MARKER.encode()}) == []

        # The salt is destroyed by its deadline (SALT_KEPT_AT_MOST after its day at the latest), and every copy of
        # its bytes with it: its file's journal, which held the page as it was before the delete, went with the
        # commit, and nothing is left to wipe.
        clock.now = DAY + timedelta(days=1) + privacy.SALT_KEPT_AT_MOST + timedelta(seconds=1)
        await upkeep(h.services, clock())
        assert await h.salts() == {}
        assert found(data_files(h), salt_needles(salt)) == []
        assert not h.store.wipe_pending

        # The rollup, then the purge of the raw events: none of them is left in a free page, nor in the WAL.
        clock.now = DAY + timedelta(days=2, hours=16)
        _, cleaned = await run_jobs(h.store, clock(), "test", 48, 25, min_visitors=1)
        assert cleaned is not None and cleaned.raw_events == 1000 + len(ids) and cleaned.emptied
        assert (await h.rows("PRAGMA freelist_count"))[0]["freelist_count"] > 0  # the deleted rows' pages
        assert found(data_files(h), visitor_needles(ids)) == []
        assert found(main_files(h), {"path": MARKER.encode()}) == []
        copies = await h.store.backup(tmp_path / "backup")
        assert found(copies, {**salt_needles(salt), **visitor_needles(ids)}) == []


async def test_a_backup_keeps_the_raw_events_of_days_whose_salt_is_gone(
    config: Config, clock: Clock, tmp_path: Path
) -> None:
    async with start(config, clock) as h:
        await h.add_site()
        salt, _ = await ingest_a_day(h)
        clock.now = DAY + timedelta(days=1, hours=9)  # the next day: yesterday's salt is gone, today's is made
        await upkeep(h.services, clock())
        today_salt, today_ids = await ingest_a_day(h, visitors=2)
        copies = await h.store.backup(tmp_path / "backup")
    assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == ["analytics-aggregates.db", "analytics.db"]
    copy = sqlite3.connect(copies[0])
    try:
        assert copy.execute("SELECT name FROM sqlite_master WHERE name LIKE '%salt%'").fetchall() == []
        assert copy.execute("SELECT COUNT(*) FROM events").fetchone() == (1004,)  # yesterday's only
        assert copy.execute("SELECT COUNT(*) FROM sites").fetchone() == (1,)
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        copy.close()
    assert found(copies, {**salt_needles(salt), **salt_needles(today_salt), **visitor_needles(today_ids)}) == []


async def test_a_reader_holding_the_wal_delays_the_wipe_of_purged_events_which_the_next_upkeep_retries(
    config: Config, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    async with start(config, clock) as h:
        await h.add_site()
        _, ids = await ingest_a_day(h)
        store = h.store
        assert isinstance(store, SQLiteStore)
        store.wipe_tries, store.wipe_pause_s = 3, 0.01
        clock.now = DAY + timedelta(days=2, hours=16)
        with reading(store.path, store.aggregates_path), caplog.at_level(logging.INFO, logger="analytics.store"):
            _, cleaned = await run_jobs(h.store, clock(), "test", 48, 25, min_visitors=1)
            assert cleaned is not None and cleaned.raw_events == 1000 + len(ids) and not cleaned.emptied
            assert store.wipe_pending and store.wal_blocked == 1
            assert "the WAL of analytics.db is not emptied yet" in caplog.text
            assert found(main_files(h), {"path": MARKER.encode()}), "the events as they were, in the WAL"

        clock.advance(minutes=1)
        await upkeep(h.services, clock())
        assert not store.wipe_pending
        assert found(data_files(h), visitor_needles(ids)) == []
        assert found(main_files(h), {"path": MARKER.encode()}) == []


async def test_the_metrics_show_the_wipe(config: Config, clock: Clock) -> None:
    config = config.replace("server", metrics_networks=("127.0.0.0/8",))
    async with start(config, clock) as h:
        text = (await h.client.get("/metrics")).text
    assert "analytics_store_wal_blocked_total 0" in text
    assert "analytics_store_wipe_pending 0" in text  # the start wiped the files


async def test_every_connection_overwrites_deleted_content_and_bounds_its_wal(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    await store.open()
    try:
        await store.migrate()
        for conn in (store.admin, store._writer, store._reader):
            assert conn is not None
            async with conn.execute("PRAGMA database_list") as cur:
                schemas = [r[1] for r in await cur.fetchall()]
            assert "main" in schemas
            for schema in schemas:
                for pragma, expected in (("secure_delete", 1), ("journal_size_limit", JOURNAL_SIZE_LIMIT)):
                    if schema == "temp" and pragma == "journal_size_limit":
                        continue  # a migration's temporary tables: no WAL (their deletes are secure all the same)
                    async with conn.execute(f"PRAGMA {schema}.{pragma}") as cur:
                        assert await cur.fetchone() == (expected,), (schema, pragma)
            async with conn.execute("PRAGMA wal_autocheckpoint") as cur:
                assert await cur.fetchone() == (WAL_AUTOCHECKPOINT_PAGES,)
            assert str(store.salts_path) not in [
                r[2] for r in await (await conn.execute("PRAGMA database_list")).fetchall()
            ]
        # The salts' file: a rollback journal, deleted at each commit and the deletion synced (EXTRA).
        for pragma, expected in (("secure_delete", 1), ("journal_mode", "delete"), ("synchronous", 3)):
            async with store.salts_db.execute(f"PRAGMA {pragma}") as cur:
                assert await cur.fetchone() == (expected,), pragma
    finally:
        await store.close()
    db = connect(tmp_path / "a.db", 1000, attach=store.aggregates_path)  # the workers', the rollup's, the backup's
    try:
        assert [db.execute(f"PRAGMA {s}.secure_delete").fetchone() for s in ("main", "aggregates")] == [(1,), (1,)]
    finally:
        db.close()


def open_files() -> set[Path]:
    """The files this process has open."""
    names = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the descriptor of the listing itself, closed by now
            names.add(Path(os.readlink(f"/proc/self/fd/{fd}")))
    return names


async def test_a_workers_store_does_not_open_the_salts_file(tmp_path: Path) -> None:
    """What an open-day worker opens (analytics/answers.py): the events and the aggregates, never the salts."""
    store = SQLiteStore(tmp_path / "a.db")
    await store.open()
    await store.migrate()
    assert store.salts_path.resolve() in open_files()
    await store.close()
    worker = SQLiteStore(tmp_path / "a.db")
    await worker.open_for_reading()
    try:
        assert store.path.resolve() in open_files() and store.salts_path.resolve() not in open_files()
    finally:
        await worker.close()


def test_a_sqlite_that_will_not_overwrite_deleted_content_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This machine's SQLite turns it on by default; SQLite's own default is off, and a build could refuse."""

    class Stubborn(sqlite3.Connection):
        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            return super().execute("PRAGMA secure_delete = OFF" if sql.endswith("secure_delete = ON") else sql, *args)

    real = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: real(*a, **k, factory=Stubborn))
    with pytest.raises(StoreError, match="does not turn secure_delete on"):
        connect(tmp_path / "a.db", 1000)


async def test_a_salts_file_another_connection_holds_in_wal_mode_is_refused(tmp_path: Path) -> None:
    """In WAL mode the salts' file would keep a deleted salt's page in its WAL: SQLite cannot switch a file back
    while another connection has it open that way, and the store refuses to start, naming the file; alone, it
    switches it back."""
    store = SQLiteStore(tmp_path / "a.db")
    other = sqlite3.connect(store.salts_path)
    other.execute("PRAGMA journal_mode = WAL")
    other.execute("CREATE TABLE t (x)")
    try:
        with pytest.raises(StoreError, match=r"cannot open the SQLite database .*/a-salts\.db: database is locked"):
            await store.open()
    finally:
        other.close()
    await store.open()
    try:
        async with store.salts_db.execute("PRAGMA journal_mode") as cur:
            assert await cur.fetchone() == ("delete",)
    finally:
        await store.close()


def test_a_sqlite_that_will_not_take_the_journal_mode_asked_for_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite answers `PRAGMA journal_mode = X` with the mode it kept, which may be another."""

    class Stubborn(sqlite3.Connection):
        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            return super().execute("PRAGMA journal_mode" if sql.endswith("journal_mode = DELETE") else sql, *args)

    db = sqlite3.connect(tmp_path / "s.db")
    db.execute("PRAGMA journal_mode = WAL")
    db.close()
    real = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: real(*a, **k, factory=Stubborn))
    with pytest.raises(StoreError, match=r"keeps .*/s\.db in journal mode wal, not DELETE"):
        connect(tmp_path / "s.db", 1000, journal_mode="DELETE")


def test_no_module_opens_sqlite_but_through_the_one_set_up() -> None:
    """sqlite_connect.connect is the only door: a connection opened elsewhere would miss secure_delete."""
    opened = set()
    for path in ANALYTICS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "connect":
                owner = node.func.value
                if isinstance(owner, ast.Name) and owner.id in ("sqlite3", "aiosqlite"):
                    opened.add(str(path.relative_to(ANALYTICS)))
    assert opened == {"store/sqlite_connect.py"}


class Capture(logging.Handler):
    """The server's log lines (the test's own HTTP client, httpx, logs the URLs it asks for: not the server's)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(lambda record: not record.name.startswith(("httpx", "httpcore")))
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def every_logger_at_debug() -> Iterator[Capture]:
    """Every logger, named or not yet created, at DEBUG into one handler (uvicorn's too: it runs in
    test_server.py, where the real server's log is scanned the same way)."""
    capture = Capture()
    root = logging.getLogger()
    names = ["", "aiosqlite", "analytics", "uvicorn", "uvicorn.error", "uvicorn.access", "asyncio", "httpx"]
    names += list(logging.Logger.manager.loggerDict)
    saved = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    root.addHandler(capture)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def secret_texts(salt: bytes, ids: list[int], paths: list[str]) -> dict[str, str]:
    texts = {"salt (hex)": salt.hex(), "salt (repr)": repr(salt)[2:-1][:40]}
    for v in ids:
        texts[f"visitor {v}"] = str(v)
        texts[f"visitor {v} (hex)"] = f"{v & (1 << 64) - 1:016x}"
        texts[f"visitor {v} (signed hex)"] = hex(v)
    texts.update({f"path {p}": p for p in paths})
    return texts


async def test_no_log_line_at_debug_shows_a_salt_a_visitor_hash_an_event_or_a_token(
    config: Config, clock: Clock, tmp_path: Path, every_logger_at_debug: Capture
) -> None:
    async with start(config, clock) as h:
        logged = httpx.AsyncClient(  # what server.access_log = true serves
            transport=httpx.ASGITransport(app=AccessLog(h.app), client=("127.0.0.1", 40000)),
            base_url="http://analytics.test",
        )
        h = replace(h, client=logged)
        await h.add_site()
        salt, ids = await ingest_a_day(h)
        assert (await logged.get("/share/Hq3tokenZ9secret")).status_code == 404
        assert (await logged.get("/share/Hq3tokenZ9secret/api/v1/stats/realtime/visitors")).status_code == 404
        await logged.get("/api/v1/stats/realtime/visitors?site_id=example.com&key=Kq7apiKeyInQuery")
        await h.store.backup(tmp_path / "backup")
        clock.now = DAY + timedelta(days=1, hours=1)
        await upkeep(h.services, clock())  # the salt's destruction
        clock.now = DAY + timedelta(days=2, hours=16)
        await run_jobs(h.store, clock(), "test", 48, 25, min_visitors=1)  # rollup and purge
        await logged.aclose()
    text = "\n".join(every_logger_at_debug.lines)
    assert "POST /api/event 202" in text and "GET /share/… 404" in text  # the access log was on
    assert "GET /share/…/api/v1/stats/realtime/visitors 404" in text
    assert " DEBUG " in text and logging.getLogger("aiosqlite").isEnabledFor(logging.DEBUG)  # the level was DEBUG
    secrets = secret_texts(salt, ids, [f"/{MARKER}/{i}" for i in range(4)] + ["Hq3tokenZ9secret", "Kq7apiKeyInQuery"])
    raw = text.encode("utf-8", "surrogateescape")
    leaked = [name for name, needle in secrets.items() if needle in text]
    assert leaked == [] and salt not in raw and salt[:16] not in raw


TOKEN = "kX9_2bQm-Lr7TzV0aN4pYw8sJc3HdE6uGf1iO5tRqWe"  # as accounts.new_token() makes them: 43 base64url characters
WORDLIKE = "s" * 40  # a token no shape tells from a word: known by the segment before it
# Spellings of a shared link's path a proxy or a browser could bring to /share/<token> (or that are one already),
# as the server receives them (uvicorn decodes percent escapes and resolves nothing): the log writes none's token.
SHARE_PATHS = [
    "/share/{t}",
    "/share/{t}/",
    "/share/{t}/api/v2/query",
    "/share/{t}/api/v1/stats/realtime/visitors",
    "/share//{t}",
    "/SHARE/{t}",
    "/Share/{t}",
    "/./share/{t}",
    "/x/../share/{t}",
    "/api/../share/{t}",
    "/shares/{t}",
    "/share/./{t}",
    "/share/../{t}",
    "/share\\{t}",
    "/share;v=1/{t}",
]
OTHER_PATHS = ["/{t}", "/x/{t}/y", "/api/v2/query/{t}", "/share{t}"]  # a token anywhere else: by its shape
KEPT_PATHS = [
    "/sites/example.com/settings",
    "/sites/my-very-long-domain-name.example/settings/link-create",
    "/api/v1/stats/realtime/visitors",
    "/tracker.0123456789ab.js",
    "/assets/dashboard.js",
]


async def _logged(path: str, caplog: pytest.LogCaptureFixture) -> str:
    async def not_found(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def nothing() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def ignore(message: Any) -> None:
        pass

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="analytics.access"):
        await AccessLog(not_found)({"type": "http", "method": "GET", "path": path}, nothing, ignore)
    [line] = [r.getMessage() for r in caplog.records if r.name == "analytics.access"]
    return line


@pytest.mark.parametrize(
    "path",
    [p.format(t=t) for p in SHARE_PATHS for t in (TOKEN, WORDLIKE)] + [p.format(t=TOKEN) for p in OTHER_PATHS],
)
async def test_the_access_log_writes_no_shared_link_token_whatever_the_spelling(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    line = await _logged(path, caplog)
    assert line.startswith("GET /") and " 404 " in line and "…" in line
    assert TOKEN[:12] not in line and TOKEN[-12:] not in line and WORDLIKE[:12] not in line


@pytest.mark.parametrize("path", KEPT_PATHS)
async def test_the_access_log_writes_other_paths_as_they_are(path: str, caplog: pytest.LogCaptureFixture) -> None:
    assert (await _logged(path, caplog)).startswith(f"GET {path} 404 ")


async def test_a_destroyed_salt_is_in_no_file_while_readers_hold_the_events_and_aggregates_files(
    config: Config, clock: Clock, tmp_path: Path
) -> None:
    """No reader of raw events or aggregates can keep a destroyed salt on disk: the salts' file is read by the
    server's main process alone, and it keeps no copy of a deleted page."""
    async with start(config, clock) as h:
        store = h.store
        assert isinstance(store, SQLiteStore)
        with reading(store.path, store.aggregates_path):  # from before the salt is made to after it is destroyed
            await h.add_site()
            salt, _ = await ingest_a_day(h)
            assert found(data_files(h), {"salt": salt}), "the salt is on disk while it is in use"
            copies = await h.store.backup(tmp_path / "backup")
            clock.now = DAY + timedelta(days=1) + privacy.SALT_KEPT_AT_MOST + timedelta(seconds=1)
            await upkeep(h.services, clock())
            assert await h.salts() == {}
            assert found([*data_files(h), *copies], salt_needles(salt)) == []


async def test_a_process_reading_the_salts_file_delays_the_salts_destruction_and_leaves_nothing_behind(
    config: Config, clock: Clock
) -> None:
    """None of the server's readers opens the salts' file; one that did (an `sqlite3` shell left inside BEGIN)
    would make the DELETE wait and fail: the salt is then still in use, and goes at the next upkeep."""
    config = config.replace("database", sqlite_busy_timeout_ms=200)
    async with start(config, clock) as h:
        await h.add_site()
        salt, _ = await ingest_a_day(h)
        store = h.store
        assert isinstance(store, SQLiteStore)
        clock.now = DAY + timedelta(days=1, hours=1)
        with reading(store.salts_path), pytest.raises(StoreError, match="cannot delete old salts"):
            await upkeep(h.services, clock())
        assert await h.salts() == {"2026-03-14": salt}  # not deleted, still in use
        assert store.path.with_name("analytics-salts.db-journal").exists() is False

        clock.advance(minutes=1)
        await upkeep(h.services, clock())
        assert await h.salts() == {}
        assert found(data_files(h), salt_needles(salt)) == []


def earlier_version(path: Path, salts: dict[date, bytes], deleted: list[bytes]) -> None:
    """A database as the versions before the salts' file left it: every table in the one file, in WAL mode, with
    `salts` in use and `deleted` ones deleted by a SQLite that did not overwrite deleted content (secure_delete
    off, SQLite's own default), so that they lie in the free space of pages and in free pages."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA secure_delete = OFF")
    db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT)")
    for migration in load_migrations():
        for statement in SQLITE.migration(migration.sql):
            db.execute(statement)
        db.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (migration.version, migration.name))
    db.execute(
        "INSERT INTO sites (domain, allowed_hostnames, excluded_ips, excluded_paths, created_at) VALUES "
        "('example.com', '[]', '[]', '[]', 0)"
    )
    old = [(f"2025-{i // 28 + 1:02}-{i % 28 + 1:02}", salt, 0) for i, salt in enumerate(deleted)]
    db.executemany("INSERT INTO salts (day, salt, created_at) VALUES (?, ?, ?)", old)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the pages that hold them, in the database file
    db.execute("DELETE FROM salts")
    db.executemany(
        "INSERT INTO salts (day, salt, created_at) VALUES (?, ?, 0)", [(d.isoformat(), s) for d, s in salts.items()]
    )
    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
    db.close()


async def test_an_earlier_versions_database_moves_its_salts_out_and_keeps_no_salt_byte(tmp_path: Path) -> None:
    """The salts in use move to the salts' file unchanged (the day's visitors keep their hashes); in the events'
    file neither they nor any salt deleted long ago are left, in the database, its free pages, WAL or shared
    memory."""
    rng = random.Random(7)
    salts = {date(2026, 3, 13): rng.randbytes(32), date(2026, 3, 14): rng.randbytes(32)}
    deleted = [rng.randbytes(32) for _ in range(300)]  # a year of days, deleted day after day
    path = tmp_path / "analytics.db"
    earlier_version(path, salts, deleted)
    events_files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    needles = {f"salt {i}": salt for i, salt in enumerate([*salts.values(), *deleted])}
    assert len(found(events_files, needles)) > 100, "the earlier version left salt bytes in the file"

    store = SQLiteStore(path)
    await store.open()
    try:
        await store.migrate()
        assert found(events_files, needles) == []
        assert await store.salt_days() == list(salts)
        for day, salt in salts.items():
            assert await store.salt(day, b"another".ljust(32), 0) == salt
        assert [s.domain for s in await store.list_sites()] == ["example.com"]
        assert await store.migrate() == [] and await store.schema_is_current()
    finally:
        await store.close()
    assert found(events_files, needles) == []
    assert sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE name = 'salts'").fetchall() == []
