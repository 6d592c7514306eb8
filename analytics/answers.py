"""Where the Stats API's questions are answered: in the open-day worker processes, not in the server's.

An answer is milliseconds of SQL and then pure Python: merging rows, filling every bucket of a range, sorting,
computing metrics, comparing with the previous period; tens of milliseconds for the largest ranges the API
accepts. In the server's process that Python holds the interpreter against the event loop: eight clients asking
such questions through a public shared link raised ingest p99 tenfold. So each question is sent to a worker
process (analytics/openday.py's workers, where the open days' rows are computed anyway; each site always goes to
the same one) which reads the database itself and sends back the answer; the server only checks the caller,
parses the query and forwards the result.

Each worker keeps the cache of its sites' open days' rows (and its own event loop, in a thread, so that stale rows are
refreshed in the background as in the server) and its own read-only connections. A question carries its deadline:
one that waited in the queue past it is dropped unanswered, and one being answered stops at it. At most
`MAX_IN_FLIGHT` questions are in the workers' hands at once; beyond, `Busy` (a 503 with Retry-After). Stores whose
file workers cannot read, and a pool that broke, are answered in the server's process as before.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import logging
import threading
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from analytics import openday
from analytics.errors import AnalyticsError
from analytics.query import Query
from analytics.sites import Site
from analytics.stats import Answerer, OpenDays
from analytics.store.base import Store
from analytics.store.sqlite import PROGRESS_STEPS, SQLiteStore

log = logging.getLogger("analytics")
MAX_IN_FLIGHT = 64  # questions sent to the workers and not answered yet (a dashboard asks about a dozen at once)
T = TypeVar("T")
_owners = itertools.count()


class Busy(AnalyticsError):
    """Too many questions are being answered already; the caller should retry in a few seconds."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What a worker needs besides the question: its deadline (a wall-clock instant: the queue's wait counts),
    the store's read budget, and how long open days' rows are reused; and whose they are (the rows each worker
    keeps for a server's `Answers` are its own, as they would be in the server's process)."""

    owner: int
    deadline: float
    read_seconds: float
    progress_steps: int
    max_age: float
    stale_for: float
    min_visitors: int


class Answers:
    """The server's side: sends questions to the workers, within `MAX_IN_FLIGHT`."""

    def __init__(
        self,
        store: Store,
        open_days_max_age: float = 10.0,
        open_days_stale_for: float = 120.0,
        *,
        min_visitors: int,
    ) -> None:
        self.store = store
        self.owner = next(_owners)
        # for answers computed here
        self.open_days = OpenDays(open_days_max_age, open_days_stale_for, min_visitors=min_visitors)
        self.in_flight = 0
        self.max_in_flight = MAX_IN_FLIGHT

    def _limits(self, seconds: float) -> Limits:
        return Limits(
            self.owner,
            time.time() + seconds,
            self.store.read_seconds,
            getattr(self.store, "progress_steps", PROGRESS_STEPS),
            self.open_days.max_age,
            self.open_days.stale_for,
            self.open_days.min_visitors,
        )

    async def answer(self, site: Site, query: Query, now: datetime, seconds: float) -> bytes:
        """The answer as JSON, from a worker (within `seconds`, its time budget) or from this process."""
        path = self.store.reader_path()
        if path is None:
            return await self._here(site, query, now)
        if self.in_flight >= self.max_in_flight:
            raise Busy(f"the server is answering {self.in_flight} questions already")
        self.in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            args = (path, site, query, now, self._limits(seconds))
            return await loop.run_in_executor(openday.pool(site.id), answer_here, *args)
        except concurrent.futures.BrokenExecutor as exc:
            log.warning("the answering worker failed (%s): answering in the server's process", exc)
            openday.reset()
            return await self._here(site, query, now)
        finally:
            self.in_flight -= 1

    async def forget(self, site_id: int) -> None:
        """Drops what this server and the site's worker keep of its open days (after `forget_value`), so that
        the next answer reads the raw events again."""
        self.open_days.drop(site_id)
        if self.store.reader_path() is not None:
            try:
                await asyncio.get_running_loop().run_in_executor(openday.pool(site_id), drop_here, site_id)
            except concurrent.futures.BrokenExecutor:
                openday.reset()  # a new worker keeps nothing

    async def _here(self, site: Site, query: Query, now: datetime) -> bytes:
        return render(await Answerer(self.store, site, query, now, self.open_days).answer())

    async def prepare(self, sites: Sequence[Site], now: datetime) -> None:
        """Computes today's rows of the sites that have raw events, in each worker (a head start only)."""
        busy = [s for s in sites if await self.store.first_event_ts(s.id) is not None]
        if not busy:
            return
        path = self.store.reader_path()
        if path is None:
            await _today(self.store, self.open_days, busy, now)
            return
        loop = asyncio.get_running_loop()
        limits = self._limits(300.0)
        shards: dict[int, list[Site]] = {}
        for site in busy:  # each site's rows are kept by the worker that answers for it
            shards.setdefault(openday.shard(site.id), []).append(site)
        calls = [
            loop.run_in_executor(openday.pool(sites[0].id), prepare_here, path, sites, now, limits)
            for sites in shards.values()
        ]
        for failed in await asyncio.gather(*calls, return_exceptions=True):
            if isinstance(failed, BaseException):
                log.warning("could not prepare today's figures: %s", failed)


