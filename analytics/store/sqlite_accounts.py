"""The SQLite store's dashboard side: users, sessions, shared links, goals and site settings (portable SQL)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import aiosqlite

from analytics.accounts import SharedLink, User
from analytics.errors import Conflict, NotFound, StoreError
from analytics.sites import Goal, Site, SiteSettings


def _user(r: Any) -> User:
    return User(int(r[0]), str(r[1]), None if r[2] is None else tuple(json.loads(str(r[2]))))


def _link(r: Any) -> SharedLink:
    return SharedLink(
        int(r[0]),
        int(r[1]),
        str(r[2]),
        None if r[3] is None else str(r[3]),
        None if r[4] is None else int(r[4]),
        bool(r[5]),
        int(r[6]),
        None if r[7] is None else int(r[7]),
    )


LINK_COLUMNS = "id, site_id, name, password_hash, expires_at, embeddable, created_at, revoked_at"


class AccountsMixin:
    """Mixed into SQLiteStore, which provides the `admin` connection."""

    @property
    def admin(self) -> aiosqlite.Connection:
        raise NotImplementedError

    async def _rows(self, sql: str, args: tuple[object, ...], what: str) -> list[Any]:
        try:
            async with self.admin.execute(sql, args) as cur:
                return list(await cur.fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {what}: {exc}") from None

    async def _write(self, sql: str, args: tuple[object, ...], what: str) -> sqlite3.Cursor:
        try:
            cur = await self.admin.execute(sql, args)
        except sqlite3.IntegrityError:
            raise Conflict(f"{what} already exists") from None
        except sqlite3.Error as exc:
            raise StoreError(f"cannot change {what}: {exc}") from None
        return cur  # type: ignore[return-value]

    # Users

    async def add_user(self, email: str, password_hash: str, site_ids: Sequence[int] | None, now_ms: int) -> User:
        ids = None if site_ids is None else json.dumps(sorted(set(site_ids)))
        cur = await self._write(
            "INSERT INTO users (email, password_hash, site_ids, created_at) VALUES (?, ?, ?, ?)",
            (email, password_hash, ids, now_ms),
            f"user {email}",
        )
        assert cur.lastrowid is not None
        return User(cur.lastrowid, email, None if site_ids is None else tuple(sorted(set(site_ids))))

    async def add_first_user(self, email: str, password_hash: str, now_ms: int) -> User | None:
        # One statement: SQLite holds the write lock from the check to the insert, so of two setups at once (two
        # requests, two processes, the setup page and `analytics user add`) exactly one finds the table empty.
        cur = await self._write(
            "INSERT INTO users (email, password_hash, site_ids, created_at) "
            "SELECT ?, ?, NULL, ? WHERE NOT EXISTS (SELECT 1 FROM users)",
            (email, password_hash, now_ms),
            f"user {email}",
        )
        if cur.rowcount != 1 or cur.lastrowid is None:
            return None
        return User(cur.lastrowid, email, None)

    async def has_users(self) -> bool:
        return bool(await self._rows("SELECT 1 FROM users LIMIT 1", (), "users"))

    async def find_user(self, email: str) -> tuple[User, str] | None:
        """The user with this email and their password hash."""
        rows = await self._rows(
            "SELECT id, email, site_ids, password_hash FROM users WHERE email = ?", (email,), "users"
        )
        return (_user(rows[0]), str(rows[0][3])) if rows else None

    async def list_users(self) -> list[User]:
        return [_user(r) for r in await self._rows("SELECT id, email, site_ids FROM users ORDER BY email", (), "users")]

    async def set_password(self, email: str, password_hash: str) -> None:
        cur = await self._write(
            "UPDATE users SET password_hash = ? WHERE email = ?", (password_hash, email), f"user {email}"
        )
        if not cur.rowcount:
            raise NotFound(f"no user {email}; `analytics user list` shows them")

    async def set_user_sites(self, user_id: int, site_ids: Sequence[int] | None) -> None:
        ids = None if site_ids is None else json.dumps(sorted(set(site_ids)))
        await self._write("UPDATE users SET site_ids = ? WHERE id = ?", (ids, user_id), "user")

    async def remove_user(self, email: str) -> None:
        found = await self.find_user(email)
        if found is None:
            raise NotFound(f"no user {email}; `analytics user list` shows them")
        await self._write("DELETE FROM sessions WHERE user_id = ?", (found[0].id,), "sessions")
        await self._write("DELETE FROM users WHERE id = ?", (found[0].id,), "user")

    # Sessions

    async def add_session(self, token_hash: bytes, user_id: int, csrf: str, now_ms: int, expires_ms: int) -> None:
        await self._write(
            "INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            (token_hash, user_id, csrf, now_ms, expires_ms),
            "session",
        )

    async def find_session(self, token_hash: bytes, now_ms: int) -> tuple[User, str] | None:
        """The session's user and CSRF token, unless it expired (or its user was removed)."""
        rows = await self._rows(
            "SELECT u.id, u.email, u.site_ids, s.csrf FROM sessions s JOIN users u ON u.id = s.user_id "
            "WHERE s.token_hash = ? AND s.expires_at > ?",
            (token_hash, now_ms),
            "sessions",
        )
        return (_user(rows[0]), str(rows[0][3])) if rows else None

    async def delete_session(self, token_hash: bytes) -> None:
        await self._write("DELETE FROM sessions WHERE token_hash = ?", (token_hash,), "session")

    async def delete_expired_sessions(self, now_ms: int) -> int:
        cur = await self._write("DELETE FROM sessions WHERE expires_at <= ?", (now_ms,), "sessions")
        return int(cur.rowcount)

    # Site settings

    async def update_site(self, site_id: int, settings: SiteSettings) -> None:
        cur = await self._write(
            "UPDATE sites SET timezone = ?, allowed_hostnames = ?, excluded_ips = ?, excluded_paths = ? WHERE id = ?",
            (
                settings.timezone,
                json.dumps(list(settings.allowed_hostnames)),
                json.dumps(list(settings.excluded_ips)),
                json.dumps(list(settings.excluded_paths)),
                site_id,
            ),
            "site",
        )
        if not cur.rowcount:
            raise NotFound("no such site")

    async def set_allowed_props(self, site_id: int, keys: Sequence[str]) -> None:
        cur = await self._write(
            "UPDATE sites SET allowed_props = ? WHERE id = ?", (json.dumps(list(keys)), site_id), "site"
        )
        if not cur.rowcount:
            raise NotFound("no such site")

    async def set_collect(self, site_id: int, overrides: Mapping[str, bool]) -> None:
        cur = await self._write(
            "UPDATE sites SET collect = ? WHERE id = ?", (json.dumps(dict(sorted(overrides.items()))), site_id), "site"
        )
        if not cur.rowcount:
            raise NotFound("no such site")

    # Shared links

    async def add_shared_link(
        self,
        site: Site,
        name: str,
        token_hash: bytes,
        password_hash: str | None,
        expires_ms: int | None,
        embeddable: bool,
        now_ms: int,
    ) -> SharedLink:
        cur = await self._write(
            "INSERT INTO shared_links (site_id, name, token_hash, password_hash, expires_at, embeddable, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (site.id, name, token_hash, password_hash, expires_ms, embeddable, now_ms),
            "shared link",
        )
        assert cur.lastrowid is not None
        return SharedLink(cur.lastrowid, site.id, name, password_hash, expires_ms, embeddable, now_ms, None)

    async def find_shared_link(self, token_hash: bytes) -> SharedLink | None:
        rows = await self._rows(
            f"SELECT {LINK_COLUMNS} FROM shared_links WHERE token_hash = ?",  # noqa: S608
            (token_hash,),
            "shared links",
        )
        return _link(rows[0]) if rows else None

    async def list_shared_links(self, site_id: int) -> list[SharedLink]:
        rows = await self._rows(
            f"SELECT {LINK_COLUMNS} FROM shared_links WHERE site_id = ? ORDER BY id",  # noqa: S608
            (site_id,),
            "shared links",
        )
        return [_link(r) for r in rows]

    async def revoke_shared_link(self, site_id: int, link_id: int, now_ms: int) -> bool:
        cur = await self._write(
            "UPDATE shared_links SET revoked_at = ? WHERE id = ? AND site_id = ? AND revoked_at IS NULL",
            (now_ms, link_id, site_id),
            "shared link",
        )
        return bool(cur.rowcount)

    # Goals

    async def add_goal(self, site_id: int, goal: Goal, now_ms: int) -> None:
        await self._write(
            "INSERT INTO goals (site_id, kind, value, created_at) VALUES (?, ?, ?, ?)",
            (site_id, goal.kind, goal.value, now_ms),
            f"the goal {goal.value}",
        )

    async def list_goals(self, site_id: int) -> list[Goal]:
        rows = await self._rows("SELECT kind, value FROM goals WHERE site_id = ? ORDER BY id", (site_id,), "goals")
        return [Goal(str(r[0]), str(r[1])) for r in rows]

    async def remove_goal(self, site_id: int, goal: Goal) -> bool:
        cur = await self._write(
            "DELETE FROM goals WHERE site_id = ? AND kind = ? AND value = ?", (site_id, goal.kind, goal.value), "goal"
        )
        return bool(cur.rowcount)
