"""What is deleted is gone: a destroyed salt and purged raw events are in no file the store wrote (database, WAL,
shared memory, backup), a backup taken during the day holds no salt and no raw event of that day, and no log
line at any level shows a salt, a visitor hash, an event or a shared link's token."""

from __future__ import annotations

import ast
import logging
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
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
    (salt,) = [bytes(r["salt"]) for r in await h.rows(f"SELECT salt FROM salts WHERE day = '{day}'")]
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
        assert found(data_files(h), {"salt": salt}), "the salt is on disk while it is in use"
        assert found(main_files(h), {"path": MARKER.encode()}), "and so are the events"

        # During the day, a backup holds neither the salt nor any raw event of the day.
        copies = await h.store.backup(tmp_path / "backup")
        assert found(copies, {**salt_needles(salt), **visitor_needles(ids), "path": MARKER.encode()}) == []

        # The salt is destroyed by its deadline (SALT_KEPT_AT_MOST after its day at the latest), and every copy of
        # its bytes with it: the page image from before the delete in the WAL too (SQLite keeps the WAL otherwise,
        # and only reuses it).
        clock.now = DAY + timedelta(days=1) + privacy.SALT_KEPT_AT_MOST + timedelta(seconds=1)
        await upkeep(h.services, clock())
        assert await h.rows("SELECT day FROM salts") == []
        assert found(data_files(h), salt_needles(salt)) == []
        assert main_files(h)[1].stat().st_size == 0  # the WAL is truncated
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
    copy = sqlite3.connect(copies[0])
    try:
        assert copy.execute("SELECT COUNT(*) FROM salts").fetchone() == (0,)
        assert copy.execute("SELECT COUNT(*) FROM events").fetchone() == (1004,)  # yesterday's only
        assert copy.execute("SELECT COUNT(*) FROM sites").fetchone() == (1,)
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        copy.close()
    assert found(copies, {**salt_needles(salt), **salt_needles(today_salt), **visitor_needles(today_ids)}) == []


async def test_a_reader_holding_the_wal_delays_the_wipe_which_the_next_upkeep_retries(
    config: Config, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    async with start(config, clock) as h:
        await h.add_site()
        salt, _ = await ingest_a_day(h)
        store = h.store
        assert isinstance(store, SQLiteStore)
        store.wipe_tries, store.wipe_pause_s = 3, 0.01
        reader = sqlite3.connect(store.path)  # another process's long read transaction, say
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM events").fetchone()
        clock.now = DAY + timedelta(days=1, hours=1)
        with caplog.at_level(logging.INFO, logger="analytics.store"):
            await upkeep(h.services, clock())
        assert await h.rows("SELECT day FROM salts") == []
        assert store.wipe_pending and store.wal_blocked == 1
        assert "the WAL of analytics.db is not emptied yet" in caplog.text
        reader.rollback()
        reader.close()

        clock.advance(minutes=1)
        await upkeep(h.services, clock())
        assert not store.wipe_pending
        assert found(data_files(h), salt_needles(salt)) == []


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
    finally:
        await store.close()
    db = connect(tmp_path / "a.db", 1000, attach=store.aggregates_path)  # the workers', the rollup's, the backup's
    try:
        assert [db.execute(f"PRAGMA {s}.secure_delete").fetchone() for s in ("main", "aggregates")] == [(1,), (1,)]
    finally:
        db.close()


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