async def _today(store: Store, open_days: OpenDays, sites: Sequence[Site], now: datetime) -> None:
    """Today's rows of the sites, computed into `open_days`, one site after the other."""
    for site in sites:
        tz = ZoneInfo(site.timezone)
        await open_days.rows(store, site, tz, now.astimezone(tz).date())


def render(answer: dict[str, Any]) -> bytes:
    """JSON as Starlette's JSONResponse writes it."""
    return json.dumps(answer, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


# The workers' side: module state lives in each worker process.
_loop: asyncio.AbstractEventLoop | None = None
_stores: dict[str, SQLiteStore] = {}
_open_days: dict[tuple[int, str], OpenDays] = {}


def _run(work: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine on the worker's own event loop, which runs for good in a thread: background refreshes of
    open days' rows go on between questions."""
    global _loop
    if _loop is None:
        _loop = asyncio.new_event_loop()
        threading.Thread(target=_loop.run_forever, daemon=True, name="answers").start()
    return asyncio.run_coroutine_threadsafe(work, _loop).result()


async def _store(path: str, limits: Limits) -> tuple[SQLiteStore, OpenDays]:
    """The worker's read-only store for the file, within the question's limits, and its owner's open days."""
    store = _stores.get(path)
    if store is None:
        if len(_stores) >= 8:  # one server reads one file; tests open many
            for old in _stores.values():
                await old.close()
            _stores.clear()
        store = SQLiteStore(Path(path))
        await store.open_for_reading()
        _stores[path] = store
    store.read_seconds = min(limits.read_seconds, max(limits.deadline - time.time(), 0.0))
    store.progress_steps = limits.progress_steps
    key = (limits.owner, path)
    open_days = _open_days.get(key)
    if open_days is None:
        if len(_open_days) >= 8:  # one server has one; tests start many
            _open_days.clear()
        open_days = _open_days[key] = OpenDays(min_visitors=limits.min_visitors)
    open_days.max_age, open_days.stale_for = limits.max_age, max(limits.stale_for, limits.max_age)
    open_days.min_visitors = limits.min_visitors
    return store, open_days


async def _answer(path: str, site: Site, query: Query, now: datetime, limits: Limits) -> bytes:
    remaining = limits.deadline - time.time()
    if remaining <= 0:  # the server stopped waiting for it: nobody would read the answer
        raise TimeoutError
    store, open_days = await _store(path, limits)
    async with asyncio.timeout(remaining):
        return render(await Answerer(store, site, query, now, open_days).answer())


def answer_here(path: str, site: Site, query: Query, now: datetime, limits: Limits) -> bytes:
    """What a worker runs for one question: the answer encoded here too (a city breakdown is 100 kB of JSON,
    milliseconds to encode, and bytes cost nothing to send back)."""
    return _run(_answer(path, site, query, now, limits))


async def _prepare(path: str, sites: Sequence[Site], now: datetime, limits: Limits) -> None:
    store, open_days = await _store(path, limits)
    await _today(store, open_days, sites, now)


def drop_here(site_id: int) -> None:
    """What a worker runs after a value of the site was forgotten: its open days' rows and events go."""
    for open_days in _open_days.values():
        open_days.drop(site_id)
    openday.drop(site_id)


def prepare_here(path: str, sites: Sequence[Site], now: datetime, limits: Limits) -> None:
    _run(_prepare(path, sites, now, limits))
