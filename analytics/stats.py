"""Answering a `Query`: closed days from the aggregates (months where whole), open days from raw events
through the same rollup code, merged; then the metrics, ordering, pagination and comparison.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any, cast
from zoneinfo import ZoneInfo

from analytics import anonymity, openday, processes, rollup
from analytics.query import Query, QueryError, check_size, iso, previous, resolve, stored_dimension
from analytics.sites import Site
from analytics.store.base import Store
from analytics.visits import TIMEOUT_MS

log = logging.getLogger("analytics")

Counts = tuple[int, ...]  # visitors, visits, pageviews, events, bounces, duration (seconds)
Label = str | tuple[str, str]  # a value, a time bucket or "" for totals; (time bucket, value) with two dimensions
ZERO: Counts = (0, 0, 0, 0, 0, 0)
HOUR_MS = 3_600_000
REALTIME_MS = 5 * 60_000  # the realtime view: visits with an event in the last 5 minutes


def _add(a: Counts, b: Iterable[int]) -> Counts:
    return tuple(map(operator.add, a, b))


def _month_end(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1) - timedelta(days=1)


def _ranges(start: date, end: date, rolled: set[int], whole_months: bool) -> list[tuple[int, int, int]]:
    """(period, first, last) bucket ranges covering the rolled-up days of [start, end]: whole months as one
    monthly bucket when allowed, runs of days otherwise."""
    ranges: list[tuple[int, int, int]] = []
    day = start
    while day <= end:
        month_end = min(_month_end(day), end)
        days = [rollup.day_number(day + timedelta(days=i)) for i in range((month_end - day).days + 1)]
        # The monthly row holds exactly the month's rolled-up days (it is brought up to date with each day's
        # rollup), so it answers any segment that contains all of them; open days come from raw events.
        first, last = rollup.day_number(day.replace(day=1)), rollup.day_number(_month_end(day))
        in_month = [d for d in rolled if first <= d <= last]
        whole = bool(in_month) and days[0] <= min(in_month) and max(in_month) <= days[-1]
        if whole and whole_months:  # consecutive months as one range: one index range in agg_months
            month = rollup.month_number(day)
            if ranges and ranges[-1][0] == rollup.MONTH and ranges[-1][2] == month - 1:
                ranges[-1] = (rollup.MONTH, ranges[-1][1], month)
            else:
                ranges.append((rollup.MONTH, month, month))
        else:
            for number in days:
                if number not in rolled:
                    continue
                if ranges and ranges[-1][0] == rollup.DAY and ranges[-1][2] == number - 1:
                    ranges[-1] = (rollup.DAY, ranges[-1][1], number)
                else:
                    ranges.append((rollup.DAY, number, number))
        day = month_end + timedelta(days=1)
    return ranges


async def _in_worker(work: Callable[..., list[rollup.Row]], site_id: int, *args: Any) -> list[rollup.Row] | None:
    """Rows computed in an open-day worker process; None if the worker broke (the caller computes them here).
    In a worker process already (analytics/answers.py), they are computed in a thread of that process."""
    if processes.IN_WORKER:
        return await asyncio.to_thread(work, site_id, *args)
    try:
        return await asyncio.get_running_loop().run_in_executor(openday.pool(site_id), work, site_id, *args)
    except Exception as exc:  # noqa: BLE001 -- a broken worker must not break the answer: compute here
        log.warning("the open-day worker failed (%s): computing in the server's process", exc)
        openday.reset()
        return None


class OpenDays:
    """Rows of days not rolled up yet, computed from raw events (every dimension at once) and reused: a busy
    site's day holds tens of thousands of events, and a dashboard asks a dozen questions at once.

    Rows younger than `max_age` seconds are served as they are. Older ones, up to `stale_for` seconds, are
    served while fresh ones are computed in the background (the next question gets those). Concurrent questions
    about the same day share one computation, which runs in a worker process (analytics/openday.py; in a thread
    for a store whose file workers cannot read) so that ingest keeps flowing."""

    def __init__(self, max_age: float = 10.0, stale_for: float = 0.0, *, min_visitors: int) -> None:
        self.max_age = max_age
        self.min_visitors = min_visitors
        """k: rows are computed folded as the stored ones are (analytics/anonymity.py)."""
        self.stale_for = max(stale_for, max_age)
        self._rows: dict[tuple[int, int, tuple[str, str] | None], tuple[float, list[rollup.Row]]] = {}
        self._pending: dict[tuple[int, int, tuple[str, str] | None], asyncio.Task[list[rollup.Row]]] = {}
        self._windows: dict[tuple[int, tuple[str, str] | None, bool, int], tuple[float, int, list[rollup.Row]]] = {}

    def drop(self, site_id: int) -> None:
        """Forgets the site's rows (a value was just erased from its raw events)."""
        for key in [k for k in self._rows if k[0] == site_id]:
            self._rows.pop(key, None)
        for window in [k for k in self._windows if k[0] == site_id]:
            self._windows.pop(window, None)

    async def window(
        self,
        key: tuple[int, tuple[str, str] | None, bool, int],
        end_ms: int,
        compute: Callable[[], Awaitable[list[rollup.Row]]],
    ) -> list[rollup.Row]:
        """A 24h or realtime window's rows, reused for `max_age` seconds like a day's: each is up to a day of
        events read and rolled up again, and the window moves with the clock (its end within `max_age` of the
        one computed counts as the same)."""
        cached = self._windows.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.max_age and 0 <= end_ms - cached[1] < self.max_age * 1000:
            return cached[2]
        rows = await compute()
        if len(self._windows) > 1000:
            self._windows.clear()
        self._windows[key] = (now, end_ms, rows)
        return rows

    async def rows(
        self, store: Store, site: Site, tz: ZoneInfo, day: date, only: tuple[str, str] | None = None
    ) -> list[rollup.Row]:
        """The day's unfiltered rows, or with `only` its rows under that one (dimension, value) filter."""
        key = (site.id, rollup.day_number(day), only)
        cached = self._rows.get(key)
        age = time.monotonic() - cached[0] if cached else float("inf")
        if cached is not None and age < self.max_age:
            return cached[1]
        task = self._pending.get(key)
        if task is None:
            task = asyncio.create_task(self._compute(key, store, site, tz, day, only))
            self._pending[key] = task
            task.add_done_callback(lambda _: self._pending.pop(key, None))
        if cached is not None and age < self.stale_for:
            return cached[1]
        return await asyncio.shield(task)

    async def _compute(
        self,
        key: tuple[int, int, tuple[str, str] | None],
        store: Store,
        site: Site,
        tz: ZoneInfo,
        day: date,
        only: tuple[str, str] | None,
    ) -> list[rollup.Row]:
        started = time.monotonic()
        start, end = rollup.day_bounds(day, tz)
        start, end = start - TIMEOUT_MS, end + rollup.LOOKAHEAD_MS
        path = store.reader_path()
        rows: list[rollup.Row] | None = None
        if path is not None:  # in the worker process: the server's interpreter stays free
            args = (start, end, day.toordinal(), tz.key, only, site.page_goals, self.min_visitors)
            rows = await _in_worker(partial(openday.compute, path), site.id, *args)
        if rows is None:
            events = await store.events_between(site.id, start, end)
            rows = await asyncio.to_thread(
                partial(rollup.rollup_day, min_visitors=self.min_visitors), events, day, tz, only, site.page_goals
            )
        if len(self._rows) > 1000:
            self._rows.clear()
        self._rows[key] = (started, rows)
        return rows


