"""Visits across UTC midnight: one visit keeps its hash, a returning visitor's two days share no value, and
yesterday's salt goes as soon as no visit can continue under it (at most privacy.SALT_KEPT_AT_MOST after)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from analytics import apikeys, privacy, rollup
from analytics.app import upkeep
from analytics.config import Config
from analytics.events import COLUMNS
from analytics.jobs import purge
from analytics.midnight import OpenVisits
from analytics.privacy import Anonymizer, SaltBook, parse_ip
from analytics.visits import TIMEOUT_MS
from tests.conftest import CHROME_UA, Clock, Harness, pageview, start

YESTERDAY, TODAY = date(2026, 3, 14), date(2026, 3, 15)
MIDNIGHT = datetime(2026, 3, 15, tzinfo=UTC)
MIDNIGHT_MS = int(MIDNIGHT.timestamp() * 1000)
IP = "193.51.24.77"  # the harness's default address and User-Agent: one returning visitor
DESCRIPTIVE = {
    *("site_id", "ts", "name", "hostname", "pathname", "referrer", "source"),
    *("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"),
    *("browser", "browser_version", "os", "os_version", "device", "screen", "country", "region", "city"),
    *("props", "revenue_micros", "revenue_currency", "interactive", "scroll_depth", "engaged_ms"),
}
"""What an event says of the page and the visitor's coarse traits: the same for everyone with the same browser
in the same country. Every other column could link rows of one visitor."""


def at(hour: int, minute: int, second: int = 0) -> datetime:
    """A time around the midnight of March 14 to 15 (hours from 12 are on the 14th)."""
    day = YESTERDAY if hour >= 12 else TODAY
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


async def visit(h: Harness, *hits: tuple[datetime, str]) -> None:
    for when, path in hits:
        h.clock.now = when
        assert (await h.send(pageview(url=f"https://example.com{path}"))).status_code == 202


async def hash_under(h: Harness, day: date) -> int:
    """The visitor's hash under the stored salt of `day` (while it exists)."""
    book = SaltBook(lambda d, c: _never())
    book.remember(day, (await h.salts())[day.isoformat()])
    identity = Anonymizer(24, 48, book, lambda *_: False).identify(
        1, parse_ip(IP), CHROME_UA.encode(), datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    )
    assert identity is not None
    return identity.visitor_id


async def _never() -> bytes:
    raise AssertionError("no salt is created here")


async def day_rows(h: Harness, day: date) -> dict[str, Any]:
    """The day's rollup (UTC site): totals, entry and exit pages."""
    start_ms, end_ms = rollup.day_bounds(day, ZoneInfo("UTC"))
    events = await h.store.events_between(1, start_ms - TIMEOUT_MS, end_ms + rollup.LOOKAHEAD_MS)
    rows = rollup.rollup_day(events, day, ZoneInfo("UTC"), filters=None, min_visitors=1)
    daily = [r for r in rows if r.period == rollup.DAY]
    totals = next((r for r in daily if not r.dimension), None)
    return {
        "visitors": totals.visitors if totals else 0,
        "visits": totals.visits if totals else 0,
        "pageviews": totals.pageviews if totals else 0,
        "duration": totals.duration if totals else 0,
        "entry": sorted(r.value for r in daily if r.dimension == "visit:entry_page"),
        "exit": sorted(r.value for r in daily if r.dimension == "visit:exit_page"),
    }


async def stored_salts(h: Harness) -> list[str]:
    return list(await h.salts())


def test_only_the_visitor_hash_could_link_two_rows() -> None:
    assert set(COLUMNS) - DESCRIPTIVE == {"visitor_id"}  # a new column must say here whether it could link


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (at(23, 50), at(0, 40)),
        (at(23, 40), at(0, 20)),  # in the first 30 minutes after midnight: the old code stored both hashes here
        (at(23, 59), at(0, 29, 1)),  # 30 minutes and 1 second
    ],
)
async def test_a_returning_visitor_s_two_days_share_no_value(
    harness: Harness, before: datetime, after: datetime
) -> None:
    await visit(harness, (before, "/yesterday"), (after, "/today"))
    rows = await harness.rows()
    assert set(rows[0]) == set(COLUMNS)  # no column beside the one hash (none computed from both salts)
    first, second = rows
    h0, h1 = await hash_under(harness, YESTERDAY), await hash_under(harness, TODAY)
    assert (first["visitor_id"], second["visitor_id"]) == (h0, h1)
    assert h0 not in second.values() and h1 not in first.values()
    assert {k for k in first if first[k] == second[k]} <= DESCRIPTIVE
    assert (await day_rows(harness, YESTERDAY))["visits"] == 1
    assert (await day_rows(harness, TODAY))["visits"] == 1


