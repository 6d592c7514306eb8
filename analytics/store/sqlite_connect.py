"""Every SQLite connection the project opens is made here, with one set-up: the busy timeout, the journal mode,
deleted content overwritten (`secure_delete`, checked), a bounded WAL; and the checkpoint that empties a WAL once
raw events have been deleted.

SQLite's own default for secure_delete is off (some builds, Debian's among them, compile it on): a deleted salt or
raw event then stays in the free space of its page, or in a free page, readable with `strings`. On, SQLite
overwrites deleted content with zeros. In WAL mode (the events' and the aggregates' files) the page as it was
before the delete can still be in the WAL, though, until the WAL is checkpointed into the database file and
truncated: `empty_wal` does that, and the jobs that delete raw events call it right after (analytics/jobs.py,
analytics/app.py); a reader still inside the WAL holds it up.

The salts' file is the exception: it has a rollback journal (`journal_mode = DELETE`), not a WAL. A transaction
first copies the pages it changes into the journal, then writes them in the database file, and deleting the
journal is its commit: once the DELETE of a salt has returned, its page, zeroed, is the only copy of it there is,
and no reader anywhere can have kept another (analytics/store/sqlite.py, salts).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from analytics.errors import StoreError

WAL_AUTOCHECKPOINT_PAGES = 1000
"""SQLite's default, stated here: a commit that leaves 1000 pages (4 MB) in the WAL copies them into the database
file, and the next writer starts the WAL over from its first frame."""
JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024
"""When the WAL starts over, a file grown past this is cut back to it: 1000 frames of 4 KiB pages are 4.12 MB, so
it cuts only what a spike left (a rollup's transaction of hundreds of thousands of rows in the aggregates file, or
writes while a reader held the checkpoint back), which would otherwise keep old page images for good."""


class _NoStatements(logging.Filter):
    """aiosqlite logs, at DEBUG, every call it runs with its arguments: each statement with its parameters, i.e.
    salts and whole event rows. Those lines are dropped, whatever level its logger is set to."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_NO_STATEMENTS = _NoStatements()


def quiet_driver_log() -> None:
    """Installs the filter on aiosqlite's logger (once; the store calls it when it opens)."""
    logging.getLogger("aiosqlite").addFilter(_NO_STATEMENTS)


def connect(
    path: Path | str,
    busy_timeout_ms: int,
    synchronous: str | None = None,
    attach: Path | str | None = None,
    journal_mode: str = "WAL",
) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit: BEGIN IMMEDIATE) with the set-up above, for
    the file and, with `attach`, the aggregates file attached as `aggregates`. `synchronous`: None keeps SQLite's
    default (FULL). `journal_mode`: WAL, or DELETE for the salts' file (refused if SQLite keeps another: a file
    another connection holds in WAL mode stays in it)."""
    db = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None)
    try:
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        schemas = ["main"]
        if attach is not None:
            db.execute("ATTACH DATABASE ? AS aggregates", (str(attach),))
            schemas.append("aggregates")
        for schema in schemas:
            (mode,) = db.execute(f"PRAGMA {schema}.journal_mode = {journal_mode}").fetchone()
            if str(mode).upper() != journal_mode.upper():
                raise StoreError(f"SQLite keeps {path} in journal mode {mode}, not {journal_mode}")
            db.execute(f"PRAGMA {schema}.journal_size_limit = {JOURNAL_SIZE_LIMIT}")
            if synchronous is not None:
                db.execute(f"PRAGMA {schema}.synchronous = {synchronous.upper()}")
            db.execute(f"PRAGMA {schema}.secure_delete = ON")
            if db.execute(f"PRAGMA {schema}.secure_delete").fetchone() != (1,):
                raise StoreError(
                    f"SQLite {sqlite3.sqlite_version} does not turn secure_delete on for {path}: deleted salts and "
                    "raw events would stay readable in the file; use another build of SQLite"
                )
        db.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        db.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        db.close()
        raise
    return db


WIPE_WAIT_MS = 100
"""How long one try at emptying a WAL waits for readers to leave it. SQLite's TRUNCATE checkpoint holds the write
lock while it waits, so ingest's commits wait as long: with two open-day workers re-reading a 205,000-event day in
a loop, a try that waited the busy timeout (5 s) held every commit for 5 s and then failed. Short tries, repeated
(WIPE_TRIES, WIPE_PAUSE_S), find the moments when no reader is in the WAL, and hold ingest 0.1 s at most."""
WIPE_TRIES = 20
WIPE_PAUSE_S = 0.5


def empty_wal(path: Path | str, wait_ms: int = WIPE_WAIT_MS) -> bool:
    """Copies every page of the file's WAL into the file and truncates the WAL to zero bytes, on a connection of
    its own (the store's connections keep serving meanwhile); True once done. It waits, up to `wait_ms`, for the
    writer and for readers still reading from the WAL (another process's read transaction: an open-day worker's
    read, a rollup's, a backup's): False when one held it longer, and the caller tries again a little later."""
    db = connect(path, wait_ms)
    try:
        # A passive checkpoint first, which writers do not wait for: what is left to copy under the write lock is
        # then what was committed since (a first try after a 205,000-event day held it 0.6 s without).
        db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        db.close()
    return bool(busy == 0)
