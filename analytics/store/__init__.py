"""Storage: the `Store` interface and its implementations, chosen from `database.url`."""

from __future__ import annotations

from analytics.config import DatabaseConfig, sqlite_path
from analytics.store.base import Migration, Store
from analytics.store.sqlite import SQLiteStore

__all__ = ["Migration", "SQLiteStore", "Store", "open_store"]


def open_store(config: DatabaseConfig) -> Store:
    """An unopened store for the configured URL (the URL was validated when the config was loaded)."""
    return SQLiteStore(sqlite_path(config.url), config.sqlite_synchronous, config.sqlite_busy_timeout_ms)
