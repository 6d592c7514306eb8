"""Erasure: `analytics forget` and the settings page take a value out of a site's figures and raw events, keep its
totals, and leave no stored trace of it; removing a site and every purge leave no value nothing refers to."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from analytics import apikeys
from analytics.jobs import purge, rollup_site
from tests.conftest import IPHONE_UA, Harness, pageview
from tests.test_dashboard import csrf_of, login, make_user
from tests.test_server import run_cli, server_env  # noqa: F401 (a fixture)

SECRET = "/account/jane-doe-1984"


async def _traffic(h: Harness) -> str:
    """Two days (one rolled up, one open) where one visitor saw SECRET; returns an API key."""
    for day in (10, 11):
        h.clock.now = datetime(2026, 3, day, 9, tzinfo=UTC)
        await h.send(pageview(url="https://example.com/", referrer="https://www.google.com/"))
        await h.send(pageview(url=f"https://example.com{SECRET}"))
        await h.send(pageview(url="https://example.com/pricing"), headers={"User-Agent": IPHONE_UA})
        await h.send(pageview(name="Signup", props={"plan": "jane@corp"}), headers={"User-Agent": IPHONE_UA})
    site = next(s for s in await h.store.list_sites() if s.domain == "example.com")
    await rollup_site(h.store, site, h.clock.now, min_visitors=1)  # March 10 closed; March 11 open
    key = apikeys.new_key()
    await h.store.add_api_key("test", apikeys.digest(key), apikeys.display_prefix(key), [site.id], 0)
    return key


async def _ask(h: Harness, key: str, **body: Any) -> list[dict[str, Any]]:
    body = {"site_id": "example.com", "metrics": ["visitors", "visits", "pageviews"], "date_range": "7d"} | body
    response = await h.client.post("/api/v2/query", json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


async def _forget_in_settings(h: Harness, dimension: str, value: str, *, signed_in: bool = False) -> str:
    if not signed_in:
        await make_user(h)
        await login(h.client)
    csrf = await csrf_of(h.client, "/sites/example.com/settings")
    form = {"csrf": csrf, "dimension": dimension, "value": value}
    unconfirmed = await h.client.post("/sites/example.com/settings/forget", data=form)
    assert unconfirmed.status_code == 400 and "cannot be brought back" in unconfirmed.text
    done = await h.client.post("/sites/example.com/settings/forget", data=form | {"confirm": "1"})
    assert done.status_code == 200, done.text
    found = re.search(r'<p class="notice" role="status">([^<]*)</p>', done.text)
    assert found, done.text
    return html.unescape(found.group(1))


async def test_a_forgotten_page_leaves_no_trace_and_the_totals_stay(harness: Harness) -> None:
    h = harness
    key = await _traffic(h)
    totals = await _ask(h, key)
    pages = {r["dimensions"][0]: r["metrics"] for r in await _ask(h, key, dimensions=["event:page"])}
    assert SECRET in pages

    report = await _forget_in_settings(h, "event:page", SECRET)

    # the open day's raw event and the closed day's (raw events are kept 48 hours); as page and as exit page
    assert "2 raw events rewritten, 2 stored values deleted" in report, report
    assert await _ask(h, key) == totals
    after = {r["dimensions"][0]: r["metrics"] for r in await _ask(h, key, dimensions=["event:page"])}
    assert SECRET not in after
    assert after["(other)"][2] >= pages[SECRET][2] - 1  # the closed day's pageview moved to (other)
    for dimension in ("visit:entry_page", "visit:exit_page", "visit:source"):
        assert SECRET not in str(await _ask(h, key, dimensions=[dimension]))
    assert not await h.rows(f"SELECT * FROM dim_values WHERE value = '{SECRET}'")
    assert not await h.rows(f"SELECT * FROM events WHERE pathname = '{SECRET}'")
    filtered = await _ask(h, key, filters=[["is", "event:page", [SECRET]]])
    assert filtered[0]["metrics"] == [0, 0, 0]


async def test_a_forgotten_property_value_goes_with_its_raw_events(harness: Harness) -> None:
    h = harness
    key = await _traffic(h)
    assert "jane@corp" in str(await _ask(h, key, dimensions=["event:props:plan"]))
    report = await _forget_in_settings(h, "event:props:plan", "jane@corp")
    assert "2 raw events rewritten" in report
    assert "jane@corp" not in str(await _ask(h, key, dimensions=["event:props:plan"]))
    assert not await h.rows("SELECT * FROM events WHERE props LIKE '%jane@corp%'")
    assert await h.rows("SELECT * FROM events WHERE props LIKE '%(other)%'")  # the event itself still counts
    assert not await h.rows("SELECT * FROM dim_values WHERE value = 'jane@corp'")


async def test_the_cli_forgets_and_says_what_it_removed(tmp_path: Path, server_env: dict[str, str]) -> None:  # noqa: F811
    assert run_cli(tmp_path, server_env, "site", "add", "example.com").returncode == 0
    refused = run_cli(tmp_path, server_env, "forget", "--site", "example.com", "--dimension", "page", "--value", "x")
    assert refused.returncode != 0 and "unknown dimension 'page'" in refused.stderr
    unconfirmed = run_cli(
        tmp_path, server_env, "forget", "--site", "example.com", "--dimension", "event:page", "--value", SECRET
    )
    assert unconfirmed.returncode != 0 and "--yes" in unconfirmed.stderr
    done = run_cli(
        tmp_path, server_env, "forget", "--site", "example.com", "--dimension", "event:page", "--value", SECRET, "--yes"
    )
    assert done.returncode == 0, done.stderr
    assert "0 raw events rewritten" in done.stdout and SECRET in done.stdout


async def test_removing_a_site_deletes_its_values_but_not_another_sites(harness: Harness) -> None:
    h = harness
    await h.add_site("other.example")
    await h.send(pageview(url="https://example.com/only-here"))
    await h.send(pageview(url="https://example.com/shared"))
    await h.send(pageview(url="https://other.example/shared", domain="other.example"))
    h.clock.now = datetime(2026, 3, 16, tzinfo=UTC)
    for site in await h.store.list_sites():
        await rollup_site(h.store, site, h.clock.now, min_visitors=1)
    assert await h.rows("SELECT * FROM dim_values WHERE value = '/only-here'")
    await h.store.remove_site("example.com")
    assert not await h.rows("SELECT * FROM dim_values WHERE value = '/only-here'")
    assert await h.rows("SELECT * FROM dim_values WHERE value = '/shared'")


async def test_every_purge_deletes_values_nothing_refers_to(harness: Harness) -> None:
    """Not only when some aggregate expired by age (as before): whatever left a value unused (here one written
    by hand, as an older version or an interrupted job could), the next purge deletes it."""
    h = harness
    await h.send(pageview(url="https://example.com/kept"))
    site = next(s for s in await h.store.list_sites() if s.domain == "example.com")
    h.clock.now = datetime(2026, 3, 15, 12, tzinfo=UTC)
    await rollup_site(h.store, site, h.clock.now, min_visitors=1)
    await h.rows("INSERT INTO dim_values (dim, value) VALUES (1, '/briefly') RETURNING id")
    report = await purge(h.store, h.clock.now, 48, 25)
    assert report.unused_values > 0
    assert not await h.rows("SELECT * FROM dim_values WHERE value = '/briefly'")
    assert await h.rows("SELECT * FROM dim_values WHERE value = '/kept'")


ADDRESS = "zelda (at) victim"  # a value scrubbing does not recognise (no domain), sent in several UTM fields


async def _utm_traffic(h: Harness) -> str:
    """Two days (one rolled up, one open) of a visit without a referrer whose utm_source and utm_campaign are
    ADDRESS (so that its source is ADDRESS too), a visit from a referrer host, and one from Google."""
    quoted = ADDRESS.replace(" ", "%20")
    for day in (10, 11):
        h.clock.now = datetime(2026, 3, day, 9, tzinfo=UTC)
        await h.send(pageview(url=f"https://example.com/q?utm_source={quoted}&utm_campaign={quoted}"))
        await h.send(pageview(referrer="https://blog.example/post"), headers={"User-Agent": IPHONE_UA})
        await h.send(pageview(referrer="https://www.google.com/"), headers={"X-Forwarded-For": "193.51.25.77"})
    site = next(s for s in await h.store.list_sites() if s.domain == "example.com")
    await rollup_site(h.store, site, h.clock.now, min_visitors=1)
    key = apikeys.new_key()
    await h.store.add_api_key("test", apikeys.digest(key), apikeys.display_prefix(key), [site.id], 0)
    return key


# Forgotten under one of these: gone from all three; what is still stored elsewhere is named.
SOURCE_FORGETS = [
    ("visit:utm_source", ADDRESS, ["visit:utm_campaign"]),
    ("visit:source", ADDRESS, ["visit:utm_campaign"]),
    ("visit:referrer", "blog.example", []),
]


@pytest.mark.parametrize(("dimension", "value", "remains"), SOURCE_FORGETS)
async def test_a_source_is_forgotten_as_source_referrer_and_utm_source_and_what_remains_is_named(
    harness: Harness, dimension: str, value: str, remains: list[str]
) -> None:
    h = harness
    key = await _utm_traffic(h)
    totals = await _ask(h, key)
    for d in ("visit:source", "visit:referrer", "visit:utm_source"):
        if value in str(await _ask(h, key, dimensions=[d])):
            break
    else:
        raise AssertionError(f"{value} not stored")

    report = await _forget_in_settings(h, dimension, value)

    others = [d for d in ("visit:source", "visit:referrer", "visit:utm_source") if d != dimension]
    assert f"(also as {others[0]} and {others[1]})" in report, report
    if remains:
        assert f"the same value is still stored as {' and '.join(remains)}: forget it" in report, report
    else:
        assert "still stored" not in report, report
    assert await _ask(h, key) == totals
    for d in ("visit:source", "visit:referrer", "visit:utm_source"):
        assert value not in str(await _ask(h, key, dimensions=[d])), d
        assert (await _ask(h, key, filters=[["is", d, [value]]]))[0]["metrics"] == [0, 0, 0]
    stored = await h.rows("SELECT source, referrer, utm_source FROM events")
    assert value not in str(stored)
    assert {"Google", "(other)"} <= {r["source"] for r in stored}  # the other visits keep their sources
    if remains:  # what is named is there, and forgetting it there leaves nothing
        assert value in str(await _ask(h, key, dimensions=[remains[0]]))
        again = await _forget_in_settings(h, remains[0], value, signed_in=True)
        assert "still stored" not in again, again
        assert not await h.rows(f"SELECT * FROM dim_values WHERE value = '{value}'")


async def test_the_report_says_where_else_a_page_is_stored(harness: Harness) -> None:
    h = harness
    await h.send(pageview(url="https://example.com/users/jane-doe?utm_content=/users/jane-doe"))
    await h.send(pageview(name="Signup", props={"plan": "/users/jane-doe"}))
    report = await _forget_in_settings(h, "event:page", "/users/jane-doe")
    assert "(also as visit:entry_page and visit:exit_page)" in report
    assert "still stored as visit:utm_content and event:props:plan: forget it under each" in report, report
