"""The Stats API: Plausible v2 shape, aggregates merged with the open day, keys, and honest refusals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from analytics import answers, apikeys, openday, rollup
from analytics import stats as stats_module
from analytics.config import Config
from analytics.jobs import purge, rollup_site
from analytics.query import parse
from analytics.sites import check_goal
from tests.conftest import IPHONE_UA, Clock, Harness, pageview, start


@pytest.fixture
async def stats(config: Config) -> AsyncIterator[tuple[Harness, str]]:
    """Three days of traffic in Paris: March 10 and 11 rolled up, March 12 (today) still open."""
    clock = Clock(datetime(2026, 3, 10, 9, tzinfo=UTC))
    async with start(config, clock) as h:
        await h.add_site("example.com", timezone="Europe/Paris", allowed_props=("plan",))
        await h.send(pageview(referrer="https://www.google.com/"))
        await h.send(pageview(url="https://example.com/pricing", referrer="https://www.google.com/"))
        await h.send(pageview(), headers={"User-Agent": IPHONE_UA, "X-Forwarded-For": "90.84.0.9"})
        clock.now = datetime(2026, 3, 11, 15, tzinfo=UTC)
        await h.send(pageview(name="Signup", props={"plan": "pro"}))
        await h.send(pageview(url="https://example.com/blog"))
        clock.now = datetime(2026, 3, 12, 10, tzinfo=UTC)
        site = next(s for s in await h.store.list_sites() if s.domain == "example.com")
        assert (await rollup_site(h.store, site, clock.now, min_visitors=1)).days == [
            datetime(2026, 3, 10).date(),
            datetime(2026, 3, 11).date(),
        ]
        await h.send(pageview(referrer="https://news.ycombinator.com/"))  # today: from raw events
        key = apikeys.new_key()
        await h.store.add_api_key("test", apikeys.digest(key), apikeys.display_prefix(key), [site.id], 0)
        yield h, key


async def ask(h: Harness, key: str, body: dict[str, Any]) -> Any:
    response = await h.client.post("/api/v2/query", json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    return response.json()


BASE = {"site_id": "example.com", "date_range": "7d"}


async def test_totals_merge_rolled_up_days_with_today(stats: tuple[Harness, str]) -> None:
    h, key = stats
    answer = await ask(
        h,
        key,
        {
            **BASE,
            "metrics": [
                "visitors",
                "visits",
                "pageviews",
                "events",
                "bounce_rate",
                "views_per_visit",
                "visit_duration",
            ],
        },
    )
    # Mar 10: 2 visitors, 2 visits (one of 2 pageviews), Mar 11: 1 visitor, 1 visit (Signup + pageview),
    # Mar 12: 1 visitor, 1 visit. Multi-day visitors are sums of daily uniques.
    assert answer["results"] == [{"metrics": [4, 4, 5, 6, 50, 1.25, 0], "dimensions": []}]
    assert answer["query"]["date_range"] == ["2026-03-06", "2026-03-12"]
    assert "daily unique" in answer["meta"]["unique_visitors"]


async def test_breakdown_by_source_with_percentage(stats: tuple[Harness, str]) -> None:
    h, key = stats
    answer = await ask(
        h, key, {**BASE, "metrics": ["visitors", "pageviews", "percentage"], "dimensions": ["visit:source"]}
    )
    assert answer["results"] == [
        {"metrics": [2, 2, 50.0], "dimensions": [""]},
        {"metrics": [1, 2, 25.0], "dimensions": ["Google"]},
        {"metrics": [1, 1, 25.0], "dimensions": ["Hacker News"]},
    ]


async def test_goals_and_properties(stats: tuple[Harness, str]) -> None:
    h, key = stats
    goals = await ask(
        h, key, {**BASE, "metrics": ["visitors", "events", "conversion_rate"], "dimensions": ["event:goal"]}
    )
    assert goals["results"] == [{"metrics": [1, 1, 25.0], "dimensions": ["Signup"]}]
    plans = await ask(h, key, {**BASE, "metrics": ["visitors"], "dimensions": ["event:props:plan"]})
    assert plans["results"] == [{"metrics": [1], "dimensions": ["pro"]}]


async def test_daily_series_has_every_day_and_compares_with_the_previous_period(stats: tuple[Harness, str]) -> None:
    h, key = stats
    answer = await ask(
        h,
        key,
        {
            "site_id": "example.com",
            "date_range": ["2026-03-10", "2026-03-12"],
            "metrics": ["visitors", "pageviews"],
            "dimensions": ["time:day"],
            "include": {"comparisons": {"mode": "previous_period"}, "total_rows": True},
        },
    )
    assert [(r["dimensions"], r["metrics"]) for r in answer["results"]] == [
        (["2026-03-10"], [2, 3]),
        (["2026-03-11"], [1, 1]),
        (["2026-03-12"], [1, 1]),
    ]
    assert answer["results"][0]["comparison"]["metrics"] == [0, 0]
    assert answer["meta"]["total_rows"] == 3
    assert answer["meta"]["comparison_date_range"] == ["2026-03-07", "2026-03-09"]


async def test_hourly_series_of_today(stats: tuple[Harness, str]) -> None:
    h, key = stats
    answer = await ask(
        h, key, {"site_id": "example.com", "date_range": "day", "metrics": ["visits"], "dimensions": ["time:hour"]}
    )
    assert len(answer["results"]) == 24
    assert [r for r in answer["results"] if r["metrics"] != [0]] == [
        {"metrics": [1], "dimensions": ["2026-03-12 11:00:00"]}
    ]  # 10:00 UTC is 11:00 in Paris


async def test_last_24_hours_come_from_raw_events(stats: tuple[Harness, str]) -> None:
    h, key = stats
    body = {"site_id": "example.com", "date_range": "24h", "metrics": ["visitors", "pageviews"]}
    answer = await ask(h, key, {**body, "include": {"comparisons": {"mode": "previous_period"}}})
    # Since 10:00 UTC yesterday: the visit of March 11 at 15:00 and today's at 10:00.
    assert answer["results"][0]["metrics"] == [2, 2]
    assert answer["results"][0]["comparison"]["metrics"] == [0, 0]  # March 10 traffic was at 09:00 UTC
    assert answer["query"]["date_range"] == ["2026-03-11T11:00:00", "2026-03-12T11:00:00"]
    hourly = await ask(h, key, {**body, "dimensions": ["time:hour"]})
    busy = {r["dimensions"][0]: r["metrics"] for r in hourly["results"] if r["metrics"] != [0, 0]}
    assert busy == {"2026-03-11 16:00:00": [1, 1], "2026-03-12 11:00:00": [1, 1]}


async def test_the_last_24_hours_are_computed_outside_the_servers_interpreter(
    stats: tuple[Harness, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy site's day of events is seconds of Python: in a thread of the server it held the GIL against ingest."""

    def not_here(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("rollup_window ran in the server's process")

    monkeypatch.setattr(rollup, "rollup_window", not_here)
    h, key = stats
    for date_range in ("24h", "realtime"):
        answer = await ask(h, key, {"site_id": "example.com", "date_range": date_range, "metrics": ["visitors"]})
        assert answer["results"][0]["metrics"] == [2 if date_range == "24h" else 1]  # the visit of 10:00 is on


async def test_pagination_and_order(stats: tuple[Harness, str]) -> None:
    h, key = stats
    answer = await ask(
        h,
        key,
        {
            **BASE,
            "metrics": ["pageviews"],
            "dimensions": ["event:page"],
            "order_by": [["event:page", "asc"]],
            "pagination": {"limit": 1, "offset": 1},
            "include": {"total_rows": True},
        },
    )
    assert [r["dimensions"][0] for r in answer["results"]] == ["/pricing"]  # after "/blog"
    assert answer["meta"]["total_rows"] == 2


async def test_one_filter_on_totals_breakdowns_and_the_open_day(stats: tuple[Harness, str]) -> None:
    h, key = stats
    google = [["is", "visit:source", ["Google"]]]
    metrics = ["visitors", "visits", "pageviews"]
    totals = await ask(h, key, {**BASE, "metrics": metrics, "filters": google})
    assert totals["results"] == [{"metrics": [1, 1, 2], "dimensions": []}]
    assert totals["query"]["filters"] == google
    pages = await ask(h, key, {**BASE, "metrics": metrics, "filters": google, "dimensions": ["event:page"]})
    assert {r["dimensions"][0]: r["metrics"] for r in pages["results"]} == {"/pricing": [1, 1, 2]}
    # Today's visit from Hacker News is still raw; a page filter keeps the visits that saw the page.
    hn = [["is", "visit:source", ["Hacker News"]]]
    assert (await ask(h, key, {**BASE, "metrics": metrics, "filters": hn}))["results"][0]["metrics"] == [1, 1, 1]
    blog = [["is", "event:page", ["/blog"]]]
    sources = await ask(
        h, key, {**BASE, "metrics": [*metrics, "events"], "filters": blog, "dimensions": ["visit:source"]}
    )
    # The visit that saw /blog also signed up on /pricing: it counts, with /blog's pageview and event only.
    assert sources["results"] == [{"metrics": [1, 1, 1, 1], "dimensions": [""]}]
    goal = [["is", "event:goal", ["Signup"]]]
    plans = await ask(h, key, {**BASE, "metrics": ["visitors"], "filters": goal, "dimensions": ["event:props:plan"]})
    assert plans["results"] == [{"metrics": [1], "dimensions": ["pro"]}]
    hours = await ask(
        h, key, {**BASE, "date_range": "day", "metrics": ["visitors"], "filters": hn, "dimensions": ["time:hour"]}
    )
    assert [r["metrics"][0] for r in hours["results"]] == [1 if hour == 11 else 0 for hour in range(24)]  # 10:00 UTC
    last_day = await ask(h, key, {**BASE, "date_range": "24h", "metrics": ["visitors"], "filters": hn})
    assert last_day["results"] == [{"metrics": [1], "dimensions": []}]


async def test_old_filtered_breakdowns_are_kept_by_whole_months(stats: tuple[Harness, str], config: Config) -> None:
    h, key = stats
    site = next(s for s in await h.store.list_sites() if s.domain == "example.com")
    later = datetime(2026, 4, 28, 12, tzinfo=UTC)  # March 10 is now more than RECENT_DAYS ago
    await rollup_site(h.store, site, later, min_visitors=1)
    await purge(h.store, later, config.privacy.raw_retention_hours, config.privacy.aggregate_retention_months)
    assert await agg_days_rows(h) == 0  # the recent filtered rows are gone
    h.clock.now = later
    google = [["is", "visit:source", ["Google"]]]
    body = {**BASE, "metrics": ["visitors", "pageviews"], "filters": google, "dimensions": ["event:page"]}
    refused = await h.client.post(
        "/api/v2/query",
        json={**body, "date_range": ["2026-03-10", "2026-03-11"]},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert refused.status_code == 400 and "whole months" in refused.json()["error"]
    for date_range in (["2026-03-01", "2026-03-31"], "12mo", "all"):
        pages = await ask(h, key, {**body, "date_range": date_range})
        assert {r["dimensions"][0]: r["metrics"] for r in pages["results"]} == {"/pricing": [1, 2]}
    # Filtered totals and daily series stay available by day.
    series = await ask(
        h,
        key,
        {
            **BASE,
            "metrics": ["visitors"],
            "filters": google,
            "dimensions": ["time:day"],
            "date_range": ["2026-03-10", "2026-03-11"],
        },
    )
    assert [r["metrics"] for r in series["results"]] == [[1], [0]]
    # Hours under a filter come from raw events, gone after privacy.raw_retention_hours.
    hourly = await h.client.post(
        "/api/v2/query",
        json={**body, "dimensions": ["time:hour"], "date_range": ["2026-03-10", "2026-03-10"]},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert hourly.status_code == 400 and "raw events" in hourly.json()["error"]


async def test_ranges_over_several_months_add_every_month_once(config: Config) -> None:
    """Consecutive whole months are read as one range of monthly rows: each month counts once, none is lost."""
    clock = Clock(datetime(2026, 1, 20, 9, tzinfo=UTC))
    async with start(config, clock) as h:
        await h.add_site("example.com", timezone="Europe/Paris")
        for month, visits in ((1, 1), (2, 2), (4, 3)):  # nothing in March: a gap between the months
            for i in range(visits):
                clock.now = datetime(2026, month, 10 + i, 9, tzinfo=UTC)
                await h.send(pageview(url="https://example.com/a", referrer="https://www.google.com/"))
        clock.now = datetime(2026, 5, 2, 12, tzinfo=UTC)
        site = next(s for s in await h.store.list_sites() if s.domain == "example.com")
        await rollup_site(h.store, site, clock.now, min_visitors=1)
        key = apikeys.new_key()
        await h.store.add_api_key("test", apikeys.digest(key), apikeys.display_prefix(key), [site.id], 0)
        google = [["is", "visit:source", ["Google"]]]
        for date_range, expected in (("12mo", 6), (["2026-01-01", "2026-02-28"], 3), (["2026-02-01", "2026-04-30"], 5)):
            for filters in ([], google):
                body = {"site_id": "example.com", "date_range": date_range, "metrics": ["visits", "pageviews"]}
                pages = await ask(h, key, {**body, "dimensions": ["event:page"], "filters": filters})
                assert pages["results"] == [{"metrics": [expected, expected], "dimensions": ["/a"]}], date_range
                totals = await ask(h, key, {**body, "filters": filters})
                assert totals["results"][0]["metrics"] == [expected, expected]


async def agg_days_rows(h: Harness) -> int:
    async with h.store.admin.execute("SELECT COUNT(*) FROM agg_days") as cur:  # type: ignore[attr-defined]
        found = await cur.fetchone()
    return int(found[0])


async def test_a_breakdown_by_day_and_by_month(stats: tuple[Harness, str]) -> None:
    h, key = stats
    by_day = await ask(
        h, key, {**BASE, "metrics": ["visitors", "pageviews"], "dimensions": ["time:day", "visit:source"]}
    )
    assert [(r["dimensions"], r["metrics"]) for r in by_day["results"]] == [
        (["2026-03-10", ""], [1, 1]),
        (["2026-03-10", "Google"], [1, 2]),
        (["2026-03-11", ""], [1, 1]),
        (["2026-03-12", "Hacker News"], [1, 1]),  # today, from raw events
    ]
    pricing = [["is", "event:page", ["/pricing"]]]
    by_month = await ask(
        h,
        key,
        {
            **BASE,
            "date_range": "12mo",
            "metrics": ["visitors"],
            "dimensions": ["visit:source", "time:month"],
            "filters": pricing,
        },
    )
    assert [(r["dimensions"], r["metrics"]) for r in by_month["results"]] == [
        (["", "2026-03-01"], [1]),
        (["Google", "2026-03-01"], [1]),
        (["Hacker News", "2026-03-01"], [1]),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**BASE, "metrics": ["visitors"], "filters": [["is", "visit:source", ["Google", "Bing"]]]}, "one value"),
        ({**BASE, "metrics": ["visitors"], "filters": [["contains", "event:page", ["/blog"]]]}, '"contains"'),
        (
            {**BASE, "metrics": ["visitors"], "filters": [["is", "visit:source", ["A"]], ["is", "visit:os", ["B"]]]},
            "only one filter",
        ),
        ({**BASE, "metrics": ["visitors"], "filters": [["is", "visit:colour", ["red"]]]}, "cannot filter by"),
        ({**BASE, "metrics": ["visitors"], "filters": "source=Google"}, "filters must be"),
        ({**BASE, "metrics": ["visitors"], "filters": [["is", "visit:city", [""]]]}, "unknown visit:city"),
        (
            {
                **BASE,
                "metrics": ["visitors"],
                "dimensions": ["event:page"],
                "filters": [["is", "visit:city", ["Paris"]]],
            },
            "is not kept",
        ),
        ({**BASE, "metrics": ["visitors"], "dimensions": ["visit:source", "visit:country"]}, "one breakdown"),
        (
            {**BASE, "date_range": "day", "metrics": ["visitors"], "dimensions": ["time:hour", "visit:country"]},
            "by hour",
        ),
        (
            {
                **BASE,
                "metrics": ["visitors"],
                "dimensions": ["time:day", "visit:country"],
                "include": {"comparisons": {"mode": "previous_period"}},
            },
            "two dimensions",
        ),
        ({**BASE, "metrics": ["revenue"]}, "metrics must be"),
        ({**BASE, "metrics": ["visitors"], "dimensions": ["time:hour"]}, "two days"),
        ({**BASE, "metrics": ["percentage"]}, "breakdown"),
        ({"site_id": "example.com", "metrics": ["visitors"], "date_range": "forever"}, "date_range"),
        ({"site_id": "example.com", "metrics": ["visitors"], "date_range": ["2026-03-12", "2026-03-01"]}, "starts"),
        ({**BASE, "metrics": ["visitors"], "pagination": {"limit": 0}}, "pagination"),
        ({**BASE, "metrics": ["visitors"], "include": {"total_rows": {}}}, "total_rows must be true or false"),
    ],
)
async def test_questions_the_aggregates_cannot_answer_get_400_with_the_reason(
    stats: tuple[Harness, str], body: dict[str, Any], message: str
) -> None:
    h, key = stats
    response = await h.client.post("/api/v2/query", json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 400
    assert message in response.json()["error"]


async def test_malformed_and_oversized_queries(stats: tuple[Harness, str]) -> None:
    h, key = stats
    auth = {"Authorization": f"Bearer {key}"}
    assert (await h.client.post("/api/v2/query", content=b"{nope", headers=auth)).status_code == 400
    assert (await h.client.post("/api/v2/query", json=[1], headers=auth)).status_code == 400
    huge = await h.client.post("/api/v2/query", content=b" " * 70_000, headers=auth)
    assert huge.status_code == 413


async def test_keys_are_checked_and_scoped(stats: tuple[Harness, str]) -> None:
    h, key = stats
    body = {**BASE, "metrics": ["visitors"]}
    assert (await h.client.post("/api/v2/query", json=body)).status_code == 401
    wrong = await h.client.post("/api/v2/query", json=body, headers={"Authorization": "Bearer ak_wrong"})
    assert wrong.status_code == 401
    await h.add_site("other.example")
    foreign = await h.client.post(
        "/api/v2/query", json={**body, "site_id": "other.example"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert foreign.status_code == 404
    [stored] = await h.store.list_api_keys()
    assert await h.store.revoke_api_key(stored.id, 1)
    revoked = await h.client.post("/api/v2/query", json=body, headers={"Authorization": f"Bearer {key}"})
    assert revoked.status_code == 401


async def test_realtime_counts_the_visits_active_in_the_last_five_minutes(config: Config) -> None:
    clock = Clock(datetime(2026, 3, 12, 10, 0, tzinfo=UTC))
    async with start(config, clock) as h:
        await h.add_site("example.com", timezone="Europe/Paris")
        await h.send(pageview(url="https://example.com/gone"), headers={"X-Forwarded-For": "90.84.0.1"})
        clock.advance(minutes=2)
        await h.send(pageview(url="https://example.com/a", referrer="https://www.google.com/"))
        clock.advance(minutes=5)
        await h.send(pageview(url="https://example.com/b", referrer="https://www.google.com/"))
        clock.advance(minutes=4)
        await h.send(pageview(url="https://example.com/c"), headers={"X-Forwarded-For": "81.2.69.160"})
        site = next(s for s in await h.store.list_sites() if s.domain == "example.com")
        key = apikeys.new_key()
        await h.store.add_api_key("test", apikeys.digest(key), apikeys.display_prefix(key), [site.id], 0)
        body = {"site_id": "example.com", "date_range": "realtime", "metrics": ["visitors", "pageviews"]}
        # At 10:11: the /gone visit's last event is 11 minutes old; the Google visit's (10:07) 4 minutes, with
        # both its pageviews; the /c visit is new.
        totals = await ask(h, key, body)
        assert totals["results"] == [{"metrics": [2, 3], "dimensions": []}]
        sources = await ask(h, key, {**body, "dimensions": ["visit:source"]})
        assert {r["dimensions"][0]: r["metrics"][0] for r in sources["results"]} == {"Google": 1, "": 1}
        clock.advance(minutes=3)
        pages = await ask(h, key, {**body, "dimensions": ["event:page"]})
        assert [r["dimensions"][0] for r in pages["results"]] == ["/c"]
        refused = await h.client.post(
            "/api/v2/query", json={**body, "dimensions": ["time:hour"]}, headers={"Authorization": f"Bearer {key}"}
        )
        assert refused.status_code == 400 and "realtime" in refused.json()["error"]


async def test_page_goals_count_as_conversions_closed_and_open(config: Config) -> None:
    clock = Clock(datetime(2026, 3, 10, 9, tzinfo=UTC))
    async with start(config, clock) as h:
        await h.add_site("example.com", timezone="Europe/Paris")
        site = next(s for s in await h.store.list_sites() if s.domain == "example.com")
        await h.store.add_goal(site.id, check_goal("page", "/thanks/*"), 0)
        await h.send(pageview(url="https://example.com/pricing", referrer="https://www.google.com/"))
        await h.send(pageview(url="https://example.com/thanks/pro", referrer="https://www.google.com/"))
        await h.send(pageview(url="https://example.com/thanks"), headers={"X-Forwarded-For": "81.2.69.160"})
        clock.now = datetime(2026, 3, 11, 10, tzinfo=UTC)
        await h.send(pageview(url="https://example.com/thanks/team"), headers={"X-Forwarded-For": "90.84.0.9"})
        site = next(s for s in await h.store.list_sites() if s.domain == "example.com")
        assert site.page_goals == ("/thanks/*",)
        await rollup_site(h.store, site, clock.now, min_visitors=1)  # March 10 closed; March 11 open
        key = apikeys.new_key()
        await h.store.add_api_key("test", apikeys.digest(key), apikeys.display_prefix(key), [site.id], 0)
        body = {"site_id": "example.com", "date_range": "7d"}
        goals = await ask(
            h, key, {**body, "metrics": ["visitors", "events", "conversion_rate"], "dimensions": ["event:goal"]}
        )
        # 3 visitors in all; 2 reached /thanks/* (one each day); /thanks alone does not match the pattern.
        assert goals["results"] == [{"metrics": [2, 2, 66.7], "dimensions": ["Visit /thanks/*"]}]
        sources = await ask(
            h,
            key,
            {
                **body,
                "metrics": ["visitors"],
                "dimensions": ["visit:source"],
                "filters": [["is", "event:goal", ["Visit /thanks/*"]]],
            },
        )
        assert {r["dimensions"][0]: r["metrics"][0] for r in sources["results"]} == {"Google": 1, "": 1}
        totals = await ask(h, key, {**body, "metrics": ["pageviews", "events"]})
        assert totals["results"][0]["metrics"] == [4, 4]  # a goal is not an extra event


async def test_questions_are_answered_outside_the_servers_interpreter(
    stats: tuple[Harness, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer's Python (merging rows, filling buckets, sorting, comparing, encoding) held the interpreter
    against ingest: eight clients of heavy questions raised ingest p99 tenfold (bench/questions_ingest.py)."""

    async def not_here(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the answer was computed in the server's process")

    monkeypatch.setattr(stats_module.Answerer, "answer", not_here)
    h, key = stats
    answer = await ask(h, key, {**BASE, "metrics": ["visitors"], "dimensions": ["visit:source"]})
    assert ["Google", 1] in [r["dimensions"] + r["metrics"] for r in answer["results"]]


async def test_too_many_questions_at_once_get_a_503_with_retry_after(stats: tuple[Harness, str]) -> None:
    h, key = stats
    h.app.state.stats.answers.max_in_flight = 0
    response = await h.client.post(
        "/api/v2/query", json={**BASE, "metrics": ["visitors"]}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert "retry in a few seconds" in response.json()["error"]
    h.app.state.stats.answers.max_in_flight = answers.MAX_IN_FLIGHT
    assert (await ask(h, key, {**BASE, "metrics": ["visitors"]}))["results"][0]["metrics"] == [4]


async def test_a_question_that_waited_past_its_deadline_is_dropped_by_the_worker(
    stats: tuple[Harness, str],
) -> None:
    """A worker busy with slow questions must not then answer the ones nobody waits for any more."""
    h, _ = stats
    site = next(s for s in await h.store.list_sites() if s.domain == "example.com")
    query = parse({**BASE, "metrics": ["visitors"]})
    limits = answers.Limits(-1, time.time() - 0.01, 5.0, 5000, 10.0, 120.0, 1)
    loop = asyncio.get_running_loop()
    path = h.store.reader_path()
    with pytest.raises(TimeoutError):
        await loop.run_in_executor(openday.pool(site.id), answers.answer_here, path, site, query, h.clock(), limits)
    limits = answers.Limits(-1, time.time() + 10, 5.0, 5000, 10.0, 120.0, 1)
    found = await loop.run_in_executor(openday.pool(site.id), answers.answer_here, path, site, query, h.clock(), limits)
    assert json.loads(found)["results"][0]["metrics"] == [4]


async def test_a_killed_worker_costs_no_answer(stats: tuple[Harness, str]) -> None:
    """The answer is computed in the server's process while the pool is replaced, and the next one in a worker."""
    h, key = stats
    await ask(h, key, {**BASE, "metrics": ["visitors"]})
    for pid in [pid for found in openday.pools() for pid in found._processes]:
        os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(0.2)
    assert (await ask(h, key, {**BASE, "metrics": ["visitors"]}))["results"][0]["metrics"] == [4]
    assert (await ask(h, key, {**BASE, "metrics": ["visitors"]}))["results"][0]["metrics"] == [4]
    assert all(p.is_alive() for found in openday.pools() for p in found._processes.values())
