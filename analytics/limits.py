"""Flood protection for ingest: token buckets per site and per truncated address, in memory only.

A bucket holds up to `per_minute` events and refills at `per_minute / 60` a second, so a visitor's burst of a few
events always passes and a sustained flood is cut to the configured rate. Keys are the site id and the address
as the privacy core truncates it (a /24 or /48 by default): the key is never written anywhere, and a bucket is
forgotten once it has refilled (idle for at most a minute). The table is bounded: past `MAX_KEYS` addresses the
full (idle) buckets go, and if that is not enough all of them do (the per-site limit and load shedding still
protect the server meanwhile).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

MAX_KEYS = 100_000  # ~150 bytes each: ~15 MB at most


class Buckets:
    def __init__(self, per_minute: int, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.monotonic = monotonic
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, when)

    def take(self, key: Hashable, count: int = 1) -> float:
        """0 when `count` events may pass (and takes them); else the seconds until they could."""
        if not self.capacity:
            return 0.0
        now = self.monotonic()
        tokens, when = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - when) * self.rate)
        if tokens < count:
            self._buckets[key] = (tokens, now)
            return (count - tokens) / self.rate
        if len(self._buckets) >= MAX_KEYS and key not in self._buckets:
            self._prune(now)
        self._buckets[key] = (tokens - count, now)
        return 0.0

    def _prune(self, now: float) -> None:
        full = [k for k, (tokens, when) in self._buckets.items() if tokens + (now - when) * self.rate >= self.capacity]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= MAX_KEYS:
            self._buckets.clear()

    def __len__(self) -> int:
        return len(self._buckets)


class RateLimits:
    """Both limits of one worker process (0: that limit is off)."""

    def __init__(self, per_site_per_minute: int, per_address_per_minute: int) -> None:
        self.sites = Buckets(per_site_per_minute)
        self.addresses = Buckets(per_address_per_minute)
        self.limited: dict[str, int] = {"site": 0, "address": 0}

    def check(self, site_ids: tuple[int, ...], address: Hashable | None, count: int) -> tuple[str, float] | None:
        """None when the events may pass; else which limit refused them and the seconds to wait."""
        if address is not None:
            wait = self.addresses.take(address, count)
            if wait:
                self.limited["address"] += 1
                return "address", wait
        for site_id in site_ids:
            wait = self.sites.take(site_id, 1)
            if wait:
                self.limited["site"] += 1
                return "site", wait
        return None
