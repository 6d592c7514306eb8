"""Dashboard sessions: login, logout, the session cookie and CSRF tokens.

The cookie holds a random 256-bit token (only its SHA-256 is stored), is HttpOnly and SameSite=Strict, and
Secure whenever the dashboard is reached over HTTPS. Every state change needs the session's CSRF token: a
hidden form field, or the X-CSRF-Token header for the dashboard's JSON calls.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable, Sequence
from datetime import datetime
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from analytics import accounts, apikeys, privacy
from analytics.accounts import Throttle, User
from analytics.privacy import Network
from analytics.store.base import Store

COOKIE = "analytics_session"
LOGIN_COOKIE = "analytics_login"  # double-submit token of the login form (there is no session yet)
SESSION_DAYS = 14
DAY_MS = 86_400_000
CONCURRENT_HASHES = 2
"""Password checks at once (scrypt: 128 MiB and ~0.3 s each): at most 256 MiB, whatever the burst."""
MAX_WAITING_LOGINS = 16
BUSY_RETRY_S = 5


class Sessions:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime],
        trusted: Sequence[Network],
        https: bool,
        throttle: Throttle | None = None,
    ) -> None:
        self.store, self.clock, self.trusted, self.https = store, clock, tuple(trusted), https
        self.throttle = throttle or Throttle()
        self._hashing = asyncio.Semaphore(CONCURRENT_HASHES)
        self._hashing_waiters = 0

    def _now_ms(self) -> int:
        return int(self.clock().timestamp() * 1000)

    def secure(self, request: Request) -> bool:
        return self.https or request.url.scheme == "https"

    async def current(self, request: Request) -> tuple[User, str] | None:
        """The logged-in user and their CSRF token, or None."""
        token = request.cookies.get(COOKIE)
        if not token or len(token) > 100:
            return None
        return await self.store.find_session(apikeys.digest(token), self._now_ms())

    def client_key(self, request: Request) -> str:
        """The address throttled logins are counted under (held in memory for the throttle window only)."""
        peer = request.client.host if request.client else None
        address = privacy.client_ip(peer, request.headers.get("x-forwarded-for"), self.trusted)
        return f"ip:{address}"

    async def login(self, request: Request, email: str, password: str) -> tuple[str, str] | int | None:
        """(cookie token, csrf) on success; seconds to wait when throttled; None for a wrong email or password."""
        keys = (f"email:{email.strip().lower()}", self.client_key(request))
        found = await self.store.find_user(email.strip().lower())
        ok = await self.verify(keys, password, found[1] if found else accounts.dummy_hash())
        if isinstance(ok, int) and not isinstance(ok, bool):
            return ok
        if not ok or found is None:
            return None
        return await self.start(found[0])

    async def start(self, user: User) -> tuple[str, str]:
        """A new session for the user: (cookie token, csrf)."""
        token, csrf = accounts.new_token(), accounts.new_token()
        now = self._now_ms()
        await self.store.add_session(apikeys.digest(token), user.id, csrf, now, now + SESSION_DAYS * DAY_MS)
        return token, csrf

    async def verify(self, keys: tuple[str, ...], password: str, stored: str) -> bool | int:
        """Whether the password matches the stored hash, or the seconds to wait: the attempt is throttled under
        `keys` (counted before the hash is computed), and hashes run two at a time with a short queue."""
        wait, stamp = self.throttle.begin(*keys)
        if wait:
            return wait
        if self._hashing_waiters >= MAX_WAITING_LOGINS:
            return BUSY_RETRY_S  # a burst from many addresses: refused rather than queued without bound
        self._hashing_waiters += 1
        try:
            async with self._hashing:  # each scrypt takes 128 MiB: two at a time, not one per pool thread
                ok = await asyncio.to_thread(accounts.verify_password, password, stored)
        finally:
            self._hashing_waiters -= 1
        if ok:
            self.throttle.succeed(keys[0], stamp, *keys[1:])
        return ok

    def set_cookie(self, response: Response, request: Request, token: str) -> None:
        response.set_cookie(
            COOKIE,
            token,
            max_age=SESSION_DAYS * 86_400,
            path="/",
            httponly=True,
            secure=self.secure(request),
            samesite="strict",
        )

    def set_form_cookie(self, response: Response, request: Request, cookie: str, token: str, path: str) -> None:
        """The double-submit token of a form shown before any session exists (login, setup), for the form's path;
        the page echoes it in its hidden `csrf` field."""
        response.set_cookie(
            cookie, token, max_age=3600, path=path, httponly=True, secure=self.secure(request), samesite="strict"
        )

    async def logout(self, request: Request, response: Response) -> None:
        token = request.cookies.get(COOKIE)
        if token:
            await self.store.delete_session(apikeys.digest(token))
        response.delete_cookie(COOKIE, path="/", httponly=True, secure=self.secure(request), samesite="strict")


MAX_FORM_BYTES = 65_536


async def read_form(request: Request) -> dict[str, str]:
    """An HTML form (application/x-www-form-urlencoded; the dashboard has no uploads), first value per name.
    Anything else, or a body over 64 KiB, reads as an empty form: its CSRF check then fails with a message."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    fields: dict[str, str] = {}
    for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        fields.setdefault(name, value)
    return fields


def same(a: str | None, b: str | None) -> bool:
    """Whether two secrets are equal, in constant time. Compared as bytes: hmac.compare_digest refuses (TypeError)
    a str with a non-ASCII character, and a cookie, header or form field may hold anything."""
    if not a or not b:
        return False
    return hmac.compare_digest(str(a).encode("utf-8", "surrogatepass"), str(b).encode("utf-8", "surrogatepass"))
