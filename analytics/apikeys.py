"""Stats API keys: random 256-bit tokens, stored only as SHA-256 hashes, scoped to sites, revocable."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

PREFIX = "ak_"


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str
    prefix: str
    site_ids: tuple[int, ...]
    created_at: int
    revoked_at: int | None

    def allows(self, site_id: int) -> bool:
        return self.revoked_at is None and site_id in self.site_ids


def new_key() -> str:
    """A key as shown to its owner, once: `ak_` and 43 URL-safe characters (256 random bits)."""
    return PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> bytes:
    """Keys carry 256 random bits, so a plain hash is enough: there is nothing to brute-force."""
    return hashlib.sha256(key.encode()).digest()


def display_prefix(key: str) -> str:
    return key[: len(PREFIX) + 6]