class Answerer:
    """One query for one site, at one instant."""

    def __init__(self, store: Store, site: Site, query: Query, now: datetime, open_days: OpenDays):
        self.store, self.site, self.query, self.now = store, site, query, now
        self.k = open_days.min_visitors
        self.tz = ZoneInfo(site.timezone)
        self.dimension = stored_dimension(query.breakdown) if query.breakdown else ""
        self.filter = (stored_dimension(query.filter[0]), query.filter[1]) if query.filter else None
        self.open_days = open_days
        self.windows: dict[int, list[rollup.Row]] = {}
        """24h and realtime windows' rows by end instant, shared with the Answerer of their totals."""
        self.raw_from: date | None = None
        """The local day of the oldest raw event (set by `answer`); None: unknown, every day may have some."""
        if query.filter and query.filter[1] == anonymity.OTHER:
            raise QueryError(
                f"{anonymity.OTHER} is not a value: it gathers the values seen by fewer than "
                f"privacy.min_visitors ({self.k}) visitors, which cannot be filtered on one by one. Filter on a "
                "value listed by name"
            )
        fine = self.filter is not None and rollup.is_fine(self.filter[0]) and rollup.is_fine(self.dimension)
        if fine and not self._same and query.filter:
            raise QueryError(
                f"{query.breakdown} under a filter on {query.filter[0]} is not kept: both have thousands of "
                "values, and every pair of them would cost about as many rows as the raw events the aggregates "
                "replace. Filter or break down by a coarser dimension instead (source, UTM, country, device, "
                "browser, OS, goal or property)"
            )

    @property
    def _same(self) -> bool:
        """A breakdown by the filter's own dimension: one row, the filter's value, from the filtered totals."""
        return self.filter is not None and self.dimension == self.filter[0]

    def _pick(self, rows: Iterable[rollup.Row], period: int, by_bucket: bool) -> dict[Any, Counts]:
        """Counts by label (or bucket) of the rows that answer this query, from rows computed from raw events."""
        fd, fv = self.filter or ("", "")
        dimension = "" if self._same or by_bucket else self.dimension
        found: dict[Any, Counts] = {}
        for r in rows:
            if r.period == period and r.filter_dimension == fd and r.filter_value == fv and r.dimension == dimension:
                key = r.bucket if by_bucket else (fv if self._same else r.value)
                found[key] = _add(found.get(key, ZERO), _counts(r))
        return found

    async def _open_rows(self, days: list[date]) -> list[rollup.Row]:
        rows: list[rollup.Row] = []
        for day in days:
            found = await self.open_days.rows(self.store, self.site, self.tz, day, self.filter)
            unlisted = self.filter is not None and self.k > 1
            if unlisted and not _listed(await self.open_days.rows(self.store, self.site, self.tz, day), self.filter):
                continue  # as the rollup will store it: a value the day does not list has no filtered rows
            rows += found
        return rows

    async def _check_raw(self, first_hour: int) -> None:
        start_ms = int((datetime(1970, 1, 1) + timedelta(hours=first_hour)).replace(tzinfo=self.tz).timestamp() * 1000)
        first_ts = await self.store.first_event_ts(self.site.id)
        if first_ts is None or first_ts > start_ms - TIMEOUT_MS:
            raise QueryError(
                "hourly figures under a filter are computed from raw events, which are kept for "
                "privacy.raw_retention_hours only (48 hours by default): ask for today or yesterday, or for time:day"
            )

    def _check_recent(self, ranges: list[tuple[int, int, int]]) -> None:
        """Filtered breakdowns by day exist for the last RECENT_DAYS days only."""
        today = self.now.astimezone(self.tz).date()
        oldest = rollup.day_number(today) - rollup.RECENT_DAYS + 1
        if any(period == rollup.DAY and first < oldest for period, first, _ in ranges):
            raise QueryError(
                f"breakdowns under a filter are kept by day for the last {rollup.RECENT_DAYS} days only, and by "
                f"whole months before: ask for whole months before {date.fromordinal(oldest).isoformat()} "
                '(e.g. "12mo", "year", or two dates from the 1st of a month to the end of a month)'
            )

    async def collect(self, start: date, end: date, rolled: set[int]) -> dict[Label, Counts]:
        """Counts per label: the breakdown value, the time bucket label, or "" for totals."""
        time = self.query.time
        days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        today = self.now.astimezone(self.tz).date()
        first = self.raw_from or days[0]  # no raw event before that day: nothing to compute for earlier days
        open_days = [d for d in days if rollup.day_number(d) not in rolled and first <= d <= today]
        found: defaultdict[Label, Counts] = defaultdict(lambda: ZERO)
        if time is not None and self.dimension:
            return await self._collect_both(time, start, end, rolled, open_days)
        if time is None:
            ranges = _ranges(start, end, rolled, True)
            if self.filter and self.dimension and not self._same:
                self._check_recent(ranges)
            dimension = "" if self._same else self.dimension
            sums = await self.store.sum_aggregates(self.site.id, dimension, ranges, filter=self.filter)
            for (_, value), counts in sums.items():  # one row per value already
                found[self.filter[1] if self._same and self.filter else value] = counts
            for value, counts in self._pick(await self._open_rows(open_days), rollup.DAY, False).items():
                found[value] = _add(found[value], counts)
            return dict(found)
        period = rollup.HOUR if time == "time:hour" else rollup.DAY
        ranges = _ranges(start, end, rolled, False)
        if period == rollup.HOUR:
            ranges = [(rollup.HOUR, *self._hours(first, last)) for _, first, last in ranges]
            if self.filter and ranges:  # hours under a filter are not kept: computed from the raw events
                await self._check_raw(ranges[0][1])
                open_days, ranges = [d for d in days if d <= self.now.astimezone(self.tz).date()], []
        sums = await self.store.sum_aggregates(self.site.id, "", ranges, by_bucket=True, filter=self.filter)
        labels = {bucket: counts for (bucket, _), counts in sums.items()}
        for bucket, counts in self._pick(await self._open_rows(open_days), period, True).items():
            labels[bucket] = _add(labels.get(bucket, ZERO), counts)
        for day in days:  # every bucket of the range appears, zeros included, as in Plausible
            for bucket in self._buckets(day, period):
                key = self._label(bucket, period, time)
                found[key] = _add(found[key], labels.get(bucket, ZERO))
        return dict(found)

    async def _collect_both(
        self, time: str, start: date, end: date, rolled: set[int], open_days: list[date]
    ) -> dict[Label, Counts]:
        """A breakdown by day, week or month: daily rows (whole months from monthly rows for time:month)."""
        if time == "time:hour":
            raise QueryError("a breakdown by hour is not kept (hourly rows are totals): use time:day with a breakdown")
        ranges = _ranges(start, end, rolled, time == "time:month")
        if self.filter and not self._same:
            self._check_recent(ranges)
        dimension = "" if self._same else self.dimension
        found: dict[Label, Counts] = {}

        def add(bucket_label: str, value: str, counts: Iterable[int]) -> None:
            key = (bucket_label, self.filter[1] if self._same and self.filter else value)
            found[key] = _add(found.get(key, ZERO), counts)

        for period in (rollup.DAY, rollup.MONTH):
            part = [r for r in ranges if r[0] == period]
            sums = await self.store.sum_aggregates(self.site.id, dimension, part, by_bucket=True, filter=self.filter)
            for (bucket, value), counts in sums.items():
                label = iso(date(bucket // 12, bucket % 12 + 1, 1)) if period == rollup.MONTH else ""
                add(label or self._label(bucket, rollup.DAY, time), value, counts)
        fd, fv = self.filter or ("", "")
        for r in await self._open_rows(open_days):
            if r.period == rollup.DAY and (r.filter_dimension, r.filter_value, r.dimension) == (fd, fv, dimension):
                add(self._label(r.bucket, rollup.DAY, time), r.value, _counts(r))
        return found

    def _hours(self, first_day: int, last_day: int) -> tuple[int, int]:
        start, _ = rollup.day_bounds(date.fromordinal(first_day), self.tz)
        _, end = rollup.day_bounds(date.fromordinal(last_day), self.tz)
        return rollup.local_hour(start, self.tz), rollup.local_hour(end, self.tz) - 1

    def _buckets(self, day: date, period: int) -> list[int]:
        if period == rollup.DAY:
            return [rollup.day_number(day)]
        first, last = self._hours(rollup.day_number(day), rollup.day_number(day))
        return list(range(first, last + 1))

    @staticmethod
    def _label(bucket: int, period: int, time: str) -> str:
        if period == rollup.HOUR:
            return (datetime(1970, 1, 1) + timedelta(hours=bucket)).strftime("%Y-%m-%d %H:00:00")
        day = date.fromordinal(bucket)
        if time == "time:week":
            return iso(day - timedelta(days=day.weekday()))
        if time == "time:month":
            return iso(day.replace(day=1))
        return iso(day)

    async def answer(self) -> dict[str, Any]:
        q = self.query
        if q.date_range in ("24h", "realtime"):
            return await self._last_24h()
        today = self.now.astimezone(self.tz).date()
        rolled = await self.store.rolled_up_days(self.site.id)
        first_ts = await self.store.first_event_ts(self.site.id)
        known = [date.fromordinal(min(rolled))] if rolled else []
        # Without raw events, no day is open; with them, none before the oldest one's.
        self.raw_from = date.max if first_ts is None else datetime.fromtimestamp(first_ts / 1000, self.tz).date()
        if first_ts is not None:
            known.append(self.raw_from)
        start, end = resolve(q.date_range, today, min(known, default=today))
        check_size(q, start, end)
        current = await self.collect(start, end, rolled)
        results, total = self._results(*self._anonymous(current, await self._totals(current, start, end, rolled)))
        before = previous(start, end)
        if q.comparisons:
            past = await self.collect(*before, rolled)
            self._compare(
                results, self._results(*self._anonymous(past, await self._totals(past, *before, rolled)), False)[0]
            )
        return self._response(results, total, iso(start), iso(end), [iso(d) for d in before])

    def _compare(self, results: list[dict[str, Any]], past: list[dict[str, Any]]) -> None:
        metrics = self.query.metrics
        for i, result in enumerate(results):
            match = self._match(result, past, i)
            before = match["metrics"] if match else [0] * len(metrics)
            result["comparison"] = {
                "dimensions": match["dimensions"] if match else result["dimensions"],
                "metrics": before,
                "change": [_change(m, a, b) for m, a, b in zip(metrics, result["metrics"], before, strict=True)],
            }

    def _response(
        self, results: list[dict[str, Any]], total: int, start: str, end: str, before: list[str]
    ) -> dict[str, Any]:
        q = self.query
        meta: dict[str, Any] = {}
        if q.total_rows:
            meta["total_rows"] = total
        if q.comparisons:
            meta["comparison_date_range"] = before
        meta["unique_visitors"] = "sums of daily unique visitors over multi-day ranges (the salt changes daily)"
        return {
            "results": results,
            "meta": meta,
            "query": {
                "site_id": self.site.domain,
                "metrics": list(q.metrics),
                "date_range": [start, end],
                "dimensions": list(q.dimensions),
                "filters": [["is", q.filter[0], [q.filter[1]]]] if q.filter else [],
                "order_by": [list(o) for o in self._order()],
                "pagination": {"limit": q.limit, "offset": q.offset},
            },
        }

    @property
    def _span_ms(self) -> int:
        return REALTIME_MS if self.query.date_range == "realtime" else 24 * HOUR_MS

    async def _window(self, end_ms: int) -> dict[Label, Counts]:
        """The 24 hours before `end_ms`, from raw events (kept at least 48 hours): visits starting in it; or for
        `realtime`, the visits with an event in the last 5 minutes."""
        realtime = self.query.date_range == "realtime"
        start_ms = end_ms - self._span_ms
        rows = await self._window_rows(start_ms, end_ms, realtime)
        if self.query.time and realtime:
            raise QueryError("realtime answers totals and breakdowns, not time series")
        if self.query.time == "time:hour":
            hours = self._pick(rows, rollup.HOUR, True)
            first, last = rollup.local_hour(start_ms, self.tz), rollup.local_hour(end_ms - 1, self.tz)
            return {self._label(h, rollup.HOUR, "time:hour"): hours.get(h, ZERO) for h in range(first, last + 1)}
        if self.query.time:
            raise QueryError("24h supports the time:hour dimension only")
        return self._pick(rows, rollup.DAY, False)

    async def _window_rows(self, start_ms: int, end_ms: int, realtime: bool) -> list[rollup.Row]:
        """A window's rows, computed once per answer (its breakdown and its totals come from the same rows), in an
        open-day worker process: a busy site's last 24 hours are ~200,000 events and seconds of pure Python,
        which in a thread of the server would hold the interpreter against ingest. Under a filter whose value the
        window's own breakdown does not list by name, none (see `_listed`)."""
        found = self.windows.get(end_ms)
        if found is not None:
            return found
        rows = await self._window_rows_under(start_ms, end_ms, realtime, self.filter)
        check = self.filter is not None and self.k > 1
        if check and not _listed(await self._window_rows_under(start_ms, end_ms, realtime, None), self.filter):
            rows = []
        self.windows[end_ms] = rows
        return rows

    async def _window_rows_under(
        self, start_ms: int, end_ms: int, realtime: bool, flt: tuple[str, str] | None
    ) -> list[rollup.Row]:

        async def compute() -> list[rollup.Row]:
            path = self.store.reader_path()
            rows: list[rollup.Row] | None = None
            if path is not None:
                args = (start_ms - TIMEOUT_MS, end_ms, start_ms, self.tz.key, flt, realtime)
                rows = await _in_worker(
                    partial(openday.window, path), self.site.id, *args, self.site.page_goals, self.k
                )
            if rows is None:
                events = await self.store.events_between(self.site.id, start_ms - TIMEOUT_MS, end_ms)
                rows = await asyncio.to_thread(
                    partial(
                        rollup.rollup_window, active=realtime, page_goals=self.site.page_goals, min_visitors=self.k
                    ),
                    events,
                    start_ms,
                    end_ms,
                    self.tz,
                    0,
                    flt,
                )
            return rows

        back = round((int(self.now.timestamp() * 1000) + 1 - end_ms) / self._span_ms)  # 0: now, 1: the one before
        return await self.open_days.window((self.site.id, flt, realtime, back), end_ms, compute)

    async def _last_24h(self) -> dict[str, Any]:
        q = self.query
        if q.time and q.breakdown:
            raise QueryError("24h answers one dimension: a breakdown, or time:hour")
        end_ms = int(self.now.timestamp() * 1000) + 1  # up to and including now
        span = self._span_ms
        current = await self._window(end_ms)
        whole = Answerer(
            self.store,
            self.site,
            Query(q.site_id, ("visitors",), q.date_range, filter=q.filter),
            self.now,
            self.open_days,
        )
        whole.windows = self.windows
        totals = (await whole._window(end_ms)).get("", ZERO)
        results, total = self._results(*self._anonymous(current, totals))
        if q.comparisons:
            past = await self._window(end_ms - span)
            past_totals = (await whole._window(end_ms - span)).get("", ZERO)
            self._compare(results, self._results(*self._anonymous(past, past_totals), False)[0])

        def local(ms: int) -> str:
            return datetime.fromtimestamp(ms // 1000, self.tz).replace(tzinfo=None).isoformat()

        return self._response(
            results, total, local(end_ms - span), local(end_ms), [local(end_ms - 2 * span), local(end_ms - span)]
        )

    async def _totals(self, found: dict[Label, Counts], start: date, end: date, rolled: set[int]) -> Counts:
        if not self.dimension:
            totals = ZERO
            for counts in found.values():
                totals = _add(totals, counts)
            return totals
        whole = Answerer(
            self.store,
            self.site,
            Query(self.query.site_id, ("visitors",), (start, end), filter=self.query.filter),
            self.now,
            self.open_days,
        )
        whole.raw_from = self.raw_from
        return (await whole.collect(start, end, rolled)).get("", ZERO)

    def _anonymous(self, found: dict[Label, Counts], totals: Counts) -> tuple[dict[Label, Counts], Counts]:
        """The answer's rows and totals as they may be shown (analytics/anonymity.py): the site's totals per
        bucket as they are; a filter's totals (per bucket) only if they count at least k visitors; every
        breakdown (per time bucket) folded at k. A visit-level breakdown whose rows do not add up to the totals
        (stored pairs read transposed carry no `(other)`; a day too small for any row of it) gets the difference
        in `(other)`, so that its sums stay the totals'."""
        k = self.k
        if k <= 1:
            return found, totals
        if self.filter is not None and not anonymity.enough(totals, k):
            totals = ZERO
        if not self.dimension or self._same:
            if self.filter is None:
                return found, totals
            return {label: c if anonymity.enough(c, k) else ZERO for label, c in found.items()}, totals
        if self.query.time:
            pairs = cast(dict[tuple[str, str], Counts], found)  # with a time dimension: (bucket, value)
            return cast(dict[Label, Counts], anonymity.fold_groups(pairs, k)), totals
        rows = dict(found)
        if self.dimension.startswith("visit:"):
            summed = ZERO
            for counts in rows.values():
                summed = _add(summed, counts)
            missing = tuple(t - s for t, s in zip(totals, summed, strict=True))
            if missing[1] > 0:  # visits: a visit-level breakdown counts each visit once
                other = (max(missing[0], 1), *(max(m, 0) for m in missing[1:]))
                rows[anonymity.OTHER] = _add(rows.get(anonymity.OTHER, ZERO), other)
        return anonymity.fold(rows, k, anonymity.OTHER), totals

    def _order(self) -> tuple[tuple[str, str], ...]:
        q = self.query
        if q.order_by:
            return q.order_by
        if q.time and q.breakdown:
            return ((q.time, "asc"), ("visitors" if "visitors" in q.metrics else q.metrics[0], "desc"))
        if q.time:
            return ((q.time, "asc"),)
        if q.breakdown:
            return (("visitors" if "visitors" in q.metrics else q.metrics[0], "desc"),)
        return ()

    def _results(
        self, found: dict[Label, Counts], totals: Counts, paginate: bool = True
    ) -> tuple[list[dict[str, Any]], int]:
        """The rows in order (and the page asked for), with their metrics; and how many rows there are."""
        q = self.query
        rows = [
            (label, counts)
            for label, counts in found.items()
            if (q.dimensions or label == "") and not (q.breakdown == "event:goal" and _value(label) == "pageview")
        ]
        if not q.dimensions and not rows:
            rows = [("", ZERO)]
        rows.sort(key=lambda r: r[0])  # ties are listed by value
        for key, direction in reversed(self._order()):  # stable sorts, last key first
            if key in q.metrics:
                rows.sort(key=partial(_sort_value, key, totals), reverse=direction == "desc")
            elif isinstance(rows[0][0] if rows else "", tuple):  # (time, value): the part the key names
                part = 0 if key.startswith("time:") else 1
                rows.sort(key=lambda r: r[0][part], reverse=direction == "desc")
            else:
                rows.sort(key=lambda r: r[0], reverse=direction == "desc")
        total = len(rows)
        if paginate:  # metrics are computed for the page only: a city breakdown has thousands of rows
            rows = rows[q.offset : q.offset + q.limit]
        results = [
            {"metrics": [_metric(m, counts, totals) for m in q.metrics], "dimensions": _dimensions(label, q.dimensions)}
            for label, counts in rows
        ]
        return results, total

    def _match(self, result: dict[str, Any], past: list[dict[str, Any]], index: int) -> dict[str, Any] | None:
        index += self.query.offset
        if self.query.time:  # time series compare position by position
            return past[index] if index < len(past) else None
        return next((p for p in past if p["dimensions"] == result["dimensions"]), None)


def _listed(unfiltered: Iterable[rollup.Row], flt: tuple[str, str] | None) -> bool:
    """Whether the bucket's breakdown by the filter's dimension lists its value by name. A filter's figures are
    that row's; a value under k, or merged into `(other)` to bring it to k, has none (its figures taken off
    `(other)` would give the rare rows')."""
    return flt is None or any(
        r.dimension == flt[0] and r.value == flt[1] and not r.filter_dimension for r in unfiltered
    )


def _value(label: Label) -> str:
    return label[1] if isinstance(label, tuple) else label


def _dimensions(label: Label, asked: tuple[str, ...]) -> list[str]:
    if isinstance(label, tuple):  # in the order the query listed its dimensions
        return list(label) if asked[0].startswith("time:") else [label[1], label[0]]
    return [label] if asked else []


COUNTED = {"visitors": 0, "visits": 1, "pageviews": 2, "events": 3, "percentage": 0, "conversion_rate": 0}


def _sort_value(metric: str, totals: Counts, row: tuple[Label, Counts]) -> int | float:
    index = COUNTED.get(metric)  # counts (and shares of visitors) sort by the count itself: no division
    return row[1][index] if index is not None else _metric(metric, row[1], totals)


def _counts(row: rollup.Row) -> Counts:
    return (row.visitors, row.visits, row.pageviews, row.events, row.bounces, row.duration)


def _metric(name: str, c: Counts, totals: Counts) -> int | float:
    visitors, visits, pageviews, events, bounces, duration = c
    if name == "visitors":
        return visitors
    if name == "visits":
        return visits
    if name == "pageviews":
        return pageviews
    if name == "events":
        return events
    if name == "views_per_visit":
        return round(pageviews / visits, 2) if visits else 0.0
    if name == "bounce_rate":
        return round(bounces / visits * 100) if visits else 0
    if name == "visit_duration":
        return round(duration / visits) if visits else 0
    # percentage and conversion_rate: the row's visitors as a share of all visitors in the range
    return round(visitors / totals[0] * 100, 1) if totals[0] else 0.0


def _change(metric: str, now: int | float, before: int | float) -> int | float | None:
    if metric in ("bounce_rate", "percentage", "conversion_rate"):
        return round(now - before, 1)
    if not before:
        return None if now else 0
    return round((now - before) / before * 100)
