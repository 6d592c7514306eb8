"""Rollup: the raw events of one closed site-local day become aggregate rows (pure; the store writes them).

Every visit belongs to the day it starts in (site time zone), with all its events, even those after midnight.
Rows are per (period, bucket, dimension, value): the day's totals and one row per value of every dimension,
and hourly totals. Visit-level dimensions (entry page, source, location, device...) count the visits having
the value; event-level ones (page, event name, property) count the matching events and the visits and
visitors that contain them. Unique visitors are exact per day; longer ranges sum daily uniques.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from analytics.beacon import ENGAGEMENT, PAGEVIEW
from analytics.events import Event
from analytics.visits import Visit, build, entry_page_or_first

HOUR, DAY, MONTH = 0, 1, 2
TOTALS = 0
# Dimension ids as stored; names are the Stats API's. Custom properties get ids from PROPS_BASE upwards.
DIMENSIONS: dict[str, int] = {
    "event:page": 1,
    "visit:entry_page": 2,
    "visit:exit_page": 3,
    "visit:source": 4,
    "visit:referrer": 5,
    "visit:utm_source": 6,
    "visit:utm_medium": 7,
    "visit:utm_campaign": 8,
    "visit:utm_content": 9,
    "visit:utm_term": 10,
    "visit:country": 11,
    "visit:region": 12,
    "visit:city": 13,
    "visit:browser": 14,
    "visit:browser_version": 15,
    "visit:os": 16,
    "visit:os_version": 17,
    "visit:device": 18,
    "visit:screen": 19,
    "event:name": 20,
}
PROP_KEYS = 99
"""The dimension under which property *keys* are given ids; property values live under PROPS_BASE + key id."""
PROPS_BASE = 1000
# Visit-level dimensions read from the visit's first event (entry and exit pages come from the visit).
VISIT_FIELDS = {
    "visit:source": "source",
    "visit:referrer": "referrer",
    "visit:utm_source": "utm_source",
    "visit:utm_medium": "utm_medium",
    "visit:utm_campaign": "utm_campaign",
    "visit:utm_content": "utm_content",
    "visit:utm_term": "utm_term",
    "visit:country": "country",
    "visit:region": "region",
    "visit:city": "city",
    "visit:browser": "browser",
    "visit:os": "os",
    "visit:device": "device",
    "visit:screen": "screen",
}
LOOKAHEAD_MS = 6 * 3_600_000
"""A visit starting late in the day is followed this far past midnight."""


@dataclass(slots=True)
class Counters:
    visitors: set[int] = field(default_factory=set)
    visits: int = 0
    pageviews: int = 0
    events: int = 0
    bounces: int = 0
    duration: int = 0

    def add_visit(self, visit: Visit, custom_events: int) -> None:
        self.visitors.add(visit.visitor)
        self.visits += 1
        self.pageviews += visit.pageviews
        self.events += visit.pageviews + custom_events  # Plausible's `events`: pageviews and custom events
        self.bounces += visit.bounce
        self.duration += visit.duration_s


@dataclass(frozen=True, slots=True)
class Row:
    """One aggregate row, with the dimension as its API name (or `props:<key>`) and the value as text."""

    period: int
    bucket: int
    dimension: str
    value: str
    visitors: int
    visits: int
    pageviews: int
    events: int
    bounces: int
    duration: int


def day_bounds(day: date, tz: ZoneInfo) -> tuple[int, int]:
    """[start, end) of a local day in UTC milliseconds (23 or 25 hours on DST changes)."""
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def day_number(day: date) -> int:
    return day.toordinal()


def month_number(day: date) -> int:
    return day.year * 12 + day.month - 1


def local_hour(ts_ms: int, tz: ZoneInfo) -> int:
    """Hours since the Unix epoch on the site's wall clock: the hourly bucket of an instant."""
    local = datetime.fromtimestamp(ts_ms / 1000, tz)
    return (local.replace(tzinfo=None) - datetime(1970, 1, 1)) // timedelta(hours=1)


def rollup_day(events: Sequence[Event], day: date, tz: ZoneInfo) -> list[Row]:
    """Rows for the visits starting on `day`. `events` must cover the day from 30 minutes before its start to
    LOOKAHEAD_MS after its end, in time order."""
    start, end = day_bounds(day, tz)
    return rollup_window(events, start, end, tz, day_number(day))


def rollup_window(events: Sequence[Event], start: int, end: int, tz: ZoneInfo, bucket: int) -> list[Row]:
    """Rows (daily ones under `bucket`, and hourly ones) for the visits starting in [start, end)."""
    visits, _ = build(events)
    counters: defaultdict[tuple[str, str], Counters] = defaultdict(Counters)
    hourly: defaultdict[int, Counters] = defaultdict(Counters)
    for visit in visits:
        if not start <= visit.start_ts < end:
            continue
        first = events[visit.first]
        own = [events[i] for i in visit.events if events[i].name != ENGAGEMENT]
        custom = sum(1 for e in own if e.name != PAGEVIEW)
        counters[("", "")].add_visit(visit, custom)
        hourly[local_hour(visit.start_ts, tz)].add_visit(visit, custom)
        entry = entry_page_or_first(visit, events)
        for dimension, value in (
            ("visit:entry_page", entry),
            ("visit:exit_page", visit.exit_page or entry),
            ("visit:browser_version", _versioned(first.browser, first.browser_version)),
            ("visit:os_version", _versioned(first.os, first.os_version)),
            *((dimension, getattr(first, name)) for dimension, name in VISIT_FIELDS.items()),
        ):
            counters[(dimension, value)].add_visit(visit, custom)
        _event_dimensions(visit, own, counters)
    rows = [_row(DAY, bucket, key, c) for key, c in counters.items()]
    rows += [_row(HOUR, hour, ("", ""), c) for hour, c in hourly.items()]
    return rows


def _event_dimensions(visit: Visit, own: list[Event], counters: defaultdict[tuple[str, str], Counters]) -> None:
    matched: dict[tuple[str, str], list[int]] = {}  # key -> [pageviews, events]
    for event in own:
        keys = [("event:name", event.name)]
        if event.name == PAGEVIEW:
            keys.append(("event:page", event.pathname))
        if event.props:
            keys += [(f"props:{k}", v) for k, v in json.loads(event.props).items()]
        for key in keys:
            found = matched.setdefault(key, [0, 0])
            found[0] += event.name == PAGEVIEW
            found[1] += 1
    for key, (pageviews, events) in matched.items():
        c = counters[key]
        c.visitors.add(visit.visitor)
        c.visits += 1
        c.pageviews += pageviews
        c.events += events
        c.bounces += visit.bounce
        c.duration += visit.duration_s


def _versioned(name: str, version: str) -> str:
    return f"{name} {version}".strip() if name else ""


def _row(period: int, bucket: int, key: tuple[str, str], c: Counters) -> Row:
    return Row(period, bucket, key[0], key[1], len(c.visitors), c.visits, c.pageviews, c.events, c.bounces, c.duration)
