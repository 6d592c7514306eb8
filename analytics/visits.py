"""Visits, rebuilt from hashed raw events: a visitor's events with no gap longer than 30 minutes.

Pure: the rollup feeds it one site's events in time order and gets back the visits and, for every event, the
visit it belongs to (so that event-level breakdowns can be filtered by visit attributes, e.g. pages of visits
from Google). A visit that spans UTC midnight needs nothing special: the ingest stored its events after midnight
under the hash it started with (analytics/midnight.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from analytics.beacon import ENGAGEMENT, PAGEVIEW

TIMEOUT_MS = 30 * 60 * 1000


class RawEvent(Protocol):
    """The fields of a stored event the visit builder reads (events.Event has them)."""

    @property
    def ts(self) -> int: ...
    @property
    def visitor_id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def pathname(self) -> str: ...
    @property
    def interactive(self) -> bool: ...


@dataclass(slots=True)
class Visit:
    visitor: int
    """The visitor's hash when the visit started: the identity unique-visitor counts use."""
    first: int
    """Index of the visit's first event in the input: its source, device, location... describe the visit."""
    start_ts: int
    end_ts: int
    pageviews: int = 0
    interactions: int = 0
    """Interactive custom events (clicks, signups); engagement events and `interactive: false` do not count."""
    entry_page: str = ""
    exit_page: str = ""
    events: list[int] = field(default_factory=list)

    @property
    def bounce(self) -> bool:
        """One page seen and nothing done: Plausible's definition."""
        return self.pageviews <= 1 and self.interactions == 0

    @property
    def duration_s(self) -> int:
        return (self.end_ts - self.start_ts) // 1000


def build(events: Sequence[RawEvent]) -> tuple[list[Visit], list[int]]:
    """Visits of one site's events (sorted by time), and each event's visit index (-1: in no visit)."""
    visits: list[Visit] = []
    open_by_visitor: dict[int, int] = {}
    visit_of: list[int] = []
    for index, event in enumerate(events):
        current = open_by_visitor.get(event.visitor_id)
        if current is not None and event.ts - visits[current].end_ts > TIMEOUT_MS:
            current = None
        if current is None and event.name == ENGAGEMENT:
            visit_of.append(-1)  # an engagement ping after the visit ended starts nothing
            continue
        if current is None:
            current = len(visits)
            visits.append(Visit(event.visitor_id, index, event.ts, event.ts))
        open_by_visitor[event.visitor_id] = current
        _add(visits[current], index, event)
        visit_of.append(current)
    return visits, visit_of


def _add(visit: Visit, index: int, event: RawEvent) -> None:
    visit.events.append(index)
    if event.name == ENGAGEMENT:
        return  # engagement pings neither extend a visit's duration nor make it interactive
    visit.end_ts = max(visit.end_ts, event.ts)
    if event.name == PAGEVIEW:
        visit.pageviews += 1
        if not visit.entry_page:
            visit.entry_page = event.pathname
        visit.exit_page = event.pathname
    elif event.interactive:
        visit.interactions += 1


def entry_page_or_first(visit: Visit, events: Sequence[RawEvent]) -> str:
    """A visit made only of custom events (an API client, say) enters on its first event's page."""
    return visit.entry_page or events[visit.first].pathname


def unique_visitors(visits: Iterable[Visit]) -> int:
    return len({v.visitor for v in visits})
