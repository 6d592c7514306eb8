"""Visits rebuilt from raw events: the 30-minute gap, bounces, entry/exit pages, midnight joins."""

from __future__ import annotations

from typing import NamedTuple

from analytics.visits import Visit, build, entry_page_or_first, unique_visitors

MIN = 60_000


class E(NamedTuple):
    ts: int
    visitor_id: int
    name: str = "pageview"
    pathname: str = "/"
    interactive: bool = True


def summary(visits: list[Visit]) -> list[tuple[int, int, int, bool, str, str, int]]:
    return [(v.visitor, v.pageviews, v.interactions, v.bounce, v.entry_page, v.exit_page, v.duration_s) for v in visits]


def test_a_gap_over_30_minutes_starts_a_new_visit() -> None:
    events = [E(0, 1, pathname="/a"), E(10 * MIN, 1, pathname="/b"), E(40 * MIN + 1, 1, pathname="/c")]
    visits, visit_of = build(events)
    assert summary(visits) == [(1, 2, 0, False, "/a", "/b", 600), (1, 1, 0, True, "/c", "/c", 0)]
    assert visit_of == [0, 0, 1]


def test_exactly_30_minutes_continues_the_visit() -> None:
    visits, _ = build([E(0, 1), E(30 * MIN, 1)])
    assert len(visits) == 1 and visits[0].duration_s == 1800


def test_interleaved_visitors_are_separate_visits() -> None:
    visits, visit_of = build([E(0, 1), E(MIN, 2), E(2 * MIN, 1, pathname="/x")])
    assert visit_of == [0, 1, 0]
    assert unique_visitors(visits) == 2
    assert [v.bounce for v in visits] == [False, True]


def test_interactive_custom_events_prevent_a_bounce_others_do_not() -> None:
    clicked, _ = build([E(0, 1), E(MIN, 1, name="Signup")])
    passive, _ = build([E(0, 1), E(MIN, 1, name="Video", interactive=False)])
    assert clicked[0].bounce is False and clicked[0].interactions == 1
    assert passive[0].bounce is True


def test_engagement_pings_neither_extend_nor_start_visits() -> None:
    visits, visit_of = build([E(0, 1), E(5 * MIN, 1, name="engagement"), E(50 * MIN, 1, name="engagement")])
    assert len(visits) == 1
    assert visits[0].duration_s == 0 and visits[0].bounce
    assert visit_of == [0, 0, -1]


def test_a_visit_spanning_utc_midnight_is_one_hash_and_nothing_else_joins_two() -> None:
    midnight = 24 * 60 * MIN
    events = [E(midnight - 5 * MIN, 7, pathname="/before"), E(midnight + 5 * MIN, 7, "pageview", "/after")]
    visits, visit_of = build(events)
    assert summary(visits) == [(7, 2, 0, False, "/before", "/after", 600)]
    assert visit_of == [0, 0]
    # Under another hash (today's: the ingest found no visit to continue), two visits.
    assert len(build([events[0], events[1]._replace(visitor_id=8)])[0]) == 2


def test_a_visit_of_custom_events_only_enters_on_its_first_page() -> None:
    events = [E(0, 1, name="Signup", pathname="/api")]
    visits, _ = build(events)
    assert visits[0].entry_page == "" and entry_page_or_first(visits[0], events) == "/api"
