"""k-anonymity, proved on generated traffic: no stored aggregate row and no answer of the Stats API (API key and
shared link, every dimension, filters on common and rare values, every range, realtime, time series and
comparisons) counts between 1 and k-1 visitors, except a site's totals per time bucket; and `(other)` keeps
every breakdown's sums equal to the totals.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analytics import apikeys
from analytics.anonymity import OTHER, fold
from analytics.config import Config
from analytics.events import Event
from analytics.jobs import rollup_site
from analytics.query import DIMENSIONS
from analytics.rollup import FINE
from bench.traffic import Profile, generate
from tests.conftest import Clock, Harness, pageview, start

K = Config().privacy.min_visitors  # the default
DIMS = [*DIMENSIONS, "event:goal", "event:props:plan"]
FILTER_DIMS = ["visit:source", "visit:country", "visit:browser", "event:page", "visit:city", "event:goal"]
VISIT_LEVEL = [d for d in DIMENSIONS if d.startswith("visit:")]
FIELDS = {"visit:source": "source", "visit:country": "country", "visit:browser": "browser", "visit:city": "city"}


@pytest.fixture
def config(config: Config) -> Config:
    return config.replace("privacy", min_visitors=K)


def test_the_default_k_is_a_real_threshold() -> None:
    assert K >= 2


@pytest.mark.parametrize(
    ("rows", "k", "expected"),
    [
        ({"a": (9, 9, 9, 9, 0, 0), "b": (4, 4, 5, 5, 1, 5), "c": (1, 1, 1, 1, 1, 0)}, 5, {"a", OTHER}),
        ({"a": (9, 9, 9, 9, 0, 0), "b": (6, 6, 6, 6, 0, 0), "c": (1, 1, 1, 1, 0, 0)}, 5, {"a", OTHER}),  # b joins
        ({"a": (3, 3, 3, 3, 0, 0), "b": (1, 1, 1, 1, 0, 0)}, 5, set()),  # the group cannot reach k: no row
        ({"a": (3, 3, 3, 3, 0, 0), "b": (1, 1, 1, 1, 0, 0)}, 1, {"a", "b"}),  # k = 1: off
        ({"a": (7, 7, 7, 7, 0, 0), "b": (0, 0, 0, 0, 0, 0)}, 5, {"a", "b"}),  # zero is not a small count
    ],
)
def test_fold_merges_rows_under_k_into_other_and_keeps_the_sums(
    rows: dict[str, tuple[int, ...]], k: int, expected: set[str]
) -> None:
    folded = fold(rows, k, OTHER)
    assert set(folded) == expected
    assert all(c[0] == 0 or c[0] >= k for c in folded.values())
    if OTHER in folded:  # nothing lost: sums are the group's
        assert [sum(c[i] for c in folded.values()) for i in range(6)] == [
            sum(c[i] for c in rows.values()) for i in range(6)
        ]


def test_other_counts_people_not_rows() -> None:
    """One person on three rare pages is one visitor in (other), not three: the next smallest row joins."""
    rows = {"/a": (1, 1, 1, 1, 0, 0), "/b": (1, 1, 1, 1, 0, 0), "/c": (1, 1, 1, 1, 0, 0), "/": (8, 8, 8, 8, 0, 0)}
    folded = fold(rows, 3, OTHER, {"/a": [42], "/b": [42], "/c": [42]})
    assert folded == {OTHER: (9, 11, 11, 11, 0, 0)}
    distinct = fold(rows, 3, OTHER, {"/a": [1], "/b": [2], "/c": [3]})
    assert distinct == {"/": (8, 8, 8, 8, 0, 0), OTHER: (3, 3, 3, 3, 0, 0)}


NOW = datetime(2026, 3, 14, 15, 0, tzinfo=UTC)


def traffic(site_id: int) -> list[Event]:
    """Five days up to now of a small site (80 visits a day, long tails everywhere), and three visitors active in
    the last two minutes (for realtime)."""
    start = datetime(2026, 3, 10, tzinfo=UTC)
    now_ms = int(NOW.timestamp() * 1000)
    profile = Profile(visits_per_day=80, pages=150, countries=40, cities=200)
    events = [e for e in generate(site_id, int(start.timestamp() * 1000), 5, profile, seed=7) if e.ts < now_ms]
    recent = [e._replace(ts=now_ms - 90_000 + i * 20_000, visitor_id=900_000 + i) for i, e in enumerate(events[:3])]
    return events + recent


@pytest.fixture
async def site_with_traffic(config: Config) -> AsyncIterator[tuple[Harness, str, str, list[Event]]]:
    clock = Clock(NOW)
    async with start(config, clock) as h:
        await h.add_site("example.com")
        site = next(s for s in await h.store.list_sites() if s.domain == "example.com")
        events = traffic(site.id)
        await h.store.insert_events(events)
        await rollup_site(h.store, site, clock.now, min_visitors=config.privacy.min_visitors)
        key = apikeys.new_key()
        await h.store.add_api_key("test", apikeys.digest(key), apikeys.display_prefix(key), [site.id], 0)
        token = "t" * 43
        await h.store.add_shared_link(site, "public", apikeys.digest(token), None, None, False, 0)
        yield h, key, token, events


def small(visitors: int) -> bool:
    return 0 < visitors < K


async def test_no_stored_aggregate_row_counts_fewer_than_k_visitors(
    site_with_traffic: tuple[Harness, str, str, list[Event]],
) -> None:
    h, *_ = site_with_traffic
    scanned = 0
    for table in ("agg", "agg_days", "agg_months"):
        rows = await h.rows(f"SELECT * FROM {table}")
        scanned += len(rows)
        totals = [r for r in rows if r.get("fdim") == 0 and r["dim"] == 0]  # the site's totals per bucket
        singled = [r for r in rows if r not in totals and small(r["visitors"])]
        assert not singled, f"{len(singled)} rows of {table} count fewer than {K} visitors: {singled[:3]}"
    assert scanned > 1000
    others = await h.rows("SELECT COUNT(*) AS n FROM agg a JOIN dim_values v ON v.id = a.val WHERE v.value = '(other)'")
    assert others[0]["n"] > 0  # the small site's long tails are there, merged


def queries(events: list[Event]) -> list[dict[str, Any]]:
    """The whole surface: every dimension and range, under no filter and under a common and a rare value of
    each filter dimension, time series, and comparisons."""
    counts: dict[str, Counter[str]] = {d: Counter() for d in FILTER_DIMS}
    for e in events:
        for d, field in FIELDS.items():
            counts[d][getattr(e, field)] += 1
        if e.name == "pageview":
            counts["event:page"][e.pathname] += 1
        else:
            counts["event:goal"][e.name] += 1
    filters: list[list[Any] | None] = [None]
    for d in FILTER_DIMS:
        ranked = [v for v, _ in counts[d].most_common() if v]
        filters += [["is", d, [ranked[0]]], ["is", d, [ranked[-1]]]]
    bodies: list[dict[str, Any]] = []
    for date_range in ("day", "7d", "30d", "month", "24h", "realtime", ["2026-03-11", "2026-03-11"]):
        for flt in filters:
            base: dict[str, Any] = {"site_id": "example.com", "metrics": ["visitors", "visits", "pageviews"]}
            base |= {"date_range": date_range, "filters": [flt] if flt else []}
            bodies.append(base | {"dimensions": []})
            bodies += [base | {"dimensions": [d]} for d in DIMS]
            if date_range in ("day", "24h"):
                bodies.append(base | {"dimensions": ["time:hour"]})
            if date_range in ("7d", "month"):
                bodies.append(base | {"dimensions": ["time:day"]})
                bodies.append(base | {"dimensions": ["time:day", "visit:source"]})
            bodies.append(
                base | {"dimensions": ["visit:country"], "include": {"comparisons": {"mode": "previous_period"}}}
            )
    return bodies


def singled_out(body: dict[str, Any], answer: dict[str, Any]) -> list[Any]:
    """Result rows counting 1..k-1 visitors that are not the site's totals per bucket."""
    breakdown = any(not d.startswith("time:") for d in body["dimensions"])
    if not breakdown and not body["filters"]:
        return []
    found = []
    for row in answer["results"]:
        if small(row["metrics"][0]) or ("comparison" in row and small(row["comparison"]["metrics"][0])):
            found.append(row)
    return found


