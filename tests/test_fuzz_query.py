"""The Stats API query, fuzzed: whatever the JSON, the parser returns a Query or a QueryError (never another
exception); and queries built from every metric, dimension, filter, date range (years 1 and 9999 included),
order, page and comparison are answered with a 200 or a 400 naming the problem, within a second, through an
API key and through a shared link."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics import accounts, apikeys, query
from analytics.config import Config
from analytics.jobs import rollup_site
from analytics.query import QueryError, parse
from analytics.rollup import DIMENSIONS
from tests.conftest import IPHONE_UA, Clock, Harness, pageview, start

text = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(["", "é", "\u0000", "Google", "/blog"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)
DIMENSION_NAMES = [d for d in DIMENSIONS if d] + ["event:goal", "event:props:plan", "event:props:"]
dimension = st.sampled_from(DIMENSION_NAMES + list(query.TIME_DIMENSIONS)) | text
iso_day = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(date.isoformat)
edge_day = st.sampled_from(["0001-01-01", "0001-01-02", "9999-12-31", "9999-12-30", "1999-12-31", "2100-01-01"])
day = st.dates(min_value=date(2024, 1, 1), max_value=date(2026, 4, 30)).map(date.isoformat) | iso_day | edge_day
date_range = st.sampled_from(query.SHORTCUTS) | st.lists(day, min_size=2, max_size=2).map(sorted) | json_values
values = st.sampled_from(["Google", "/pricing", "/blog", "Signup", "pro", "", "Direct / None", "Chrome"]) | text
queries = st.fixed_dictionaries(
    {
        "site_id": st.sampled_from(["example.com", "www.Example.com", "other.example"]),
        "metrics": st.lists(st.sampled_from(query.METRICS), min_size=1, max_size=4, unique=True),
        "date_range": date_range,
    },
    optional={
        "dimensions": st.lists(dimension, max_size=2),
        "filters": st.lists(st.tuples(st.just("is"), dimension, st.lists(values, max_size=2)).map(list), max_size=1),
        "order_by": st.lists(st.tuples(dimension | st.sampled_from(query.METRICS), st.sampled_from(["asc", "desc"]))),
        "pagination": st.fixed_dictionaries(
            {}, optional={"limit": st.integers(-1, 20_000), "offset": st.integers(-1, 5)}
        ),
        "include": st.fixed_dictionaries(
            {},
            optional={"comparisons": st.just({"mode": "previous_period"}) | json_values, "total_rows": st.booleans()},
        ),
    },
)
mutated = queries.flatmap(
    lambda q: st.dictionaries(st.sampled_from([*q, "site_id", "metrics"]), json_values, max_size=2).map(
        lambda extra: {**q, **extra}
    )
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
LONG = settings(FUZZ, max_examples=3000)


@FUZZ
@given(body=json_values | queries | mutated)
def test_the_parser_answers_a_query_or_says_why_not(body: Any) -> None:
    try:
        parse(body)
    except QueryError as exc:
        assert str(exc)


@pytest.fixture
async def api(config: Config) -> AsyncIterator[tuple[Harness, str, str]]:
    """A site with a rolled-up day and an open one, its API key and a shared link."""
    clock = Clock(datetime(2026, 3, 13, 10, tzinfo=UTC))
    async with start(config, clock) as h:
        await h.add_site("example.com", timezone="Europe/Paris", allowed_props=("plan",))
        await h.send(pageview(referrer="https://www.google.com/"))
        await h.send(pageview(name="Signup", props={"plan": "pro"}), headers={"User-Agent": IPHONE_UA})
        clock.now = datetime(2026, 3, 14, 15, tzinfo=UTC)
        site = next(s for s in await h.store.list_sites() if s.domain == "example.com")
        await rollup_site(h.store, site, clock.now, min_visitors=1)
        await h.send(pageview(url="https://example.com/blog"))
        key, token = apikeys.new_key(), accounts.new_token(256)
        await h.store.add_api_key("fuzz", apikeys.digest(key), apikeys.display_prefix(key), [site.id], 0)
        await h.store.add_shared_link(site, "fuzz", apikeys.digest(token), None, None, False, 0)
        yield h, key, token


async def ask(api: tuple[Harness, str, str], body: Any, shared: bool) -> None:
    h, key, token = api
    payload = json.dumps(body).encode()
    started = time.perf_counter()
    if shared:
        response = await h.client.post(f"/share/{token}/api/v2/query", content=payload)
    else:
        response = await h.client.post("/api/v2/query", content=payload, headers={"Authorization": f"Bearer {key}"})
    elapsed = time.perf_counter() - started
    assert response.status_code in (200, 400, 404), f"{payload!r}: {response.status_code} {response.text}"
    assert elapsed < 1.0, f"{payload!r} took {elapsed:.2f} s"
    answer = response.json()
    if response.status_code == 200:
        assert isinstance(answer["results"], list) and answer["query"]["site_id"] == "example.com"
    else:
        assert answer["error"]


@FUZZ
@given(body=queries | mutated, shared=st.booleans())
async def test_every_query_is_answered_or_refused_with_a_reason(
    api: tuple[Harness, str, str], body: Any, shared: bool
) -> None:
    await ask(api, body, shared)


@pytest.mark.slow
@LONG
@given(body=queries | mutated, shared=st.booleans())
async def test_long_run_every_query_is_answered_or_refused(
    api: tuple[Harness, str, str], body: Any, shared: bool
) -> None:
    await ask(api, body, shared)


@pytest.mark.slow
@LONG
@given(body=json_values | queries | mutated)
def test_long_run_the_parser(body: Any) -> None:
    test_the_parser_answers_a_query_or_says_why_not.hypothesis.inner_test(body)  # type: ignore[attr-defined]
