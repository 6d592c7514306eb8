"""Online backup of the SQLite store: a consistent copy of the events' file and of the aggregates' file, taken
while the server runs, that holds no salt, and no raw event that a salt still in existence could link to an
address.

The salts' file is not copied at all (nor opened: the salts' days are asked of the store's own connection to
it). Raw events of a day whose salt exists sit next to visitor hashes that the salt, together with a guessed
address and User-Agent, would recompute; so the events' file is not copied page by page: its tables are copied
row by row into a new file, under one read transaction (a snapshot: in WAL mode it never blocks the writer, and
ingest goes on), leaving out the raw events of the days whose salt exists (UTC days: today's, and yesterday's
while its salt is kept after midnight). The copy is compact (nothing the source once deleted is in it), and so is
the aggregates' file's, which holds no visitor hash and is copied whole with `VACUUM INTO`.

Each copy is written under a temporary name and renamed at the end. The events' file is copied before the
aggregates' file, so that a day rolled up between the two copies is in both (the rollup is idempotent), never in
neither.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from analytics.errors import StoreError
from analytics.store.sqlite_connect import connect

_CREATE = re.compile(r"^CREATE (UNIQUE )?(TABLE|INDEX) (IF NOT EXISTS )?")

OldestSalt = Callable[[], date | None]
"""The UTC day of the oldest salt that exists (None: no salt), asked of the store."""


def copy_file(source: Path, target: Path, busy_timeout_ms: int, oldest_salt: OldestSalt | None) -> None:
    """Copies one database to `target`, through a temporary file renamed at the end: a backup interrupted
    halfway never leaves a truncated copy under the final name. With `oldest_salt` (the events' file), without
    the raw events of the days whose salt exists."""
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        db = connect(source, busy_timeout_ms)
        try:
            if oldest_salt is not None:
                copy_closed_days(db, partial, oldest_salt)
            else:
                db.execute("VACUUM INTO ?", (str(partial),))
        finally:
            db.close()
        os.replace(partial, target)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot back up {source} to {target}: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)


def copy_closed_days(db: sqlite3.Connection, target: Path, oldest_salt: OldestSalt) -> int:
    """Copies the schema and rows of `db`'s main database into the new file `target`, without the raw events of
    the days whose salt exists; returns the raw events left out. A restored server makes a new salt for today
    and has lost those events (see the README, Backup).

    The oldest salt is asked for once the snapshot has begun: a salt destroyed in between leaves its day's events
    in the copy, rightly (no salt can link them any more), and a salt made in between has no event in the
    snapshot. Asked before, a salt made in between (a server's first start) could have events in the snapshot
    that the copy would keep."""
    db.execute("ATTACH DATABASE ? AS copy", (str(target),))
    try:
        db.execute("PRAGMA copy.journal_mode = MEMORY")  # the copy is new: nothing to keep a journal file for
        db.execute("PRAGMA foreign_keys = OFF")  # rows of a consistent snapshot, copied table by table
        db.execute("BEGIN")  # the copy is of one instant: the source is read under one transaction
        try:
            objects = db.execute(  # the snapshot begins with this first read
                "SELECT type, name, sql FROM main.sqlite_master WHERE sql IS NOT NULL ORDER BY type <> 'table', rowid"
            ).fetchall()
            oldest = oldest_salt()
            cutoff = None
            if oldest is not None:
                cutoff = int(datetime(oldest.year, oldest.month, oldest.day, tzinfo=UTC).timestamp() * 1000)
            left_out = 0
            args: tuple[int, ...]
            for kind, name, sql in objects:
                if name.startswith("sqlite_"):
                    continue  # SQLite's own (statistics); remade by SQLite as needed
                if kind not in ("table", "index"):
                    raise StoreError(f"the backup does not know how to copy the {kind} {name}")
                db.execute(_CREATE.sub(lambda m: f"{m.group(0)}copy.", str(sql), count=1))
                if kind != "table":
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


def backup(events: Path, aggregates: Path, folder: Path, busy_timeout_ms: int, oldest_salt: OldestSalt) -> list[Path]:
    """Copies the events' and the aggregates' files into `folder` (created if needed), under their own names;
    returns the copies."""
    folder = folder.resolve()
    if any(f.resolve().parent == folder for f in (events, aggregates)):
        raise StoreError(f"{folder} holds the database itself; back it up into another folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the folder {folder}: {exc.strerror}") from None
    copy_file(events, folder / events.name, busy_timeout_ms, oldest_salt)
    copy_file(aggregates, folder / aggregates.name, busy_timeout_ms, None)
    return [folder / events.name, folder / aggregates.name]
