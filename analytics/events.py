"""The stored event: what is kept of a beacon once it has been gated, enriched and anonymised.

No field can hold an IP address or a User-Agent string; `visitor_id` is a 64-bit keyed hash that becomes
unlinkable once its day's salt is deleted.
"""

from __future__ import annotations

from typing import NamedTuple


class Event(NamedTuple):
    """A tuple, so that a batch binds straight into the INSERT with no per-event conversion."""

    site_id: int
    # Milliseconds since the Unix epoch, UTC, from the server's clock.
    ts: int
    visitor_id: int
    # The same visitor under yesterday's salt, set only in the first minutes after UTC midnight, so that the
    # rollup can join a visit that spans midnight.
    prev_visitor_id: int | None
    name: str
    hostname: str
    pathname: str
    # Referrer host only (no path, no query); empty for direct traffic and self-referrals.
    referrer: str
    source: str
    utm_source: str
    utm_medium: str
    utm_campaign: str
    utm_content: str
    utm_term: str
    browser: str
    browser_version: str
    os: str
    os_version: str
    device: str
    screen: str
    country: str
    region: str
    city: str
    # Custom properties as a JSON object of strings, or None.
    props: str | None
    revenue_micros: int | None
    revenue_currency: str | None
    interactive: bool
    scroll_depth: int | None
    engaged_ms: int | None


COLUMNS: tuple[str, ...] = Event._fields
