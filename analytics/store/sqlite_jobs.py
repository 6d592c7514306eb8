"""A day's rollup as a worker process runs it: read the day's raw events from the events file, compute its rows
(analytics/rollup.py, pure Python: ~190 s for a 205,000-event day on these machines) and write them to the
aggregates file in one transaction. Nothing of it runs in the server's interpreter, and the aggregates file's
write lock is not the one ingest's commits take.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from analytics import rollup
from analytics.store.sqlite import Files, read_events
from analytics.store.sqlite_rollup import write_day
from analytics.visits import TIMEOUT_MS


def roll_day(
    files: Files,
    site_id: int,
    day_ordinal: int,
    timezone: str,
    page_goals: tuple[str, ...],
    now_ms: int,
    min_visitors: int,
) -> tuple[int, int]:
    """Rolls up one closed local day (replacing an earlier rollup of it); returns (visits, aggregate rows)."""
    tz = ZoneInfo(timezone)
    day = date.fromordinal(day_ordinal)
    start, end = rollup.day_bounds(day, tz)
    events = read_events(files.events, site_id, start - TIMEOUT_MS, end + rollup.LOOKAHEAD_MS)
    rows = rollup.rollup_day(events, day, tz, page_goals=page_goals, min_visitors=min_visitors)
    hours, month = rollup.write_bounds(day, tz)
    write_day(
        Path(files.aggregates), files.busy_timeout_ms, site_id, rollup.day_number(day), hours, month, rows, now_ms
    )
    totals = next((r for r in rows if r.period == rollup.DAY and not r.dimension and not r.filter_dimension), None)
    return (totals.visits if totals else 0), len(rows)
