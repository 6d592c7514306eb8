"""The Stats API query: a Plausible v2 request body validated into a `Query`, or a QueryError saying why not.

Only questions the aggregates answer exactly are accepted; anything else is refused with the reason, never
answered approximately.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from analytics.rollup import DIMENSIONS, is_fine

METRICS = (
    "visitors",
    "visits",
    "pageviews",
    "views_per_visit",
    "bounce_rate",
    "visit_duration",
    "events",
    "percentage",
    "conversion_rate",
)
SHORTCUTS = ("realtime", "day", "24h", "7d", "28d", "30d", "month", "6mo", "12mo", "year", "all")
TIME_DIMENSIONS = ("time:hour", "time:day", "time:week", "time:month")
MAX_LIMIT = 10_000
# Bounded work: every question costs at most about a few thousand days and buckets. Aggregates are kept up to
# 240 months (privacy.aggregate_retention_months), so "all" always fits; a dashboard asks 12 months by week.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
MAX_RANGE_DAYS = 10_000  # about 27 years
MAX_BUCKETS = 4_000  # a time series: about 11 years by day
MAX_BREAKDOWN_BUCKETS = 400  # a time series of a breakdown (one row per bucket and value): a year and a month by day


class QueryError(Exception):
    """The query cannot be answered; the message says why and what to send instead."""


@dataclass(frozen=True, slots=True)
class Query:
    site_id: str
    metrics: tuple[str, ...]
    date_range: str | tuple[date, date]
    dimensions: tuple[str, ...] = ()
    order_by: tuple[tuple[str, str], ...] = ()
    limit: int = MAX_LIMIT
    offset: int = 0
    comparisons: bool = False
    total_rows: bool = False
    filter: tuple[str, str] | None = None
    """One `is` filter: (API dimension name, value)."""

    @property
    def breakdown(self) -> str | None:
        return next((d for d in self.dimensions if not d.startswith("time:")), None)

    @property
    def time(self) -> str | None:
        return next((d for d in self.dimensions if d.startswith("time:")), None)


def stored_dimension(name: str) -> str:
    """The API name as the aggregates store it (`event:goal` is an event name, properties are `props:<key>`)."""
    if name == "event:goal":
        return "event:name"
    if name.startswith("event:props:"):
        return "props:" + name.removeprefix("event:props:")
    return name


def value_dimension(name: str) -> bool:
    """A dimension whose values are stored (every one but the time dimensions)."""
    return _known_dimension(name) and name not in TIME_DIMENSIONS


def _known_dimension(name: object) -> bool:
    return isinstance(name, str) and (
        name in DIMENSIONS
        or name in TIME_DIMENSIONS
        or name == "event:goal"
        or (name.startswith("event:props:") and len(name) > len("event:props:"))
    )


def parse(body: Any) -> Query:
    if not isinstance(body, dict):
        raise QueryError("the body must be a JSON object with site_id, metrics and date_range")
    site_id = body.get("site_id")
    if not isinstance(site_id, str) or not site_id:
        raise QueryError('site_id is required: the site\'s domain, e.g. "example.com"')
    metrics = body.get("metrics")
    if not isinstance(metrics, list) or not metrics or not all(m in METRICS for m in metrics):
        raise QueryError(f"metrics must be a non-empty list of: {', '.join(METRICS)}")
    dimensions = body.get("dimensions", [])
    if not isinstance(dimensions, list) or not all(_known_dimension(d) for d in dimensions):
        raise QueryError(
            "dimensions must be a list of event:page, event:name, event:goal, event:props:<key>, "
            "visit:* (source, referrer, utm_*, entry_page, exit_page, country, region, city, browser, "
            "browser_version, os, os_version, device, screen) or time:hour/day/week/month"
        )
    if len(dimensions) > 1 and (len(dimensions) > 2 or sum(str(d).startswith("time:") for d in dimensions) != 1):
        raise QueryError(
            "the aggregates answer one breakdown, one time series, or one breakdown by one time dimension "
            '(e.g. ["time:day", "visit:source"]); send one query per breakdown'
        )
    query = Query(
        site_id=site_id.strip().lower().removeprefix("www."),
        metrics=tuple(metrics),
        date_range=_date_range(body.get("date_range")),
        dimensions=tuple(dimensions),
        order_by=_order_by(body.get("order_by"), metrics, dimensions),
        filter=_filter(body.get("filters")),
    )
    limit, offset = _pagination(body.get("pagination"))
    comparisons, total_rows = _include(body.get("include"))
    query = replace(query, limit=limit, offset=offset, comparisons=comparisons, total_rows=total_rows)
    if len(dimensions) == 2 and comparisons:
        raise QueryError("include.comparisons is not available with two dimensions: send one query per dimension")
    if "percentage" in metrics and query.breakdown is None:
        raise QueryError("percentage needs a breakdown dimension (each row's share of the visitors)")
    if "conversion_rate" in metrics and query.breakdown not in ("event:goal", "event:name"):
        raise QueryError("conversion_rate needs the event:goal (or event:name) dimension")
    return query


def _filter(value: Any) -> tuple[str, str] | None:
    if value is None or value == []:
        return None
    shape = 'filters must be a list of one filter such as [["is", "visit:source", ["Google"]]]'
    if not isinstance(value, list) or not all(isinstance(f, list) for f in value):
        raise QueryError(shape)
    if len(value) > 1:
        raise QueryError(
            "only one filter per query can be answered exactly: the aggregates keep every breakdown under one "
            "filter, not under combinations of filters"
        )
    condition = value[0]
    if len(condition) != 3 or not isinstance(condition[0], str):
        raise QueryError(shape)
    operator, dimension, values = condition
    if operator != "is":
        raise QueryError(
            f'the "{operator}" filter cannot be answered exactly from the aggregates (they keep exact values, not '
            'text to search or negate): use "is" with one value'
        )
    if not _known_dimension(dimension) or str(dimension).startswith("time:"):
        raise QueryError(f"cannot filter by {dimension!r}: filter by an event:* or visit:* dimension")
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values) or not values:
        raise QueryError(f'the filter on {dimension} needs a list of values, e.g. ["is", "{dimension}", ["..."]]')
    if len(values) > 1:
        raise QueryError(
            "a filter takes one value: unique visitors of several values cannot be added exactly (a visitor can "
            "match more than one); send one query per value"
        )
    if values[0] == "" and is_fine(str(dimension)):
        raise QueryError(f"filtering on an unknown {dimension} is not kept: filter on a value")
    return str(dimension), values[0]


def _date_range(value: Any) -> str | tuple[date, date]:
    if value in SHORTCUTS:
        return str(value)
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        try:
            start, end = date.fromisoformat(value[0][:10]), date.fromisoformat(value[1][:10])
        except ValueError:
            raise QueryError('date_range dates must be ISO dates such as "2026-01-31"') from None
        if start > end:
            raise QueryError("date_range starts after it ends")
        if start < FIRST_DAY or end > LAST_DAY:
            raise QueryError(f"date_range dates must lie between {FIRST_DAY} and {LAST_DAY}")
        return start, end
    raise QueryError(f'date_range must be one of {", ".join(SHORTCUTS)} or two ISO dates ["2026-01-01", "2026-01-31"]')


def _order_by(value: Any, metrics: list[str], dimensions: list[str]) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(o, list) and len(o) == 2 and o[0] in (*metrics, *dimensions) and o[1] in ("asc", "desc")
        for o in value
    ):
        raise QueryError('order_by must be a list of [metric or dimension of the query, "asc" or "desc"]')
    return tuple((str(o[0]), str(o[1])) for o in value)


def _pagination(value: Any) -> tuple[int, int]:
    if value is None:
        return MAX_LIMIT, 0
    problem = QueryError(f'pagination must be {{"limit": 1..{MAX_LIMIT}, "offset": >= 0}}')
    if not isinstance(value, dict):
        raise problem
    limit, offset = value.get("limit", MAX_LIMIT), value.get("offset", 0)
    if any(isinstance(v, bool) or not isinstance(v, int) for v in (limit, offset)):
        raise problem
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise problem
    return limit, offset


def _include(value: Any) -> tuple[bool, bool]:
    if value is None:
        return False, False
    if not isinstance(value, dict):
        raise QueryError('include must be an object such as {"comparisons": {"mode": "previous_period"}}')
    comparisons = value.get("comparisons")
    if comparisons not in (None, False) and comparisons != {"mode": "previous_period"}:
        raise QueryError('include.comparisons supports {"mode": "previous_period"} only')
    total_rows = value.get("total_rows", False)
    if not isinstance(total_rows, bool):
        raise QueryError("include.total_rows must be true or false")
    return bool(comparisons), total_rows


def resolve(date_range: str | tuple[date, date], today: date, first_day: date) -> tuple[date, date]:
    """The local days a date range covers, today included where the shortcut includes it."""
    if isinstance(date_range, tuple):
        return date_range
    if date_range in ("day", "24h", "realtime"):
        return (today - timedelta(days=1) if date_range == "24h" else today), today
    if date_range.endswith("d"):
        return today - timedelta(days=int(date_range[:-1]) - 1), today
    if date_range == "month":
        return today.replace(day=1), today
    if date_range.endswith("mo"):
        months = today.year * 12 + today.month - 1 - (int(date_range[:-2]) - 1)
        return date(months // 12, months % 12 + 1, 1), today
    if date_range == "year":
        return date(today.year, 1, 1), today
    return min(first_day, today), today  # "all"


def check_size(query: Query, start: date, end: date) -> None:
    """Refuses a question larger than any dashboard or report asks (see MAX_RANGE_DAYS and MAX_BUCKETS): its
    work grows with its days and buckets, and a hostile one could otherwise hold the server for minutes."""
    days = (end - start).days + 1
    if days > MAX_RANGE_DAYS:
        raise QueryError(f"date_range spans {days:,} days; the limit is {MAX_RANGE_DAYS:,} days (about 27 years)")
    if query.time == "time:hour" and days > 2:
        raise QueryError("time:hour is available for ranges of up to two days; use time:day beyond")
    per_bucket = {"time:day": 1, "time:week": 7, "time:month": 28}.get(query.time or "")
    if per_bucket is None:
        return
    buckets = -(-days // per_bucket)  # an upper bound: weeks and months may be cut at both ends
    limit = MAX_BREAKDOWN_BUCKETS if query.breakdown else MAX_BUCKETS
    if buckets > limit:
        what = "a time series with a breakdown" if query.breakdown else "a time series"
        raise QueryError(
            f"{query.time} over {days:,} days makes about {buckets:,} buckets; {what} has at most {limit:,}: "
            "ask for a shorter range or a coarser time dimension (time:week, time:month)"
        )


def previous(start: date, end: date) -> tuple[date, date]:
    """The period of the same length just before: what comparisons compare against."""
    length = end - start + timedelta(days=1)
    return start - length, start - timedelta(days=1)


def iso(moment: date | datetime) -> str:
    return moment.isoformat()
