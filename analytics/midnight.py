"""Visits across UTC midnight: whether an event just after midnight continues a visit under yesterday's hash, and
when yesterday's salt can go.

An event after midnight continues a visit when its hash under yesterday's salt had an event (engagement pings
aside, as in analytics/visits.py) at most 30 minutes before; the visit then keeps that hash until it ends, and
everyone else gets today's. `OpenVisits` holds the last event of the hashes that can: those active in the last
30 minutes of a UTC day, and those whose visit went on past its midnight. It learns of committed events only
(the batch writer tells it), so no decision rests on an event the store does not hold, and at start it is
rebuilt from the store, which is also what the salt's deletion is decided from (any process, the CLI too).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from analytics import privacy
from analytics.beacon import ENGAGEMENT
from analytics.visits import TIMEOUT_MS

if TYPE_CHECKING:
    from analytics.store.base import Store

DAY_MS = 86_400_000
CAP_MS = privacy.SALT_KEPT_AT_MOST // timedelta(milliseconds=1)
_EPOCH = date(1970, 1, 1)


class Seen(Protocol):
    """What the map reads of a committed event (events.Event has it)."""

    @property
    def site_id(self) -> int: ...
    @property
    def ts(self) -> int: ...
    @property
    def visitor_id(self) -> int: ...
    @property
    def name(self) -> str: ...


class OpenVisits:
    """(site, hash) -> last event, by the UTC day of the salt the hash is under; a few thousand entries on a busy
    site (its visitors of 23:30-24:00), kept until that salt goes."""

    def __init__(self) -> None:
        self._days: dict[int, dict[tuple[int, int], int]] = {}

    def continues(self, site_id: int, visitor_id: int, ts: int) -> bool:
        """Whether an event at `ts` whose hash under yesterday's salt is `visitor_id` continues that hash's visit:
        its last event at most 30 minutes before (the visit builder's rule), and no later than
        SALT_KEPT_AT_MOST after midnight."""
        day, into_day = divmod(ts, DAY_MS)
        seen = self._days.get(day - 1)
        if seen is None or into_day > CAP_MS:
            return False
        last = seen.get((site_id, visitor_id))
        return last is not None and ts - last <= TIMEOUT_MS

    def record(self, events: Iterable[Seen]) -> None:
        """Committed events: those of the last 30 minutes of a day, and those that continued yesterday's visits
        (one comparison for all the others)."""
        for event in events:
            if event.name == ENGAGEMENT:
                continue  # it neither extends a visit nor starts one
            day, into_day = divmod(event.ts, DAY_MS)
            if into_day >= DAY_MS - TIMEOUT_MS:
                self._remember(day, event.site_id, event.visitor_id, event.ts)
            elif into_day <= CAP_MS and self.continues(event.site_id, event.visitor_id, event.ts):
                self._remember(day - 1, event.site_id, event.visitor_id, event.ts)

    def _remember(self, day: int, site_id: int, visitor_id: int, ts: int) -> None:
        seen = self._days.setdefault(day, {})
        key = (site_id, visitor_id)
        if seen.get(key, ts - 1) < ts:
            seen[key] = ts

    def forget_before(self, day: date) -> None:
        """Drops the hashes of the salts that are gone."""
        number = (day - _EPOCH).days
        for old in [d for d in self._days if d < number]:
            del self._days[old]

    async def load(self, store: Store, now: datetime) -> None:
        """Rebuilt from the store at start: the hashes that continue yesterday's visits, and those of the day's
        last 30 minutes so far."""
        now_ms = _ms(now)
        day = now_ms // DAY_MS
        for site_id, visitor_id, ts in await continuing(store, now_ms):
            self._remember(day - 1, site_id, visitor_id, ts)
        last_minutes = (day + 1) * DAY_MS - TIMEOUT_MS
        if now_ms >= last_minutes:
            for site_id, visitor_id, ts in await store.visitors_last_seen(last_minutes, now_ms + 1):
                self._remember(day, site_id, visitor_id, ts)


async def continuing(store: Store, now_ms: int) -> list[tuple[int, int, int]]:
    """(site id, hash, last event) of yesterday's hashes that may still continue a visit at `now_ms`: those with an
    event in the last 30 minutes that also had one in the last 30 minutes before midnight (a hash under today's
    salt never did: it is another 64-bit value). Two index ranges of each site's events."""
    midnight = now_ms - now_ms % DAY_MS
    if now_ms - midnight > CAP_MS:
        return []
    return await store.visitors_last_seen(
        now_ms - TIMEOUT_MS, now_ms + 1, seen_between=(midnight - TIMEOUT_MS, midnight)
    )


async def salts_expire_before(store: Store, now: datetime) -> date:
    """The day whose salt and later ones are kept: privacy.salt_deadline applied to what the store holds (so that
    every process, and `analytics purge`, decides alike)."""
    found = await continuing(store, _ms(now))
    last = max((ts for _, _, ts in found), default=None)
    return privacy.expired_before(now, None if last is None else datetime.fromtimestamp(last / 1000, UTC))


def _ms(now: datetime) -> int:
    return int(now.timestamp() * 1000)
