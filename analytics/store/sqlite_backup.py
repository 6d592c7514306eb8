"""Online backup of the SQLite store: a consistent copy of each of its two files, taken while the server runs,
that holds no salt, and no raw event that a salt still in existence could link to an address.

A copy of the events' file made during the day would otherwise hold today's salt next to today's visitor hashes,
and whoever has it could recompute a hash from a guessed address and User-Agent. So that file is not copied
page by page: its tables are copied row by row into a new file, under one read transaction (a snapshot: in WAL
mode it never blocks the writer, and ingest goes on), leaving out the salts and the raw events of their days
(UTC days: today's, and yesterday's while its salt is kept after midnight). The salt is never written into the
copy, not even for a moment, so neither a crash halfway nor the file system can leave it behind. The aggregates'
file holds neither salts nor visitor hashes: it is copied whole with `VACUUM INTO` (compact: no free page, so
nothing the source once deleted).

Each copy is written under a temporary name and renamed at the end. The events' file is copied before the
aggregates' file, so that a day rolled up between the two copies is in both (the rollup is idempotent), never in
neither.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from analytics.errors import StoreError
from analytics.store.sqlite_connect import connect

_CREATE = re.compile(r"^CREATE (UNIQUE )?(TABLE|INDEX) (IF NOT EXISTS )?")


def copy_file(source: Path, target: Path, busy_timeout_ms: int, without_salts: bool) -> None:
    """Copies one database to `target`, through a temporary file renamed at the end: a backup interrupted
    halfway never leaves a truncated copy under the final name."""
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        db = connect(source, busy_timeout_ms)
        try:
            if without_salts:
                copy_without_salts(db, partial)
            else:
                db.execute("VACUUM INTO ?", (str(partial),))
        finally:
            db.close()
        os.replace(partial, target)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot back up {source} to {target}: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)


def copy_without_salts(db: sqlite3.Connection, target: Path) -> int:
    """Copies the schema and rows of `db`'s main database into the new file `target`, without the salts and the
    raw events of their days; returns the raw events left out. A restored server makes a new salt for today and
    has lost those events (see the README, Backup)."""
    db.execute("ATTACH DATABASE ? AS copy", (str(target),))
    try:
        db.execute("PRAGMA copy.journal_mode = MEMORY")  # the copy is new: nothing to keep a journal file for
        db.execute("PRAGMA foreign_keys = OFF")  # rows of a consistent snapshot, copied table by table
        db.execute("BEGIN")  # the copy is of one instant: the source is read under one transaction
        try:
            objects = db.execute(
                "SELECT type, name, sql FROM main.sqlite_master WHERE sql IS NOT NULL ORDER BY type <> 'table', rowid"
            ).fetchall()
            (oldest,) = db.execute("SELECT MIN(day) FROM main.salts").fetchone()
            cutoff = None
            if oldest is not None:
                cutoff = int(datetime.fromisoformat(str(oldest)).replace(tzinfo=UTC).timestamp() * 1000)
            left_out = 0
            args: tuple[int, ...]
            for kind, name, sql in objects:
                if name.startswith("sqlite_"):
                    continue  # SQLite's own (statistics); remade by SQLite as needed
                if kind not in ("table", "index"):
                    raise StoreError(f"the backup does not know how to copy the {kind} {name}")
                db.execute(_CREATE.sub(lambda m: f"{m.group(0)}copy.", str(sql), count=1))
                if kind != "table" or name == "salts":
                    continue
                where, args = "", ()
                if name == "events" and cutoff is not None:
                    where, args = " WHERE ts < ?", (cutoff,)
                    (left_out,) = db.execute("SELECT COUNT(*) FROM main.events WHERE ts >= ?", args).fetchone()
                db.execute(f'INSERT INTO copy."{name}" SELECT * FROM main."{name}"{where}', args)  # noqa: S608
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
    finally:
        db.execute("DETACH DATABASE copy")
    return int(left_out)


def backup(events: Path, aggregates: Path, folder: Path, busy_timeout_ms: int) -> list[Path]:
    """Copies the databases into `folder` (created if needed), under their own names; returns the copies."""
    folder = folder.resolve()
    if any(f.resolve().parent == folder for f in (events, aggregates)):
        raise StoreError(f"{folder} holds the database itself; back it up into another folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the folder {folder}: {exc.strerror}") from None
    copy_file(events, folder / events.name, busy_timeout_ms, without_salts=True)
    copy_file(aggregates, folder / aggregates.name, busy_timeout_ms, without_salts=False)
    return [folder / events.name, folder / aggregates.name]
