"""Inputs that once made the server answer 500 or hold it for seconds, each now refused with a 4xx naming the
problem; the Stats API's limits (dates, range, buckets) and time budgets; and ingest staying fast while hostile
questions arrive."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest

from analytics import accounts, apikeys
from analytics.config import Config
from analytics.jobs import rollup_site
from analytics.store import sqlite
from analytics.web.auth import COOKIE, LOGIN_COOKIE
from analytics.web.views import SHARE_COOKIE
from tests.conftest import Clock, Harness, pageview, start
from tests.test_dashboard import FAST, PASSWORD, csrf_of, login, make_user


@dataclass
class Hostile:
    h: Harness
    key: str
    link: str
    """An open shared link."""
    locked: str
    """A shared link with a password."""
    csrf: str
    """The logged-in session's CSRF token."""
    session: str


@pytest.fixture
async def hostile(config: Config) -> AsyncIterator[Hostile]:
    clock = Clock(datetime(2026, 3, 13, 10, tzinfo=UTC))
    async with start(config, clock) as h:
        await h.add_site("example.com", timezone="Europe/Paris")
        await h.send(pageview(referrer="https://www.google.com/"))
        clock.now = datetime(2026, 3, 14, 15, tzinfo=UTC)
        site = (await h.store.list_sites())[0]
        await rollup_site(h.store, site, clock.now, min_visitors=1)
        await h.send(pageview(url="https://example.com/blog"))
        key, link, locked = apikeys.new_key(), accounts.new_token(256), accounts.new_token(256)
        await h.store.add_api_key("t", apikeys.digest(key), apikeys.display_prefix(key), [site.id], 0)
        await h.store.add_shared_link(site, "open", apikeys.digest(link), None, None, False, 0)
        hashed = accounts.hash_password(PASSWORD, n=FAST)
        await h.store.add_shared_link(site, "locked", apikeys.digest(locked), hashed, None, False, 0)
        await make_user(h)
        assert (await login(h.client)).status_code == 303
        session = h.client.cookies[COOKIE]
        yield Hostile(h, key, link, locked, await csrf_of(h.client), session)


def raw_cookie(name: str, value: bytes) -> bytes:
    return name.encode() + b"=" + value


Q = {"site_id": "example.com", "metrics": ["visitors"]}
COMPARE = {"mode": "previous_period"}
SURROGATE = b'"\\udfff"'  # JSON's escape of a lone surrogate: no character, cannot be encoded as UTF-8


def query_bytes(**fields: Any) -> bytes:
    return json.dumps({**Q, **fields}).encode()


# (what was sent, how it used to fail) -> the answer now: status and a part of the message or page.
ONCE_BROKE: list[tuple[str, str, dict[str, Any], int, str]] = [
    # hmac.compare_digest raised TypeError on a non-ASCII str: CSRF fields, headers and share cookies.
    ("login form csrf é", "POST /login",
     {"form": {"csrf": "é", "email": "a@b.c", "password": "x"}, "cookie": (LOGIN_COOKIE, b"abc")}, 400, "expired"),
    ("login cookie non-ASCII", "POST /login", {"form": {"csrf": "abc"}, "cookie": (LOGIN_COOKIE, "é".encode())}, 400,
     "expired"),
    ("settings csrf é", "POST /sites/example.com/settings/general", {"form": {"csrf": "é"}, "session": True}, 403,
     "expired"),
    ("add a site csrf é", "POST /sites", {"form": {"csrf": "é", "domain": "x.example"}, "session": True}, 400,
     "expired"),
    ("logout csrf é", "POST /logout", {"form": {"csrf": "ü"}, "session": True}, 303, ""),
    ("X-CSRF-Token é", "POST /api/v2/query",
     {"json": {**Q, "date_range": "day"}, "csrf": "é".encode(), "session": True}, 403, "X-CSRF-Token"),
    ("X-CSRF-Token raw bytes", "POST /api/v2/query",
     {"json": {**Q, "date_range": "day"}, "csrf": b"\xff\xfe", "session": True}, 403, "X-CSRF-Token"),
    ("share cookie é, page", "GET /share/{locked}", {"cookie": (SHARE_COOKIE, "é".encode())}, 200, "protected"),
    ("share cookie é, query", "POST /share/{locked}/api/v2/query",
     {"json": {**Q, "date_range": "day"}, "cookie": (SHARE_COOKIE, "é".encode())}, 404, "password"),
    ("share cookie é, realtime", "GET /share/{locked}/api/v1/stats/realtime/visitors",
     {"cookie": (SHARE_COOKIE, "é".encode())}, 404, "password"),
    # A lone surrogate echoed in an error message: Starlette's JSONResponse could not encode it.
    ("surrogate site_id", "POST /api/v2/query", {"body": b'{"site_id": ' + SURROGATE + b', "metrics": ["visitors"], '
     b'"date_range": "day"}'}, 400, "lone surrogate"),
    ("surrogate filter operator", "POST /api/v2/query",
     {"body": query_bytes(date_range="day")[:-1] + b', "filters": [[' + SURROGATE + b', "visit:source", ["x"]]]}'},
     400, "lone surrogate"),
    ("surrogate filter value", "POST /api/v2/query",
     {"body": query_bytes(date_range="day")[:-1] + b', "filters": [["is", "visit:source", [' + SURROGATE + b"]]]}"},
     400, "lone surrogate"),
    ("surrogate dimension", "POST /share/{link}/api/v2/query",
     {"body": query_bytes(date_range="day")[:-1] + b', "dimensions": [' + SURROGATE + b"]}"}, 400, "lone surrogate"),
    # timedelta overflow in query.resolve / previous and stats.py near the ends of the calendar.
    ("year 1 with comparison", "POST /api/v2/query",
     {"json": {**Q, "date_range": ["0001-01-01", "0001-01-05"], "include": {"comparisons": COMPARE}}}, 400,
     "between 2000-01-01 and 2099-12-31"),
    ("year 9999 by week", "POST /api/v2/query",
     {"json": {**Q, "date_range": ["9999-12-25", "9999-12-31"], "dimensions": ["time:week"]}}, 400, "2099-12-31"),
    ("year 1 to 9999", "POST /share/{link}/api/v2/query", {"json": {**Q, "date_range": ["0001-01-01", "9999-12-31"]}},
     400, "2000-01-01"),
    ("4,000 years by day", "POST /share/{link}/api/v2/query",
     {"json": {**Q, "date_range": ["0001-01-01", "4000-12-31"], "dimensions": ["time:day"]}}, 400, "2000-01-01"),
]  # fmt: skip


