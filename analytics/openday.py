"""The open day's rows, computed in a worker process.

Days not rolled up yet are answered from raw events with the rollup's own code; on a busy site that is tens
of thousands of events and half a second of pure Python. Run in the server's process it would hold the
interpreter (and with it ingest and every other request) for that long, so it runs in worker processes
(two, so that a filter's rows need not wait for a refresh of the unfiltered ones) which read the events from
the database themselves (SQLite: the file; WAL lets them read while the server writes) and keep them, topping
them up with what came since.

The workers end with the server however it ends: a graceful stop shuts the pool down, and on a crash
(kill -9) each worker notices its parent is gone (analytics/processes.py) and exits, which also ends
multiprocessing's
resource tracker (it exits when the last process holding its pipe has).
"""

from __future__ import annotations

import atexit
import bisect
import concurrent.futures
import threading
import time
from collections.abc import Sequence
from datetime import date
from zoneinfo import ZoneInfo

from analytics import processes, rollup
from analytics.events import Event
from analytics.store.sqlite import count_events, read_events

REREAD_S = 300.0  # every 5 minutes all events are read again (cheap insurance against anything missed)
OVERLAP_MS = 60_000  # events may be committed a little out of order: the last minute is always read again
WORKERS = 2  # sites are shared out between them (by id)
NICENESS = 10  # on a busy machine the server's process, which takes the events, gets the CPU first

_cache: dict[tuple[str, int, int, int], tuple[float, list[Event]]] = {}
_pools: dict[int, concurrent.futures.ProcessPoolExecutor] = {}
_lock = threading.Lock()


def events(path: str, site_id: int, start: int, end: int) -> list[Event]:
    """The events of [start, end), read once and then topped up."""
    key = (path, site_id, start, end)
    cached = _cache.get(key)
    now = time.monotonic()
    if cached is None or now - cached[0] > REREAD_S or not cached[1]:
        found, built = read_events(path, site_id, start, end), now
    else:
        built, known = cached
        cutoff = known[-1].ts - OVERLAP_MS
        head = known[: bisect.bisect_left(known, cutoff, key=lambda e: e.ts)]
        if head and count_events(path, site_id, start, max(cutoff, start)) != len(head):
            found, built = read_events(path, site_id, start, end), now  # some were deleted (forget): all again
        else:
            found = head + read_events(path, site_id, max(cutoff, start), end)
    if len(_cache) > 50:
        _cache.clear()
    _cache[key] = (built, found)
    return found


def drop(site_id: int) -> None:
    """Forgets the site's events (a value was just erased from them)."""
    for key in [k for k in _cache if k[1] == site_id]:
        _cache.pop(key, None)


def compute(
    path: str,
    site_id: int,
    start: int,
    end: int,
    day: int,
    tz: str,
    only: tuple[str, str] | None,
    page_goals: Sequence[str],
    min_visitors: int,
) -> list[rollup.Row]:
    """What the worker runs: the day's rows (unfiltered, or under one filter), folded at k as stored ones are."""
    return rollup.rollup_day(
        events(path, site_id, start, end),
        date.fromordinal(day),
        ZoneInfo(tz),
        only,
        page_goals,
        min_visitors=min_visitors,
    )


def window(
    path: str,
    site_id: int,
    read_from: int,
    end: int,
    start: int,
    tz: str,
    only: tuple[str, str] | None,
    active: bool,
    page_goals: Sequence[str],
    min_visitors: int,
) -> list[rollup.Row]:
    """What the worker runs for `24h` and `realtime`: the rows of the visits of [start, end) (with `active`, those
    with an event in it), from the events since `read_from` (read each time: the window moves with the clock)."""
    events = read_events(path, site_id, read_from, end)
    return rollup.rollup_window(
        events, start, end, ZoneInfo(tz), 0, only, active=active, page_goals=page_goals, min_visitors=min_visitors
    )


def pool(site_id: int = 0) -> concurrent.futures.ProcessPoolExecutor:
    """The worker that answers for the site: one process per pool, each site always in the same one, so that a
    site's open-day rows are computed and kept once, and every question about it sees the same rows (with a
    shared pool, two workers kept rows of different ages, and two panels of one dashboard could disagree).
    Started on first use (spawned: the server's threads are not copied into them)."""
    number = shard(site_id)
    with _lock:
        found = _pools.get(number)
        if found is None:
            found = _pools[number] = processes.pool(1, niceness=NICENESS)
            atexit.register(found.shutdown, wait=False, cancel_futures=True)
        return found


def shard(site_id: int) -> int:
    """Which worker answers for the site."""
    return site_id % WORKERS


def pools() -> list[concurrent.futures.ProcessPoolExecutor]:
    """Every worker (started if need be)."""
    return [pool(shard) for shard in range(WORKERS)]


def reset() -> None:
    """Forgets broken workers; the next use starts new ones."""
    with _lock:
        for found in _pools.values():
            found.shutdown(wait=False, cancel_futures=True)
        _pools.clear()


def ready() -> bool:
    """Starts the workers (called at server start, so the first dashboard does not wait for them)."""
    return True


def warm_up() -> None:
    for future in [found.submit(ready) for found in pools()]:
        future.add_done_callback(lambda f: f.exception())
