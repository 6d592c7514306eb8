"""POST /api/event through the ASGI app: answers, drops, limits, CORS and what ends up stored."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from analytics.config import Config
from analytics.sites import SiteSettings
from tests.conftest import CHROME_UA, DATA, IPHONE_UA, Clock, Harness, pageview, start


async def test_accepts_plausible_long_keys_and_stores_coarse_facts(harness: Harness) -> None:
    response = await harness.send(
        pageview(
            url="https://example.com/pricing?utm_source=newsletter&utm_campaign=spring&id=42",
            referrer="https://www.google.com/search?q=secret",
            props={"plan": "pro", "seats": 3},
        )
    )
    assert response.status_code == 202
    assert response.text == ""
    assert response.headers["access-control-allow-origin"] == "*"
    [row] = await harness.rows()
    assert row["name"] == "pageview"
    assert row["hostname"] == "example.com"
    assert row["pathname"] == "/pricing"
    assert row["source"] == "Google"
    assert row["referrer"] == "google.com"
    assert row["utm_source"] == "newsletter"
    assert row["utm_campaign"] == "spring"
    assert (row["browser"], row["browser_version"], row["os"], row["os_version"]) == ("Chrome", "120", "Windows", "10")
    assert row["device"] == "desktop"
    assert json.loads(row["props"]) == {"plan": "pro", "seats": "3"}
    assert row["ts"] == int(harness.clock.now.timestamp() * 1000)
    assert "secret" not in json.dumps(row)


async def test_accepts_short_keys_as_text_plain_like_send_beacon(harness: Harness) -> None:
    body = json.dumps(
        {
            "n": "Signup",
            "u": "https://example.com/#/welcome",
            "d": "example.com",
            "r": "  ",
            "p": {"plan": "free"},
            "h": 1,
            "w": 390,
            "i": False,
        }
    )
    response = await harness.send(body, headers={"Content-Type": "text/plain;charset=UTF-8", "User-Agent": IPHONE_UA})
    assert response.status_code == 202
    [row] = await harness.rows()
    assert row["name"] == "Signup"
    assert row["pathname"] == "/#/welcome"
    assert row["screen"] == "mobile"
    assert row["device"] == "mobile"
    assert row["interactive"] == 0
    assert row["source"] == ""


async def test_engagement_events_keep_scroll_depth_and_time_but_no_revenue(harness: Harness) -> None:
    body = {
        "n": "engagement",
        "u": "https://example.com/blog",
        "d": "example.com",
        "sd": 80,
        "e": 12500,
        "$": {"amount": 5, "currency": "EUR"},
    }
    assert (await harness.send(body)).status_code == 202
    [row] = await harness.rows()
    assert (row["name"], row["scroll_depth"], row["engaged_ms"]) == ("engagement", 80, 12500)
    assert row["revenue_micros"] is None
    assert row["interactive"] == 0


async def test_revenue_is_stored_in_millionths_of_the_currency(harness: Harness) -> None:
    assert (
        await harness.send(pageview(name="Purchase", revenue={"amount": "19.99", "currency": "eur"}))
    ).status_code == 202
    [row] = await harness.rows()
    assert (row["revenue_micros"], row["revenue_currency"]) == (19_990_000, "EUR")


async def test_comma_separated_domains_record_one_event_per_known_site(harness: Harness) -> None:
    await harness.add_site("rollup.example", allowed_hostnames=("*",))  # a roll-up site takes any host
    response = await harness.send(pageview(domain="example.com,rollup.example,unknown.example"))
    assert response.status_code == 202
    rows = await harness.rows()
    assert len(rows) == 2
    assert rows[0]["site_id"] != rows[1]["site_id"]
    assert rows[0]["visitor_id"] != rows[1]["visitor_id"], "the same visitor must not be linkable across sites"


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (pageview(domain="unknown.example"), {}, "unknown-site"),
        (pageview(url="https://evil.example/pricing"), {}, "hostname-not-allowed"),
        (pageview(), {"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}, "bot"),
        (pageview(), {"User-Agent": CHROME_UA.replace("Chrome/", "HeadlessChrome/")}, "bot"),
        (pageview(), {"User-Agent": "python-requests/2.32.3"}, "bot"),
        (pageview(), {"User-Agent": ""}, "bot"),
        (pageview(), {"Sec-GPC": "1"}, "gpc"),
        (pageview(), {"DNT": "1"}, "dnt"),
        (pageview(referrer="https://semalt.com/crawler"), {}, "spam-referrer"),
        (pageview(referrer="http://www.buttons-for-website.com/"), {}, "spam-referrer"),
    ],
)
async def test_well_formed_events_that_must_not_count_get_202_with_the_reason(
    harness: Harness, body: dict[str, object], headers: dict[str, str], reason: str
) -> None:
    response = await harness.send(body, headers=headers)
    assert response.status_code == 202
    assert response.headers["x-analytics-dropped"] == reason
    assert await harness.rows() == []


async def test_site_exclusions_drop_by_ip_network_and_path(harness: Harness) -> None:
    await harness.add_site(
        "office.example", excluded_ips=("198.51.100.0/24", "2001:db8::/32"), excluded_paths=("/admin/*",)
    )
    office = pageview(domain="office.example", url="https://office.example/")
    r1 = await harness.send(office, headers={"X-Forwarded-For": "198.51.100.23"})
    r2 = await harness.send(office, headers={"X-Forwarded-For": "2001:db8:1::5"})
    r3 = await harness.send(pageview(domain="office.example", url="https://office.example/admin/users"))
    r4 = await harness.send(office, headers={"X-Forwarded-For": "198.51.101.23"})
    assert [r.headers.get("x-analytics-dropped") for r in (r1, r2, r3, r4)] == [
        "excluded-ip",
        "excluded-ip",
        "excluded-path",
        None,
    ]
    assert len(await harness.rows()) == 1


async def test_allowed_hostnames_accept_wildcards(harness: Harness) -> None:
    await harness.add_site("app.example", allowed_hostnames=("app.example", "*.app-cdn.net"))
    ok = await harness.send(pageview(domain="app.example", url="https://eu.app-cdn.net/x"))
    dropped = await harness.send(pageview(domain="app.example", url="https://sub.app.example/x"))
    assert ok.headers.get("x-analytics-dropped") is None
    assert dropped.headers["x-analytics-dropped"] == "hostname-not-allowed"


async def test_a_site_added_by_another_process_counts_within_a_second(harness: Harness) -> None:
    ticks = [time.monotonic()]
    harness.services.registry.monotonic = lambda: ticks[0]
    await harness.services.registry.refresh()
    await harness.store.add_site(SiteSettings("new.example"), 0)  # as `analytics site add` would
    new = pageview(domain="new.example", url="https://new.example/")
    ticks[0] += 0.5
    assert (await harness.send(new)).headers["x-analytics-dropped"] == "unknown-site"  # re-read at most 1/s
    ticks[0] += 0.6
    assert (await harness.send(new)).headers.get("x-analytics-dropped") is None
    assert len(await harness.rows()) == 1


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        (b"not json", "body", 400),
        (b"", "body", 400),
        (b"[1,2]", "body", 400),
        (b"[" * 50_000, "body", 400),
        ({"url": "https://example.com/", "domain": "example.com"}, "name", 400),
        (pageview(name="   "), "name", 400),
        (pageview(name=42), "name", 400),
        (pageview(url=None), "url", 400),
        (pageview(url="/relative/path"), "url", 400),
        (pageview(url="javascript:alert(1)"), "url", 400),
        (pageview(url="data:text/html,<script>alert(1)</script>"), "url", 400),
        (pageview(url="https://example.com:99999/"), "url", 400),
        (pageview(url="http://[::1/"), "url", 400),
        (pageview(referrer="javascript:alert(1)"), "referrer", 400),
        (pageview(domain=""), "domain", 400),
        (pageview(domain=["example.com"]), "domain", 400),
        (pageview(props=[1, 2]), "props", 400),
        (pageview(props={"nested": {"a": 1}}), "props.nested", 400),
        (pageview(props={"": "x"}), "props", 400),
        (pageview(props={"n": float("inf")}), "props.n", 400),
        (pageview(revenue={"amount": "lots", "currency": "EUR"}), "revenue.amount", 400),
        (pageview(revenue={"amount": 5, "currency": "euro"}), "revenue.currency", 400),
        (pageview(w="wide"), "w", 400),
        (pageview(sd=250), "sd", 400),
        (pageview(interactive="yes"), "interactive", 400),
        (pageview(url="https://example.com/" + "a" * 2000), "url", 413),
        (pageview(name="x" * 121), "name", 413),
        (pageview(props={f"k{i}": "v" for i in range(31)}), "props", 413),
        (pageview(props={"k": "v" * 2001}), "props.k", 413),
        (pageview(props={"k" * 301: "v"}), "props", 413),
    ],
)
async def test_malformed_input_gets_a_4xx_naming_the_field(
    harness: Harness, body: object, field: str, status: int
) -> None:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body  # json.dumps writes Infinity: not JSON
    response = await harness.send(raw, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()
    assert error["field"] == field
    assert error["error"].startswith(field)
    assert await harness.rows() == []


async def test_oversized_body_gets_413_before_it_is_read(harness: Harness) -> None:
    response = await harness.send(b"{" + b" " * 70_000 + b"}")
    assert response.status_code == 413
    assert response.json()["field"] == "body"


async def test_options_preflight_and_other_methods(harness: Harness) -> None:
    preflight = await harness.client.options(
        "/api/event", headers={"Origin": "https://example.com", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in preflight.headers
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        response = await harness.client.request(method, "/api/event")
        assert response.status_code == 405
        assert response.headers["allow"] == "POST, OPTIONS"


async def test_forwarded_for_is_believed_only_from_trusted_proxies(config: Config, clock: Clock) -> None:
    config = config.replace("geoip", database=str(DATA / "country-code-subset.mmdb"))
    async with start(config, clock) as h:
        await h.add_site()
        await h.send(pageview(), headers={"X-Forwarded-For": "90.84.0.9"})  # via loopback proxy: FR
        transport = __import__("httpx").ASGITransport(app=h.app, client=("8.8.8.8", 5555))
        async with __import__("httpx").AsyncClient(transport=transport, base_url="http://t") as direct:
            await direct.post(
                "/api/event", json=pageview(), headers={"User-Agent": CHROME_UA, "X-Forwarded-For": "90.84.0.9"}
            )
        rows = await h.rows()
        assert [r["country"] for r in rows] == ["FR", "US"]


async def test_store_failure_answers_503_with_retry_after_and_recovers(harness: Harness) -> None:
    store = harness.store
    original = store.insert_events
    calls = 0

    async def failing(events: object) -> None:
        nonlocal calls
        calls += 1
        raise __import__("analytics.errors").errors.StoreError("disk I/O error")

    store.insert_events = failing  # type: ignore[method-assign]
    harness.services.writer._insert = failing
    response = await harness.send(pageview())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert "retry" in response.json()["error"]
    harness.services.writer._insert = original
    assert (await harness.send(pageview())).status_code == 202
    assert calls == 1
    assert len(await harness.rows()) == 1


async def test_full_queue_answers_503_instead_of_buffering(config: Config, clock: Clock) -> None:
    config = config.replace("ingest", queue_max_events=1, batch_interval_ms=200.0)
    async with start(config, clock) as h:
        await h.add_site()
        import asyncio

        first = asyncio.create_task(h.send(pageview()))
        await asyncio.sleep(0.05)
        second = await h.send(pageview())
        assert second.status_code == 503
        assert (await first).status_code == 202
        assert len(await h.rows()) == 1


async def test_visitor_id_is_stable_within_a_day_and_changes_with_the_salt(harness: Harness) -> None:
    await harness.send(pageview())
    harness.clock.advance(hours=1)
    await harness.send(pageview(url="https://example.com/about"))
    await harness.send(pageview(), headers={"User-Agent": IPHONE_UA})
    await harness.send(pageview(), headers={"X-Forwarded-For": "193.51.24.200"})  # same /24: same visitor
    await harness.send(pageview(), headers={"X-Forwarded-For": "193.51.25.77"})
    harness.clock.now = datetime(2026, 3, 15, 0, 10, tzinfo=UTC)
    await harness.send(pageview())
    harness.clock.now = datetime(2026, 3, 15, 1, 0, tzinfo=UTC)
    await harness.send(pageview())
    ids = [r["visitor_id"] for r in await harness.rows()]
    assert ids[0] == ids[1] == ids[3]
    assert len({ids[0], ids[2], ids[4], ids[5]}) == 4  # a new day, and no visit going on: today's salt
    assert ids[6] == ids[5]


async def test_geo_lookup_uses_the_truncated_address_and_skips_private_ranges(config: Config, clock: Clock) -> None:
    config = config.replace("geoip", database=str(DATA / "GeoLite2-City-Test.mmdb"), regions=True, cities=True)
    async with start(config, clock) as h:
        await h.add_site()
        for ip in ("175.16.199.37", "10.1.2.3", "::1", "2a01:e0a::1"):
            await h.send(pageview(), headers={"X-Forwarded-For": ip})
        rows = await h.rows()
        assert [(r["country"], r["region"], r["city"]) for r in rows] == [
            ("CN", "CN-22", "Changchun"),
            ("", "", ""),
            ("", "", ""),
            ("", "", ""),
        ]