async def send(t: Hostile, target: str, spec: dict[str, Any]) -> Any:
    method, path = target.split(" ", 1)
    path = path.format(link=t.link, locked=t.locked)
    headers: list[tuple[bytes, bytes]] = []
    content: bytes | None = spec.get("body")
    if "form" in spec:
        content = urlencode(spec["form"]).encode()
        headers.append((b"Content-Type", b"application/x-www-form-urlencoded"))
    if "json" in spec:
        content = json.dumps(spec["json"]).encode()
    if content is not None and "form" not in spec:
        headers.append((b"Content-Type", b"application/json"))
    if "session" not in spec and "/api/" in path and not path.startswith("/share/"):
        headers.append((b"Authorization", f"Bearer {t.key}".encode()))
    if "csrf" in spec:
        headers.append((b"X-CSRF-Token", spec["csrf"]))
    cookies = [raw_cookie(COOKIE, t.session.encode())] if spec.get("session") else []
    if "cookie" in spec:
        cookies.append(raw_cookie(*spec["cookie"]))
    request = t.h.client.build_request(method, path, content=content)
    raw = [(k, v) for k, v in request.headers.raw if k.lower() != b"cookie"]
    request.headers = type(request.headers)([*raw, *headers, *([(b"Cookie", b"; ".join(cookies))] if cookies else [])])
    return await t.h.client.send(request)


@pytest.mark.parametrize(("case", "target", "spec", "status", "says"), ONCE_BROKE, ids=[c[0] for c in ONCE_BROKE])
async def test_inputs_that_once_broke_get_a_clear_refusal(
    hostile: Hostile, case: str, target: str, spec: dict[str, Any], status: int, says: str
) -> None:
    response = await send(hostile, target, spec)
    assert response.status_code == status, response.text[:300]
    assert says in response.text


async def ask(t: Hostile, body: dict[str, Any], shared: bool = False) -> Any:
    if shared:
        return await t.h.client.post(f"/share/{t.link}/api/v2/query", json=body)
    return await t.h.client.post("/api/v2/query", json=body, headers={"Authorization": f"Bearer {t.key}"})


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"date_range": ["1999-12-31", "2026-03-14"]}, "between 2000-01-01 and 2099-12-31"),
        ({"date_range": ["2000-01-01", "2099-12-31"]}, "spans 36,525 days; the limit is 10,000 days"),
        ({"date_range": ["2000-01-01", "2026-12-31"], "dimensions": ["time:day"]}, "time series has at most 4,000"),
        (
            {"date_range": ["2025-01-01", "2026-03-14"], "dimensions": ["time:day", "visit:source"]},
            "a time series with a breakdown has at most 400",
        ),
        ({"date_range": ["2026-03-01", "2026-03-14"], "dimensions": ["time:hour"]}, "up to two days"),
    ],
)
async def test_questions_beyond_the_limits_are_refused_naming_the_limit(
    hostile: Hostile, body: dict[str, Any], says: str
) -> None:
    for shared in (False, True):
        started = time.perf_counter()
        response = await ask(hostile, {**Q, **body}, shared)
        assert response.status_code == 400 and says in response.json()["error"], response.text
        assert time.perf_counter() - started < 0.5


