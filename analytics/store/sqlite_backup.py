"""Online backup of the SQLite store: a consistent copy of each of its two files, taken while the server runs.

SQLite's backup API copies a database page by page under a read transaction, which in WAL mode never blocks the
writer: ingest goes on while the copy is made. The events' file is copied before the aggregates' file, so that
a day rolled up between the two copies is in both (the rollup is idempotent), never in neither.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from analytics.errors import StoreError


def copy_file(source: Path, target: Path, busy_timeout_ms: int) -> None:
    """Copies one database to `target`, through a temporary file renamed at the end: a backup interrupted
    halfway never leaves a truncated copy under the final name."""
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        src = sqlite3.connect(source, timeout=busy_timeout_ms / 1000)
        try:
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
        os.replace(partial, target)
    except (OSError, sqlite3.Error) as exc:
        partial.unlink(missing_ok=True)
        raise StoreError(f"cannot back up {source} to {target}: {exc}") from None


def backup(files: tuple[Path, ...], folder: Path, busy_timeout_ms: int) -> list[Path]:
    """Copies the databases into `folder` (created if needed), under their own names; returns the copies."""
    folder = folder.resolve()
    if any(f.resolve().parent == folder for f in files):
        raise StoreError(f"{folder} holds the database itself; back it up into another folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the folder {folder}: {exc.strerror}") from None
    copies = []
    for source in files:
        copy_file(source, folder / source.name, busy_timeout_ms)
        copies.append(folder / source.name)
    return copies