async def test_a_visit_across_midnight_keeps_its_first_hash_and_counts_once_on_its_first_day(
    harness: Harness,
) -> None:
    await visit(harness, (at(23, 50), "/a"), (at(0, 10), "/b"), (at(0, 35), "/c"))
    h0 = await hash_under(harness, YESTERDAY)
    assert [r["visitor_id"] for r in await harness.rows()] == [h0, h0, h0]
    assert await day_rows(harness, YESTERDAY) == {
        "visitors": 1,
        "visits": 1,
        "pageviews": 3,
        "duration": 45 * 60,
        "entry": ["/a"],
        "exit": ["/c"],
    }
    assert (await day_rows(harness, TODAY))["visits"] == 0


async def test_a_gap_after_a_visit_across_midnight_starts_a_visit_under_today_s_hash(harness: Harness) -> None:
    await visit(harness, (at(23, 50), "/a"), (at(0, 10), "/b"), (at(0, 50), "/c"))
    h0, h1 = await hash_under(harness, YESTERDAY), await hash_under(harness, TODAY)
    rows = await harness.rows()
    assert [r["visitor_id"] for r in rows] == [h0, h0, h1]
    assert h0 not in rows[2].values() and all(h1 not in r.values() for r in rows[:2])
    assert await day_rows(harness, YESTERDAY) == {
        "visitors": 1,
        "visits": 1,
        "pageviews": 2,
        "duration": 20 * 60,
        "entry": ["/a"],
        "exit": ["/b"],
    }
    assert (await day_rows(harness, TODAY))["entry"] == ["/c"]


async def test_engagement_pings_neither_carry_a_visit_across_midnight_nor_keep_the_salt(harness: Harness) -> None:
    await visit(harness, (at(23, 50), "/a"))
    harness.clock.now = at(0, 15)
    await harness.send({"n": "engagement", "u": "https://example.com/a", "d": "example.com", "e": 5000})
    await visit(harness, (at(0, 25), "/b"))  # 35 minutes after the last pageview
    h0, h1 = await hash_under(harness, YESTERDAY), await hash_under(harness, TODAY)
    assert [r["visitor_id"] for r in await harness.rows()] == [h0, h0, h1]  # the ping was within the visit
    await upkeep(harness.services, at(0, 26))
    assert await stored_salts(harness) == ["2026-03-15"]


@pytest.mark.parametrize("restart_at", [at(0, 5), at(0, 20)])
async def test_a_restart_around_midnight_does_not_cut_a_visit(config: Config, restart_at: datetime) -> None:
    hits = [(at(23, 50), "/a"), (at(0, 10), "/b"), (at(0, 35), "/c")]  # 00:35 is 45 minutes after 23:50
    before = [hit for hit in hits if hit[0] < restart_at]
    clock = Clock(at(23, 50))
    async with start(config, clock) as h:
        await h.add_site()
        await visit(h, *before)
    clock.now = restart_at
    async with start(config, clock) as h:
        await visit(h, *hits[len(before) :])
        h0 = await hash_under(h, YESTERDAY)
        assert [r["visitor_id"] for r in await h.rows()] == [h0, h0, h0]
        assert (await day_rows(h, YESTERDAY))["exit"] == ["/c"]


