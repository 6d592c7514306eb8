"""The `Store` interface: everything the server and the CLI ask of the database, with nothing SQL-specific.

SQLite implements it now; PostgreSQL will implement the same interface and pass the same tests. Writes of
events go through `insert_events` only, which the batch writer alone calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Protocol

from analytics.accounts import SharedLink, User
from analytics.apikeys import ApiKey
from analytics.drops import DropRow
from analytics.events import Event
from analytics.rollup import Row
from analytics.sites import Goal, Site, SiteSettings


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What `forget_value` did."""

    dimension: str
    value: str
    aggregate_rows: int
    """Rows of the value merged into (other), and rows filtered by it deleted."""
    raw_events: int
    """Raw events that carried it, now with `(other)` in its place."""
    values: int
    """Stored values deleted (the value under each of its dimensions, when no other site uses it)."""
    also: tuple[str, ...] = ()
    """The other dimensions it was forgotten under (a page as entry and exit page; a source as referrer and UTM
    source)."""
    remains: tuple[str, ...] = ()
    """The dimensions under which the site still stores the same value (sent in another field): forgotten only
    when asked for under each."""

    def __str__(self) -> str:
        also = f" (also as {_and(self.also)})" if self.also else ""
        text = (
            f"forgot {self.dimension} = {self.value!r}{also}: {self.aggregate_rows} aggregate rows merged into "
            f"(other) or deleted, {self.raw_events} raw events rewritten, {self.values} stored values deleted"
        )
        if self.remains:
            text += f"; the same value is still stored as {_and(self.remains)}: forget it under each of them too"
        return text


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