async def test_no_answer_counts_fewer_than_k_visitors(
    site_with_traffic: tuple[Harness, str, str, list[Event]],
) -> None:
    h, key, token, events = site_with_traffic
    answered = refused = 0
    others = 0
    for i, body in enumerate(queries(events)):
        shared = i % 5 == 0  # a fifth of the questions through the public shared link
        url = f"/share/{token}/api/v2/query" if shared else "/api/v2/query"
        headers = {} if shared else {"Authorization": f"Bearer {key}"}
        response = await h.client.post(url, json=body, headers=headers)
        assert response.status_code in (200, 400), (body, response.text)
        if response.status_code == 400:  # a question the aggregates do not answer (pages by city...)
            refused += 1
            continue
        answered += 1
        answer = response.json()
        assert not singled_out(body, answer), (body, singled_out(body, answer))
        others += sum(1 for r in answer["results"] if OTHER in r["dimensions"])
    assert answered > 1500 and refused < answered / 4, (answered, refused)
    assert others > 100


async def results(h: Harness, key: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """A Stats API answer's rows, asked with an API key; it must be answered."""
    response = await h.client.post("/api/v2/query", json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["results"]
    return found


async def test_other_keeps_every_breakdowns_sums_exact(
    site_with_traffic: tuple[Harness, str, str, list[Event]],
) -> None:
    """Unfiltered and filtered: visits of a visit-level breakdown and pageviews of the pages add up to the
    totals, (other) included."""
    h, key, _, events = site_with_traffic

    def ask(body: dict[str, Any]) -> Awaitable[list[dict[str, Any]]]:
        return results(h, key, body)

    common = Counter(e.source for e in events).most_common(2)[1][0]
    page = Counter(e.pathname for e in events).most_common(1)[0][0]
    filters: list[list[Any]] = [[], [["is", "visit:source", [common]]], [["is", "event:page", [page]]]]
    for date_range, flt in itertools.product(("day", "7d", "24h"), filters):
        base = {"site_id": "example.com", "metrics": ["visitors", "visits", "pageviews"], "date_range": date_range}
        base["filters"] = flt
        totals = (await ask(base | {"dimensions": []}))[0]["metrics"]
        for dimension in [*VISIT_LEVEL, "event:page"]:
            if flt and (dimension == flt[0][1] or (flt[0][1] == "event:page" and dimension in FINE)):
                continue  # the filter's own dimension; pages x pages are not kept
            rows = await ask(base | {"dimensions": [dimension]})
            index = 2 if dimension == "event:page" else 1
            assert sum(r["metrics"][index] for r in rows) == totals[index], (date_range, flt, dimension, rows)


async def test_a_filter_on_other_is_refused_with_the_reason(
    site_with_traffic: tuple[Harness, str, str, list[Event]],
) -> None:
    h, key, _, _ = site_with_traffic
    body = {"site_id": "example.com", "metrics": ["visitors"], "date_range": "7d"}
    body["filters"] = [["is", "visit:source", [OTHER]]]
    response = await h.client.post("/api/v2/query", json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 400 and "privacy.min_visitors" in response.text


async def test_k_1_keeps_single_visitors(config: Config) -> None:
    """The threshold is what hides them: with k = 1 the same traffic stores rows of one visitor."""
    async with start(config.replace("privacy", min_visitors=1), Clock(NOW)) as h:
        await h.add_site("example.com")
        site = next(s for s in await h.store.list_sites() if s.domain == "example.com")
        await h.store.insert_events(traffic(site.id))
        await rollup_site(h.store, site, NOW, min_visitors=1)
        rows = await h.rows("SELECT visitors FROM agg WHERE dim != 0")
        assert sum(1 for r in rows if small(r["visitors"])) > len(rows) / 2


async def test_a_k_raised_after_the_rollup_applies_to_every_answer_at_once(config: Config) -> None:
    """Days rolled up with k = 1 (single visitors stored), answered under the configured k: nothing under k."""
    async with start(config, Clock(NOW)) as h:
        await h.add_site("example.com")
        site = next(s for s in await h.store.list_sites() if s.domain == "example.com")
        events = traffic(site.id)
        await h.store.insert_events(events)
        await rollup_site(h.store, site, NOW, min_visitors=1)
        assert any(small(r["visitors"]) for r in await h.rows("SELECT visitors FROM agg WHERE dim != 0"))
        key = apikeys.new_key()
        await h.store.add_api_key("test", apikeys.digest(key), apikeys.display_prefix(key), [site.id], 0)
        for body in queries(events)[::3]:
            response = await h.client.post("/api/v2/query", json=body, headers={"Authorization": f"Bearer {key}"})
            if response.status_code == 200:
                assert not singled_out(body, response.json()), body


async def test_a_filter_shows_exactly_its_values_row_so_nothing_can_be_taken_off_other(
    site_with_traffic: tuple[Harness, str, str, list[Event]],
) -> None:
    """A value that joined (other) to bring it to k, filtered on, would give (other) minus it: the rare rows.
    So a filter's figures are exactly its value's row in the breakdown, and nothing for a value not listed."""
    h, key, _, events = site_with_traffic

    def ask(body: dict[str, Any]) -> Awaitable[list[dict[str, Any]]]:
        return results(h, key, body)

    values: dict[str, set[str]] = {d: {getattr(e, f) for e in events} for d, f in FIELDS.items()}
    values["event:goal"] = {e.name for e in events if e.name != "pageview"}
    for date_range in ("day", "7d", "24h"):
        base = {"site_id": "example.com", "metrics": ["visitors", "visits"], "date_range": date_range}
        for dimension, seen in values.items():
            listed = {r["dimensions"][0]: r["metrics"] for r in await ask(base | {"dimensions": [dimension]})}
            for value in sorted(seen)[:30]:  # a city breakdown has 200 values: 30 of them say as much
                totals = (await ask(base | {"filters": [["is", dimension, [value]]]}))[0]["metrics"]
                expected = listed.get(value, [0, 0])
                assert totals == expected, (date_range, dimension, value, totals, expected)


async def test_a_value_merged_to_bring_other_to_k_cannot_be_filtered_on(config: Config) -> None:
    """The outside tester's attack: 10 visitors without a campaign, 8 from `winter`, 1 from `rare`. (other) would
    count the one `rare` visitor, so `winter` joins it; a filter on `winter` taken off (other) would single out the
    `rare` visitor, so it shows nothing, today and once the day is rolled up."""
    async with start(config, Clock(NOW)) as h:
        await h.add_site("example.com")
        campaigns = [""] * 10 + ["winter"] * 8 + ["rare"]
        for i, campaign in enumerate(campaigns):
            url = "https://example.com/" + (f"?utm_campaign={campaign}" if campaign else "")
            response = await h.send(pageview(url=url), headers={"X-Forwarded-For": f"198.51.{i}.7"})
            assert response.status_code == 202
        key = apikeys.new_key()
        site = next(s for s in await h.store.list_sites() if s.domain == "example.com")
        await h.store.add_api_key("test", apikeys.digest(key), apikeys.display_prefix(key), [site.id], 0)
        for moment in ("open", "rolled up"):
            if moment == "rolled up":
                h.clock.now = NOW + timedelta(days=1)
                await rollup_site(h.store, site, h.clock.now, min_visitors=K)
            body = {"site_id": "example.com", "metrics": ["visitors"], "date_range": ["2026-03-14", "2026-03-14"]}
            headers = {"Authorization": f"Bearer {key}"}
            rows = (
                await h.client.post(
                    "/api/v2/query", json=body | {"dimensions": ["visit:utm_campaign"]}, headers=headers
                )
            ).json()
            assert {r["dimensions"][0]: r["metrics"][0] for r in rows["results"]} == {"": 10, OTHER: 9}, moment
            winter = body | {"filters": [["is", "visit:utm_campaign", ["winter"]]]}
            assert (await h.client.post("/api/v2/query", json=winter, headers=headers)).json()["results"][0][
                "metrics"
            ] == [0], moment


async def test_transposed_pairs_cannot_be_taken_off_other(
    site_with_traffic: tuple[Harness, str, str, list[Event]],
) -> None:
    """The second outside review's attack: a pair (a, b) merged into (other) under the filter A = a, but listed
    as row a under the filter B = b. Taking such rows off the first (other) left the rare rows: 63 counts under
    k on one closed day. Now a pair is listed both ways round or neither, and nothing is left to take off."""
    h, key, _, _ = site_with_traffic
    cache: dict[str, dict[str, list[int]]] = {}

    async def rows(span: Any, dimension: str, where: tuple[str, str] | None = None) -> dict[str, list[int]]:
        body: dict[str, Any] = {
            "site_id": "example.com",
            "metrics": ["visitors", "visits"],
            "date_range": span,
            "dimensions": [dimension],
        }
        if where is not None:
            body["filters"] = [["is", where[0], [where[1]]]]
        asked = repr(body)
        if asked not in cache:
            cache[asked] = {r["dimensions"][0]: r["metrics"] for r in await results(h, key, body)}
        return cache[asked]

    dims = ["visit:source", "visit:browser", "visit:os", "visit:device", "visit:country", "visit:utm_campaign"]
    remainders, pairs = [], 0
    for span in ("day", ["2026-03-12", "2026-03-12"], "7d"):
        for a_dim, b_dim in itertools.permutations(dims, 2):
            for a in [v for v in await rows(span, a_dim) if v != OTHER]:
                group = await rows(span, b_dim, (a_dim, a))
                if OTHER not in group:
                    continue
                known = []
                for b in [v for v in await rows(span, b_dim) if v != OTHER and v not in group]:
                    transposed = await rows(span, a_dim, (b_dim, b))
                    if a in transposed:
                        known.append(transposed[a])
                pairs += len(known)
                rest = [o - sum(k[i] for k in known) for i, o in enumerate(group[OTHER])]
                if known and (small(rest[0]) or small(rest[1])):
                    remainders.append((span, a_dim, a, b_dim, rest))
    assert not remainders, f"{len(remainders)} remainders under k, e.g. {remainders[:3]}"