async def test_the_open_days_and_realtime_count_a_visit_across_midnight_once(config: Config) -> None:
    clock = Clock(at(23, 58))
    async with start(config, clock) as h:
        await h.add_site()
        await visit(h, (at(23, 58), "/a"), (at(0, 1), "/b"))
        site = (await h.store.list_sites())[0]
        key = apikeys.new_key()
        await h.store.add_api_key("t", apikeys.digest(key), apikeys.display_prefix(key), [site.id], 0)

        async def ask(date_range: Any) -> list[int]:
            body = {"site_id": "example.com", "date_range": date_range, "metrics": ["visitors", "visits", "pageviews"]}
            response = await h.client.post("/api/v2/query", json=body, headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 200, response.text
            return list(response.json()["results"][0]["metrics"])

        clock.now = at(0, 2)
        assert await ask("realtime") == [1, 1, 2]
        realtime = await h.client.get(
            "/api/v1/stats/realtime/visitors",
            params={"site_id": "example.com"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert realtime.json() == 1
        assert await ask(["2026-03-14", "2026-03-14"]) == [1, 1, 2]  # neither day is rolled up: both open
        assert await ask("day") == [0, 0, 0]
        assert await ask("24h") == [1, 1, 2]


@pytest.mark.parametrize(
    ("now", "last", "kept"),
    [
        (at(0, 0, 1), None, False),  # nobody in the day's last 30 minutes: gone at midnight
        (at(0, 19), at(23, 50), True),
        (at(0, 20, 1), at(23, 50), False),
        (at(3, 0), at(2, 45), True),  # a visit still going on
        (at(5, 59), at(5, 58), True),
        (at(6, 0, 1), at(5, 59), False),  # SALT_KEPT_AT_MOST after midnight, whatever goes on
        (MIDNIGHT + timedelta(hours=13), None, False),
    ],
)
def test_the_salt_deadline(now: datetime, last: datetime | None, kept: bool) -> None:
    assert privacy.expired_before(now, last) == (YESTERDAY if kept else TODAY)
    assert privacy.salt_deadline(YESTERDAY, last) <= MIDNIGHT + privacy.SALT_KEPT_AT_MOST


async def test_yesterday_s_salt_goes_30_minutes_after_the_last_event_that_could_continue_a_visit(
    harness: Harness,
) -> None:
    await visit(harness, (at(23, 50), "/a"), (at(0, 10), "/b"), (at(0, 35), "/c"))
    for now, salts in [
        (at(1, 5), ["2026-03-14", "2026-03-15"]),
        (at(1, 5, 1), ["2026-03-15"]),
    ]:
        await upkeep(harness.services, now)
        assert await stored_salts(harness) == salts
    assert harness.services.salts.get(YESTERDAY) is None
    await visit(harness, (at(1, 6), "/d"))
    assert (await harness.rows())[-1]["visitor_id"] == await hash_under(harness, TODAY)


async def test_the_purge_job_keeps_and_deletes_yesterday_s_salt_by_the_same_rule(harness: Harness) -> None:
    await visit(harness, (at(23, 50), "/a"), (at(0, 10), "/b"))
    await purge(harness.store, at(0, 40), 48, 25)
    assert await stored_salts(harness) == ["2026-03-14", "2026-03-15"]
    await purge(harness.store, at(0, 40, 1), 48, 25)
    assert await stored_salts(harness) == ["2026-03-15"]


async def test_a_server_started_past_the_deadline_deletes_the_salt_at_once(config: Config) -> None:
    clock = Clock(at(23, 50))
    async with start(config, clock) as h:
        await h.add_site()
        await visit(h, (at(23, 50), "/a"))
    clock.now = at(0, 21)
    async with start(config, clock) as h:
        assert await stored_salts(h) == ["2026-03-15"]
        await visit(h, (at(0, 22), "/b"))
        assert (await h.rows())[-1]["visitor_id"] == await hash_under(h, TODAY)


async def test_a_visit_is_followed_past_midnight_for_six_hours_at_most(harness: Harness) -> None:
    hits = [(at(23, 50) + timedelta(minutes=20 * i), f"/{i}") for i in range(20)]  # until 06:10
    await visit(harness, *hits[:19])
    h0 = await hash_under(harness, YESTERDAY)
    await upkeep(harness.services, at(5, 59))
    assert await stored_salts(harness) == ["2026-03-14", "2026-03-15"]
    await upkeep(harness.services, at(6, 0, 1))
    assert await stored_salts(harness) == ["2026-03-15"]
    await visit(harness, hits[19])
    assert [r["visitor_id"] for r in await harness.rows()] == [h0] * 19 + [await hash_under(harness, TODAY)]


def test_the_map_of_open_visits_follows_the_visit_builder_s_30_minute_rule() -> None:
    class E:
        def __init__(self, ts: int, visitor_id: int = 7, name: str = "pageview") -> None:
            self.site_id, self.ts, self.visitor_id, self.name = 1, ts, visitor_id, name

    visits = OpenVisits()
    minute = 60_000
    visits.record([E(MIDNIGHT_MS - 31 * minute, visitor_id=8), E(MIDNIGHT_MS - 10 * minute)])
    assert not visits.continues(1, 8, MIDNIGHT_MS)  # its last event was before the day's last 30 minutes
    assert visits.continues(1, 7, MIDNIGHT_MS + 20 * minute)
    assert not visits.continues(2, 7, MIDNIGHT_MS + 20 * minute)  # another site
    assert not visits.continues(1, 7, MIDNIGHT_MS + 20 * minute + 1)
    visits.record([E(MIDNIGHT_MS + 15 * minute), E(MIDNIGHT_MS + 40 * minute, name="engagement")])
    assert visits.continues(1, 7, MIDNIGHT_MS + 45 * minute)
    assert not visits.continues(1, 7, MIDNIGHT_MS + 45 * minute + 1)
    visits.forget_before(TODAY)
    assert not visits.continues(1, 7, MIDNIGHT_MS + 16 * minute)