async def test_the_largest_questions_allowed_are_answered_quickly(hostile: Hostile) -> None:
    for body in (
        {"date_range": ["2000-01-01", "2027-05-18"]},  # 10,000 days
        {"date_range": ["2015-01-21", "2026-01-02"], "dimensions": ["time:day"]},  # 4,000 days by day
        {"date_range": ["2000-01-01", "2027-05-18"], "dimensions": ["time:month", "visit:source"]},
        {"date_range": ["2025-02-08", "2026-03-14"], "dimensions": ["time:day", "visit:source"]},  # 400 days
        {"date_range": "all", "dimensions": ["time:day"], "include": {"comparisons": {"mode": "previous_period"}}},
    ):
        started = time.perf_counter()
        response = await ask(hostile, {**Q, **body})
        assert response.status_code == 200, response.text
        assert time.perf_counter() - started < 2.0, body


async def test_a_question_past_its_time_budget_gets_a_503_with_retry_after(hostile: Hostile) -> None:
    hostile.h.app.state.stats.budget = 0.0
    response = await ask(hostile, {**Q, "date_range": "30d"})
    assert response.status_code == 503 and response.headers["retry-after"] == "30"
    assert "took longer than" in response.json()["error"]
    hostile.h.app.state.stats.budget = 10.0
    assert (await ask(hostile, {**Q, "date_range": "30d"})).status_code == 200


async def test_a_slow_aggregate_read_is_interrupted(hostile: Hostile) -> None:
    store = hostile.h.store
    assert isinstance(store, sqlite.SQLiteStore)
    store.progress_steps = 1  # the deadline is checked at every step
    store.read_seconds = 0.0
    response = await ask(hostile, {**Q, "date_range": "30d", "dimensions": ["visit:source"]})
    assert response.status_code == 503 and response.headers["retry-after"] == "30", response.text
    store.read_seconds = 5.0
    answer = await ask(hostile, {**Q, "date_range": "30d", "dimensions": ["visit:source"]})
    assert answer.status_code == 200  # the connection is usable again
    assert ["Google"] in [r["dimensions"] for r in answer.json()["results"]]  # from the rolled-up day


async def test_ingest_stays_fast_while_hostile_questions_arrive(hostile: Hostile) -> None:
    """Round trips of pageviews, alone and then while a key and a shared link send the questions that froze the
    server (4,000 years by day, years 1 and 9999, the largest ranges allowed) as fast as they are answered."""
    h = hostile.h

    async def ingest_times(count: int) -> list[float]:
        times = []
        for _ in range(count):
            started = time.perf_counter()
            assert (await h.send(pageview())).status_code == 202
            times.append(time.perf_counter() - started)
        return times

    baseline = await ingest_times(40)
    hostile_bodies = [
        {**Q, "date_range": ["0001-01-01", "4000-12-31"], "dimensions": ["time:day"]},
        {**Q, "date_range": ["2000-01-01", "2099-12-31"], "dimensions": ["time:day"]},
        {**Q, "date_range": ["0001-01-01", "0001-01-05"], "include": {"comparisons": {"mode": "previous_period"}}},
        {**Q, "date_range": ["9999-12-25", "9999-12-31"], "dimensions": ["time:week"]},
        {**Q, "date_range": ["2000-01-01", "2027-05-18"], "dimensions": ["visit:source"]},
    ]
    answered: list[int] = []
    done = asyncio.Event()

    async def attacker(shared: bool) -> None:
        while not done.is_set():
            for body in hostile_bodies:
                answered.append((await ask(hostile, body, shared)).status_code)

    attackers = [asyncio.create_task(attacker(shared)) for shared in (False, True, False, True)]
    try:
        during = await ingest_times(40)
    finally:
        done.set()
        await asyncio.gather(*attackers)
    assert answered and set(answered) <= {200, 400}, answered
    assert answered.count(400) >= len(answered) * 3 // 5  # the hostile ones were refused
    # Generous bounds: a correctness guard, not a benchmark (2 shared cores, in-process transport).
    assert statistics.median(during) < max(10 * statistics.median(baseline), 0.05), (baseline, during)
    assert max(during) < 0.5, during


def test_the_readme_states_the_limits_the_server_applies() -> None:
    from pathlib import Path

    from analytics import query, stats_api

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for number in (query.MAX_RANGE_DAYS, query.MAX_BUCKETS, query.MAX_BREAKDOWN_BUCKETS):
        assert f"{number:,}" in readme
    assert f"between {query.FIRST_DAY} and {query.LAST_DAY}" in readme
    assert f"{stats_api.QUERY_SECONDS:g} seconds" in readme and f"Retry-After: {stats_api.RETRY_AFTER}" in readme
    assert "/api/openapi.json" in readme and "make test-slow" in readme