class Store(Protocol):
    read_seconds: float
    """How long one Stats API read of the aggregates may run before it is stopped (TooSlow)."""
    wal_blocked: int
    """How many times `wipe` found a reader in its way (a /metrics counter)."""

    async def open(self) -> None:
        """Connects; the schema must be migrated before anything else is asked."""

    async def close(self) -> None: ...

    async def migrate(self) -> list[Migration]:
        """Applies the migrations not applied yet, each in its own transaction; returns those applied."""

    async def schema_is_current(self) -> bool: ...

    async def ping(self) -> None:
        """Reads from the database (the health check); raises StoreError when it cannot."""

    async def add_site(self, settings: SiteSettings, now_ms: int) -> Site:
        """Raises Conflict when the domain is already registered."""

    async def list_sites(self) -> list[Site]: ...

    async def remove_site(self, domain: str) -> tuple[Site, int]:
        """Removes the site and its events; returns the site and how many events went. Raises NotFound."""

    async def salt(self, day: date, candidate: bytes, now_ms: int) -> bytes:
        """The salt of a UTC day: `candidate` if none existed, else the one another worker stored first."""

    async def delete_salts_before(self, day: date) -> int:
        """Deletes the salts of the days before `day`; once it returns, they are in none of the store's files
        (no `wipe` needed, and no reader of events or aggregates can keep them). Returns how many."""

    async def wipe(self) -> bool:
        """Makes the raw events and other rows deleted unrecoverable from the store's files (SQLite: the WALs of
        the events' and the aggregates' files are emptied); False when a reader kept that from completing now,
        and `wipe_pending` stays true until a later call succeeds."""

    @property
    def wipe_pending(self) -> bool:
        """Whether rows deleted (raw events...) may still be recoverable from the files until `wipe`."""

    async def insert_events(self, events: Sequence[Event], drops: Sequence[DropRow] = ()) -> None:
        """Commits all the events, and adds the drop counts, in one transaction, or none of them (raising
        StoreError)."""

    async def drop_counts(self, site_id: int, first_day: int, last_day: int) -> list[DropRow]:
        """A site's drop counters of the local days (day numbers) in [first, last], by day then reason."""

    async def delete_drops_before(self, site_id: int, day: int) -> int: ...

    async def count_events(self, site_id: int | None = None) -> int: ...

    async def events_between(self, site_id: int, start_ms: int, end_ms: int) -> list[Event]:
        """A site's raw events in [start, end), in time order (for the rollup)."""

    async def first_event_ts(self, site_id: int) -> int | None: ...

    async def rolled_up_days(self, site_id: int) -> set[int]: ...

    async def roll_up_day(self, site: Site, day: date, now_ms: int, min_visitors: int) -> tuple[int, int]:
        """Rolls up one closed local day of a site from its raw events, replacing any earlier rollup of it, in one
        transaction, outside the calling process's interpreter, with its rows folded at `min_visitors` (k:
        analytics/anonymity.py); returns (visits, aggregate rows written)."""

    async def forget_value(self, site: Site, dimension: str, value: str) -> Forgotten:
        """Forgets a value (an API dimension name and its value) from the site's aggregates, whose counts move to
        `(other)`, and from its raw events (which get `(other)` instead); in one transaction."""

    async def delete_events_before(self, site_id: int, ts_ms: int) -> int: ...

    async def delete_aggregates_before(self, site_id: int, hour: int, day: int, month: int) -> int:
        """Deletes hourly, daily and monthly rows older than the given buckets; returns how many."""

    async def delete_unused_values(self) -> int:
        """Deletes dimension values (page paths, referrers...) no aggregate row refers to any more."""

    async def add_api_key(
        self, name: str, key_hash: bytes, prefix: str, site_ids: Sequence[int], now_ms: int
    ) -> ApiKey: ...

    async def find_api_key(self, key_hash: bytes) -> ApiKey | None: ...

    async def list_api_keys(self) -> list[ApiKey]: ...

    async def revoke_api_key(self, key_id: int, now_ms: int) -> bool:
        """False when no active key has this id."""

    async def sum_aggregates(
        self,
        site_id: int,
        dimension: str,
        ranges: Sequence[tuple[int, int, int]],
        by_bucket: bool = False,
        filter: tuple[str, str] | None = None,
    ) -> dict[tuple[int, str], tuple[int, ...]]:
        """Sums (visitors, visits, pageviews, events, bounces, duration) of a dimension's rows, unfiltered or under
        one (dimension, value) filter, over (period, first bucket, last bucket) ranges, keyed by (bucket or 0,
        value)."""

    async def delete_recent_before(self, site_id: int, day: int) -> int:
        """Removes the recent filtered breakdowns by day older than the day; returns how many."""

    async def backup(self, folder: Path) -> list[Path]:
        """Consistent copies of the database, taken while it is in use, written into `folder`; returns them. They
        hold no salt (SQLite: the salts' file is not copied), and no raw event of a day whose salt still exists."""

    def reader_path(self) -> str | None:
        """A database file worker processes may read events from (SQLite), or None: they cannot."""

    async def property_keys(self, site_id: int, since_ms: int) -> list[str]:
        """The custom property keys the site's events have used (aggregates, and raw events since the instant)."""

    async def recent_visitors(self, site_id: int, since_ms: int) -> int:
        """Distinct visitors with an event since the instant (the realtime count)."""

    async def visitors_last_seen(
        self, since_ms: int, until_ms: int, seen_between: tuple[int, int] | None = None
    ) -> list[tuple[int, int, int]]:
        """(site id, visitor hash, time of its last event that is not an engagement ping) of every visitor with such
        an event in [since, until), on any site; with `seen_between` (start, end), only the visitors who also had
        an event in [start, end). Visits across UTC midnight are told apart by it (analytics/midnight.py)."""

    async def acquire_lease(self, name: str, holder: str, now_ms: int, ttl_ms: int) -> bool:
        """True if `holder` now holds the named lease (free, expired, or already its own) until now + ttl."""

    async def release_lease(self, name: str, holder: str) -> None: ...

    async def write_rollup(
        self,
        site_id: int,
        day: int,
        hours: tuple[int, int],
        month: tuple[int, int, int],
        rows: Sequence[Row],
        now_ms: int,
    ) -> None:
        """Replaces a day's aggregate rows and recomputes its month, in one transaction (idempotent)."""

    async def add_user(self, email: str, password_hash: str, site_ids: Sequence[int] | None, now_ms: int) -> User:
        """Raises Conflict when the email is taken. site_ids None: every site."""

    async def add_first_user(self, email: str, password_hash: str, now_ms: int) -> User | None:
        """Creates an administrator only if no account exists, atomically; None when one existed already."""

    async def has_users(self) -> bool: ...

    async def find_user(self, email: str) -> tuple[User, str] | None:
        """The user and their password hash."""

    async def list_users(self) -> list[User]: ...

    async def set_password(self, email: str, password_hash: str) -> None:
        """Raises NotFound."""

    async def set_user_sites(self, user_id: int, site_ids: Sequence[int] | None) -> None: ...

    async def remove_user(self, email: str) -> None:
        """Removes the user and their sessions; raises NotFound."""

    async def add_session(self, token_hash: bytes, user_id: int, csrf: str, now_ms: int, expires_ms: int) -> None: ...

    async def find_session(self, token_hash: bytes, now_ms: int) -> tuple[User, str] | None:
        """The live session's user and CSRF token."""

    async def delete_session(self, token_hash: bytes) -> None: ...

    async def delete_expired_sessions(self, now_ms: int) -> int: ...

    async def update_site(self, site_id: int, settings: SiteSettings) -> None:
        """Changes the time zone, allowed hostnames and exclusions (not the domain, nor the property keys);
        raises NotFound."""

    async def set_allowed_props(self, site_id: int, keys: Sequence[str]) -> None:
        """Replaces the custom property keys the site stores; raises NotFound."""

    async def set_collect(self, site_id: int, overrides: Mapping[str, bool]) -> None:
        """Replaces the site's minimisation switches (field -> collected?; unnamed fields follow the global
        `[collect]`); raises NotFound."""

    async def add_shared_link(
        self,
        site: Site,
        name: str,
        token_hash: bytes,
        password_hash: str | None,
        expires_ms: int | None,
        embeddable: bool,
        now_ms: int,
    ) -> SharedLink: ...

    async def find_shared_link(self, token_hash: bytes) -> SharedLink | None: ...

    async def list_shared_links(self, site_id: int) -> list[SharedLink]: ...

    async def revoke_shared_link(self, site_id: int, link_id: int, now_ms: int) -> bool:
        """False when the site has no active link with this id."""

    async def add_goal(self, site_id: int, goal: Goal, now_ms: int) -> None:
        """Raises Conflict when the site has this goal already."""

    async def list_goals(self, site_id: int) -> list[Goal]: ...

    async def remove_goal(self, site_id: int, goal: Goal) -> bool: ...


def load_migrations() -> list[Migration]:
    """The numbered SQL files shipped in analytics/store/migrations, in order (`0001_initial.sql` is version 1)."""
    folder = resources.files("analytics.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, name = entry.name.removesuffix(".sql").partition("_")
            found.append(Migration(int(number), name, entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)
