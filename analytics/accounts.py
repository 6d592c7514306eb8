"""Dashboard accounts: password hashing, session and link tokens, and login throttling.

Passwords are hashed with scrypt (memory-hard, in Python's standard library: no extra dependency) at OWASP's
recommended cost (N = 2^17, r = 8, p = 1: 128 MiB and a few hundred milliseconds per attempt), with the
parameters stored in the hash so they can be raised later. Session cookies, shared links and CSRF tokens are
random tokens; only their SHA-256 is stored (apikeys.digest, as for API keys).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
MIN_PASSWORD = 10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    site_ids: tuple[int, ...] | None
    """The sites this user may see; None for every site (an administrator)."""

    def allows(self, site_id: int) -> bool:
        return self.site_ids is None or site_id in self.site_ids

    @property
    def admin(self) -> bool:
        return self.site_ids is None


@dataclass(frozen=True, slots=True)
class SharedLink:
    id: int
    site_id: int
    name: str
    password_hash: str | None
    expires_at: int | None
    embeddable: bool
    created_at: int
    revoked_at: int | None

    def usable(self, now_ms: int) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now_ms < self.expires_at)


def check_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email) or len(email) > 254:
        raise ValueError(f"{email!r} is not an email address")
    return email


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise ValueError("the password must have at most 1024 characters")
    return password


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, n: int = SCRYPT_N) -> str:
    """`scrypt$N$r$p$salt$hash`. Slow on purpose: call it off the event loop (asyncio.to_thread)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, maxmem=2**28, dklen=32)
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), maxmem=2**28, dklen=32
        )
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(digest, _unb64(expected))


@functools.cache
def dummy_hash() -> str:
    """A hash of a random password, verified against when the email is unknown: a login attempt takes as long
    for an unknown email as for a known one, so timing does not reveal which accounts exist."""
    return hash_password(secrets.token_urlsafe(16))


def new_token(bits: int = 256) -> str:
    return secrets.token_urlsafe(bits // 8)


class Throttle:
    """At most `limit` login attempts per key within `window` seconds, in memory (per process): keyed by the
    account's email and, separately, by the client's address; the address is held in memory only for the
    window and never written anywhere.

    An attempt is counted when it starts, before its password is hashed, and forgiven when it succeeds: checking
    first and counting the failure after the hash let 100 parallel wrong passwords through a limit of 5."""

    def __init__(self, limit: int = 5, window: float = 900.0, monotonic: Callable[[], float] = time.monotonic):
        self.limit, self.window, self.monotonic = limit, window, monotonic
        self._attempts: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        now = self.monotonic()
        found = self._attempts.get(key)
        if found is None:
            return deque()
        while found and now - found[0] > self.window:
            found.popleft()
        if not found:
            del self._attempts[key]
        return found

    def retry_after(self, *keys: str) -> int:
        """Seconds until another attempt is allowed (0: allowed now)."""
        wait = 0.0
        for key in keys:
            recent = self._recent(key)
            if len(recent) >= self.limit:
                wait = max(wait, self.window - (self.monotonic() - recent[0]))
        return int(wait) + 1 if wait > 0 else 0

    def begin(self, *keys: str) -> tuple[int, float]:
        """Counts an attempt under every key, unless one of them is over its limit: then returns the seconds to
        wait and counts nothing. No await between the check and the count: atomic within the event loop.
        Returns (seconds to wait or 0, the attempt's stamp for `succeed`)."""
        wait = self.retry_after(*keys)
        if wait:
            return wait, 0.0
        if len(self._attempts) > 100_000:  # a flood of distinct keys: forget the oldest state
            self._attempts.clear()
        stamp = self.monotonic()
        for key in keys:
            self._attempts.setdefault(key, deque()).append(stamp)
        return 0, stamp

    def succeed(self, account: str, stamp: float, *others: str) -> None:
        """A successful attempt: the account's attempts are forgiven, and this one no longer counts under the
        other keys (five colleagues behind one address may log in)."""
        self._attempts.pop(account, None)
        for key in others:
            found = self._attempts.get(key)
            if found is not None and stamp in found:
                found.remove(stamp)
