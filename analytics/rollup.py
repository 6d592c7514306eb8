"""Rollup: the raw events of one closed site-local day become aggregate rows (pure; the store writes them).

Every visit belongs to the day it starts in (site time zone), with all its events, even those after midnight.
Rows are per (period, bucket, dimension, value): the day's totals and one row per value of every dimension,
and hourly totals. Visit-level dimensions (entry page, source, location, device...) count the visits having
the value; event-level ones (page, event name, property) count the matching events and the visits and
visitors that contain them. Unique visitors are exact per day; longer ranges sum daily uniques.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from analytics import anonymity
from analytics.anonymity import Counts
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
RECENT_DAYS = 35
"""Filtered breakdowns by day are kept this many days: enough for a filtered 30d or month report; older filtered
breakdowns are kept by whole months."""
LOOKAHEAD_MS = 6 * 3_600_000
"""A visit starting late in the day is followed this far past midnight."""


FINE = frozenset({"event:page", "visit:entry_page", "visit:exit_page", "visit:referrer", "visit:region", "visit:city"})
"""Dimensions with thousands of values. A filtered breakdown is kept unless both its filter and its breakdown are
fine: pages by city, say, would need about as many rows as there are raw events (docs/aggregates.md)."""
ALL = "all"
"""`filters=ALL`: compute the rows under every filter (the rollup job); a (dimension, value) pair: under that one."""
Filter = tuple[str, str]


def pair_kept(filter_dimension: str, dimension: str) -> bool:
    """Whether the aggregates answer `dimension` broken down under a filter on `filter_dimension`."""
    return filter_dimension != dimension and not (filter_dimension in FINE and dimension in FINE)


def transposed(filter_dimension: str, dimension: str) -> bool:
    """Whether that breakdown is read from the rows of the opposite pair. A row under (F = f) for (B = v) holds
    exactly the figures of the row under (B = v) for (F = f): the visits having both values (or, for two event
    values, the events having both), counted the same way. So a coarse breakdown under a fine filter (sources
    of the visits that saw /pricing) is read from the rows of the fine breakdown under each coarse value (the
    pages of the visits from each source), which halves the filtered rows."""
    return filter_dimension in FINE and dimension not in FINE


def _stored(filter_dimension: str, dimension: str) -> bool:
    return pair_kept(filter_dimension, dimension) and not transposed(filter_dimension, dimension)


def is_fine(dimension: str) -> bool:
    return dimension in FINE


@dataclass(frozen=True, slots=True)
class Row:
    """One aggregate row: the dimension as its API name (or `props:<key>`), the value as text, and the filter it
    is under ("", "" for none; a filter with dimension "" is the filter's totals)."""

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
    filter_dimension: str = ""
    filter_value: str = ""


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


def write_bounds(day: date, tz: ZoneInfo) -> tuple[tuple[int, int], tuple[int, int, int]]:
    """What a day's write replaces: its [first, last) local hours, and its month as (month bucket, first day,
    last day)."""
    start, end = day_bounds(day, tz)
    first_of_month = day.replace(day=1)
    last_of_month = (first_of_month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return (local_hour(start, tz), local_hour(end, tz)), (
        month_number(day),
        day_number(first_of_month),
        day_number(last_of_month),
    )


def rollup_day(
    events: Sequence[Event],
    day: date,
    tz: ZoneInfo,
    filters: str | Filter | None = ALL,
    page_goals: Sequence[str] = (),
    *,
    min_visitors: int,
) -> list[Row]:
    """Rows for the visits starting on `day`, folded at `min_visitors` (k). `events` must cover the day from 30
    minutes before its start to LOOKAHEAD_MS after its end, in time order."""
    start, end = day_bounds(day, tz)
    return rollup_window(
        events, start, end, tz, day_number(day), filters, page_goals=page_goals, min_visitors=min_visitors
    )


class PageGoals:
    """Page goals (path patterns, `*` a wildcard): a pageview of a matching path also counts as the event
    "Visit <pattern>", so goals are broken down, filtered and converted like custom events."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.compiled = [(f"Visit {p}", re.compile(fnmatch.translate(p))) for p in patterns]
        self._seen: dict[str, list[str]] = {}

    def __call__(self, path: str) -> list[str]:
        found = self._seen.get(path)
        if found is None:
            found = [label for label, pattern in self.compiled if pattern.match(path)]
            if len(self._seen) < 100_000:
                self._seen[path] = found
        return found


# Accumulators: [last visitor seen, visitors, visits, pageviews, events, bounces, duration, the first visitors].
# Visits are processed grouped by visitor, so a key's distinct visitors are counted by comparing with the last one
# seen. The first k visitors are kept so that a row merged into `(other)` counts its people, not its rows.
Acc = dict[tuple[str, str, str, str], list[Any]]


def _add(
    acc: Acc, key: tuple[str, str, str, str], visitor: int, pageviews: int, events: int, bounce: int, s: int
) -> None:
    c = acc.get(key)
    if c is None:
        acc[key] = [visitor, 1, 1, pageviews, events, bounce, s, [visitor]]
        return
    if c[0] != visitor:
        c[0] = visitor
        c[1] += 1
        if c[1] <= _KEEP_IDS:
            c[7].append(visitor)
    c[2] += 1
    c[3] += pageviews
    c[4] += events
    c[5] += bounce
    c[6] += s


_KEEP_IDS = 50
"""Visitor ids kept per row: enough for any k the configuration accepts (privacy.min_visitors <= 50)."""


def _counts(c: list[Any]) -> Counts:
    return (c[1], c[2], c[3], c[4], c[5], c[6])


def anonymous(acc: Acc, k: int) -> dict[tuple[str, str, str, str], Counts]:
    """The rows of one bucket as they may be kept: the unfiltered totals (the site's) as they are, and
    everything else folded at k (analytics/anonymity.py): a filter whose value counts fewer than k visitors
    has no row at all, and in each breakdown the rows under k are merged into `(other)`. A value of k visitors
    or more that had to join `(other)` (to bring it to k) has no filtered row either: its figures under a filter,
    taken off `(other)`, would give the rare rows' (a filter's figures are its value's row in the breakdown)."""
    if k <= 1:
        return {key: _counts(c) for key, c in acc.items()}
    rows: dict[tuple[str, str, str, str], Counts] = {}
    ids = {key: c[7] for key, c in acc.items() if c[1] < k}
    unfiltered: dict[tuple[str, str, str], dict[tuple[str, str, str, str], Counts]] = {}
    for key, c in acc.items():
        if not key[0] and key[2]:
            unfiltered.setdefault(key[:3], {})[key] = _counts(c)
    hidden = {(key[0], key[1]) for key, c in acc.items() if key[0] and not key[2] and c[1] < k}
    for group, members in unfiltered.items():
        folded = anonymity.fold(members, k, (*group, anonymity.OTHER), ids)
        rows.update(folded)
        hidden |= {(key[2], key[3]) for key in members if key not in folded}  # merged, rare or not
    groups: dict[tuple[str, str, str], dict[tuple[str, str, str, str], Counts]] = {}
    for key, c in acc.items():
        if not key[0] and key[2]:
            continue  # done above
        if (key[0], key[1]) in hidden:
            continue
        if not key[2]:  # totals: the site's (exempt), or a filter's (at least k, checked above)
            rows[key] = _counts(c)
            continue
        groups.setdefault(key[:3], {})[key] = _counts(c)
    for group, members in groups.items():
        rows.update(anonymity.fold(members, k, (*group, anonymity.OTHER), ids))
    return _transposed_alike(rows, set(groups))


def _transposed_alike(
    rows: dict[tuple[str, str, str, str], Counts], groups: set[tuple[str, str, str]]
) -> dict[tuple[str, str, str, str], Counts]:
    """A pair (a filter value, a breakdown value) is listed under one filter only if it is listed the other
    way round too (when that group is kept) and its breakdown value is listed unfiltered: otherwise it joins
    its group's `(other)`. Folded each on its own, the pair (source Bing, campaign x) could be a row under
    the filter campaign = x while merged under source = Bing; taken off that `(other)`, it left the rare
    rows (found by the outside review: 1 visitor from Bing with a rare campaign). Moving rows of k visitors or
    more into `(other)` keeps it at k or more, and the rule is the same both ways round, so one pass does."""
    listed = {key for key in rows if key[0] and key[2] and key[3] != anonymity.OTHER}
    unfiltered = {(key[2], key[3]) for key in rows if not key[0] and key[2] and key[3] != anonymity.OTHER}
    kept: dict[tuple[str, str, str, str], Counts] = {}
    demoted: dict[tuple[str, str, str, str], Counts] = {}
    for key, counts in rows.items():
        fdim, fval, dim, val = key
        if key in listed and (
            (dim, val) not in unfiltered or ((dim, val, fdim) in groups and (dim, val, fdim, fval) not in listed)
        ):
            other = (fdim, fval, dim, anonymity.OTHER)
            demoted[other] = anonymity.plus(demoted.get(other, (0,) * len(counts)), counts)
            continue
        kept[key] = counts
    for other, counts in demoted.items():
        kept[other] = anonymity.plus(kept[other], counts) if other in kept else counts
    return kept


def rollup_window(
    events: Sequence[Event],
    start: int,
    end: int,
    tz: ZoneInfo,
    bucket: int,
    filters: str | Filter | None = ALL,
    active: bool = False,
    page_goals: Sequence[str] = (),
    *,
    min_visitors: int,
) -> list[Row]:
    """Rows (daily ones under `bucket`, and hourly ones) for the visits starting in [start, end) (with `active`:
    the visits with an event in it, for the realtime view): unfiltered,
    and under every filter (`ALL`), one filter (a (dimension, value) pair; its unfiltered rows are left out) or
    none (None).

    Under a filter on a visit-level dimension (source = Google), rows describe the matching visits and all their
    events. Under an event-level one (page = /pricing, goal = Signup, a property), they describe the visits
    containing a matching event, and count only the matching events as pageviews and events: for event-level
    breakdowns, the events matching both (the pages on which the goal was reached)."""
    visits, _ = build(events)
    visits = [v for v in visits if (v.end_ts >= start if active else v.start_ts >= start) and v.start_ts < end]
    goals = PageGoals(page_goals) if page_goals else None
    visits.sort(key=lambda v: v.visitor)  # a visitor's visits are consecutive: see Acc
    daily: Acc = {}
    hourly: dict[int, Acc] = defaultdict(dict)
    unfiltered = filters is None or filters == ALL
    single = filters if isinstance(filters, tuple) else None
    for visit in visits:
        first = events[visit.first]
        own = [events[i] for i in visit.events if events[i].name != ENGAGEMENT]
        if single is not None and not _has(single, visit, first, own, events, goals):
            continue  # under one filter, a visit without its value adds nothing: skip the work
        visit_items = _visit_items(visit, first, events)
        who, pageviews, bounce, seconds = visit.visitor, visit.pageviews, int(visit.bounce), visit.duration_s
        all_events = pageviews + sum(1 for e in own if e.name != PAGEVIEW)  # Plausible's `events`: all of them
        per_event = [_event_keys(e, goals) for e in own]
        matched: dict[tuple[str, str], list[int]] = {}  # event-level key -> [pageviews, events] of the visit
        for event, keys in zip(own, per_event, strict=True):
            for key in keys:
                found = matched.setdefault(key, [0, 0])
                found[0] += event.name == PAGEVIEW
                found[1] += 1
        hour = hourly[local_hour(visit.start_ts, tz)]
        if unfiltered:
            _add(daily, ("", "", "", ""), who, pageviews, all_events, bounce, seconds)
            _add(hour, ("", "", "", ""), who, pageviews, all_events, bounce, seconds)
            for d, v in visit_items:
                _add(daily, ("", "", d, v), who, pageviews, all_events, bounce, seconds)
            for (d, v), (pv, ev) in matched.items():
                _add(daily, ("", "", d, v), who, pv, ev, bounce, seconds)
        if filters is None:
            continue
        if filters == ALL:  # no filtered rows under an unknown fine value (no city, no referrer): never asked for
            visit_filters = [f for f in visit_items if f[1] or f[0] not in FINE]
            event_filters = [f for f in matched if f[1] or f[0] not in FINE]
            kept = _stored
        else:
            visit_filters = [f for f in visit_items if f == filters]
            event_filters = [f for f in matched if f == filters]
            kept = pair_kept
        for fd, fv in visit_filters:  # the visit's own figures, under each of its values
            _add(daily, (fd, fv, "", ""), who, pageviews, all_events, bounce, seconds)
            if filters != ALL:  # hours under a filter are answered from raw events only (docs/aggregates.md)
                _add(hour, (fd, fv, "", ""), who, pageviews, all_events, bounce, seconds)
            for d, v in visit_items:
                if kept(fd, d):
                    _add(daily, (fd, fv, d, v), who, pageviews, all_events, bounce, seconds)
            for (d, v), (pv, ev) in matched.items():
                if kept(fd, d):
                    _add(daily, (fd, fv, d, v), who, pv, ev, bounce, seconds)
        for fd, fv in event_filters:  # the matching events' figures
            pv, ev = matched[(fd, fv)]
            _add(daily, (fd, fv, "", ""), who, pv, ev, bounce, seconds)
            if filters != ALL:
                _add(hour, (fd, fv, "", ""), who, pv, ev, bounce, seconds)
            for d, v in visit_items:
                if kept(fd, d):
                    _add(daily, (fd, fv, d, v), who, pv, ev, bounce, seconds)
            both: dict[tuple[str, str], list[int]] = {}
            for event, keys in zip(own, per_event, strict=True):
                if (fd, fv) in keys:
                    for d, v in keys:
                        if kept(fd, d):
                            found = both.setdefault((d, v), [0, 0])
                            found[0] += event.name == PAGEVIEW
                            found[1] += 1
            for (d, v), (bpv, bev) in both.items():
                _add(daily, (fd, fv, d, v), who, bpv, bev, bounce, seconds)
    rows = [_row(DAY, bucket, key, c) for key, c in anonymous(daily, min_visitors).items()]
    rows += [_row(HOUR, h, key, c) for h, acc in hourly.items() for key, c in anonymous(acc, min_visitors).items()]
    return rows


def _visit_items(visit: Visit, first: Event, events: Sequence[Event]) -> list[tuple[str, str]]:
    """The visit's value of every visit-level dimension (its first event's, and its entry and exit pages)."""
    entry = entry_page_or_first(visit, events)
    return [
        ("visit:entry_page", entry),
        ("visit:exit_page", visit.exit_page or entry),
        ("visit:browser_version", _versioned(first.browser, first.browser_version)),
        ("visit:os_version", _versioned(first.os, first.os_version)),
        *((dimension, getattr(first, name)) for dimension, name in VISIT_FIELDS.items()),
    ]


def _has(
    wanted: Filter, visit: Visit, first: Event, own: list[Event], events: Sequence[Event], goals: PageGoals | None
) -> bool:
    """Whether the visit has the filter's value; a value of its first event is one attribute away."""
    field = VISIT_FIELDS.get(wanted[0])
    if field is not None:
        return bool(getattr(first, field) == wanted[1])
    if wanted[0].startswith("visit:"):
        return wanted in _visit_items(visit, first, events)
    return any(wanted in _event_keys(e, goals) for e in own)


def _event_keys(event: Event, goals: PageGoals | None) -> list[tuple[str, str]]:
    keys = [("event:name", event.name)]
    if event.name == PAGEVIEW:
        keys.append(("event:page", event.pathname))
        if goals is not None:
            keys += [("event:name", label) for label in goals(event.pathname)]
    if event.props:
        keys += [(f"props:{k}", v) for k, v in json.loads(event.props).items()]
    return keys


def _versioned(name: str, version: str) -> str:
    return f"{name} {version}".strip() if name else ""


def _row(period: int, bucket: int, key: tuple[str, str, str, str], c: Counts) -> Row:
    return Row(period, bucket, key[2], key[3], c[0], c[1], c[2], c[3], c[4], c[5], key[0], key[1])
