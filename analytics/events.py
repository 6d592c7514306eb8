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
    # The hash under the salt of the UTC day, or of the day before for an event of a visit that started before
    # midnight and goes on (analytics/midnight.py): one hash per event, never both.
    visitor_id: int
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
