"""Drop counters: how many requests ingest dropped for each site, by reason and local day, and how many custom
properties it left out. Counted in memory per process, then added to the store's `drops` table with a batch of
events (one upsert per site, day and reason, at most once a second): never per visitor, never a value.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from analytics.rollup import day_number
from analytics.sites import Site

FLUSH_SECONDS = 1.0
"""Counts wait this long in memory before they ride with a batch: a busy server commits hundreds of batches a
second, and one upsert a second is enough for counters read over days. A crash loses at most this much."""

DropRow = tuple[int, int, str, int]
"""(site id, local day number, reason, count), as the store adds them up."""
Tally = dict[tuple[int, str, str], int]
"""(site id, site time zone, reason) -> count."""


class DropCounts:
    """The counts of one process not yet in the store."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self._tally: Tally = {}
        self._taken_at = monotonic()
        self._flush = False

    def add(self, site: Site, reason: str, count: int = 1) -> None:
        key = (site.id, site.timezone, reason)
        self._tally[key] = self._tally.get(key, 0) + count

    @property
    def pending(self) -> bool:
        return bool(self._tally)

    def request_flush(self) -> None:
        """The next `due` says yes (shutdown, tests, a quiet server whose counts would otherwise wait)."""
        self._flush = True

    def due(self) -> bool:
        return bool(self._tally) and (self._flush or self.monotonic() - self._taken_at >= FLUSH_SECONDS)

    def take(self) -> Tally:
        taken, self._tally = self._tally, {}
        self._taken_at, self._flush = self.monotonic(), False
        return taken

    def give_back(self, taken: Mapping[tuple[int, str, str], int]) -> None:
        """Counts whose write failed: they go with a later one."""
        for key, count in taken.items():
            self._tally[key] = self._tally.get(key, 0) + count


def rows(tally: Mapping[tuple[int, str, str], int], now: datetime) -> list[DropRow]:
    """The tally as store rows, on each site's local day at `now` (counts wait a second at most, so the day is
    theirs except in the second after a midnight)."""
    found: dict[tuple[int, int, str], int] = {}
    for (site_id, timezone, reason), count in tally.items():
        key = (site_id, day_number(now.astimezone(ZoneInfo(timezone)).date()), reason)
        found[key] = found.get(key, 0) + count
    return [(site_id, day, reason, count) for (site_id, day, reason), count in sorted(found.items())]
