"""Hostile input and floods: nothing a visitor or an attacker sends may cost another request's event."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.beacon import Beacon, Rejection, parse
from analytics.config import Config
from analytics.limits import Buckets
from analytics.protocol import RECEIVED
from analytics.saturation import LoopLag
from tests.conftest import CHROME_UA, Clock, Harness, pageview, start
from tests.test_store_sqlite import event

# Every string a beacon carries, and where it goes in the body.
STRING_FIELDS: dict[str, Any] = {
    "name": lambda s: pageview(name="x" + s),
    "url": lambda s: pageview(url="https://example.com/" + s),
    "domain": lambda s: pageview(domain="example.com," + s),
    "referrer": lambda s: pageview(referrer="https://ref.example/" + s),
    "props key": lambda s: pageview(props={"k" + s: "v"}),
    "props value": lambda s: pageview(props={"k": "v" + s}),
    "meta string": lambda s: pageview(meta=json.dumps({"k": s}, ensure_ascii=True)),
    "revenue currency": lambda s: pageview(revenue={"amount": 1, "currency": s}),
}
POISON = ["\udfff", "\ud800", "\x00", "a\udc80b", "\ud83d"]  # lone surrogates (one half of an emoji) and NUL


def body(field: str, text: str) -> bytes:
    # ensure_ascii: the surrogate travels as the JSON escape \udfff, which is how an attacker sends it
    return json.dumps(STRING_FIELDS[field](text), ensure_ascii=True).encode()


def storable(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" not in value and value.encode("utf-8", "strict") is not None
    if isinstance(value, tuple):
        return all(storable(v) for v in value)
    return True


@pytest.mark.parametrize("field", STRING_FIELDS)
@pytest.mark.parametrize("poison", POISON, ids=repr)
async def test_poisoned_events_do_not_cost_honest_events_committed_with_them(
    harness: Harness, field: str, poison: str
) -> None:
    honest = [pageview(url=f"https://example.com/honest-{i}") for i in range(30)]
    requests = [harness.send(json.dumps(b).encode()) for b in honest]
    requests.insert(15, harness.send(body(field, poison)))
    answers = await asyncio.gather(*requests)
    bad = answers.pop(15)
    assert [a.status_code for a in answers] == [202] * 30
    assert bad.status_code in (202, 400), bad.text  # 202 only when the value is ignored (an unknown extra domain)
    if bad.status_code == 400:
        assert bad.json()["field"] and ("surrogate" in bad.text or "NUL" in bad.text or "currency" in bad.text)
    stored = {r["pathname"] for r in await harness.rows()}
    assert {f"/honest-{i}" for i in range(30)} <= stored


ANY_TEXT = st.characters(exclude_categories=())  # surrogates and control characters included
SHORT_OR_OVERLONG = st.text(ANY_TEXT, max_size=60) | st.text(ANY_TEXT, min_size=1990, max_size=2100)


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(list(STRING_FIELDS)), text=SHORT_OR_OVERLONG)
def test_parsing_refuses_what_cannot_be_stored_and_names_the_field(field: str, text: str) -> None:
    found = parse(body(field, text), "text/plain")
    if isinstance(found, Rejection):
        assert found.status in (400, 413) and found.field
        json.dumps(found.body()).encode()  # the error itself can be sent
    else:
        assert isinstance(found, Beacon)
        assert all(storable(getattr(found, f)) for f in found.__slots__)  # type: ignore[attr-defined]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(list(STRING_FIELDS)), text=SHORT_OR_OVERLONG.filter(bool))
async def test_any_text_in_any_field_is_stored_or_refused_alone(harness: Harness, field: str, text: str) -> None:
    before = len(await harness.rows())
    honest, hostile = await asyncio.gather(
        harness.send(pageview(url="https://example.com/ok")), harness.send(body(field, text))
    )
    assert honest.status_code == 202
    assert hostile.status_code in (202, 400, 413), hostile.text
    stored = len(await harness.rows()) - before
    assert stored == 1 + (hostile.status_code == 202 and "x-analytics-dropped" not in hostile.headers)


async def test_a_row_the_database_refuses_is_retried_apart_from_the_others(harness: Harness) -> None:
    """Defence in depth behind parsing: a value that reaches the real store and fails there."""
    writer = harness.services.writer
    honest = [writer.submit([event(ts=i, pathname=f"/h{i}")]) for i in range(20)]
    bad = writer.submit([event(ts=99, pathname="/\udfff")])
    results = await asyncio.gather(*honest, bad, return_exceptions=True)
    assert results[:20] == [None] * 20
    assert "could not be stored" in str(results[20])
    assert {r["pathname"] for r in await harness.rows()} == {f"/h{i}" for i in range(20)}


async def test_one_network_is_rate_limited_and_the_others_are_not(config: Config, clock: Clock) -> None:
    config = config.replace("ingest", rate_limit_address_per_minute=30)
    async with start(config, clock) as h:
        await h.add_site()
        flood = [await h.send(pageview(), headers={"X-Forwarded-For": "193.51.24.77"}) for _ in range(40)]
        assert [r.status_code for r in flood] == [202] * 30 + [429] * 10
        assert int(flood[-1].headers["retry-after"]) >= 1
        assert "ingest.rate_limit_address_per_minute" in flood[-1].json()["error"]
        neighbour = await h.send(pageview(), headers={"X-Forwarded-For": "193.51.24.200"})  # the same /24
        assert neighbour.status_code == 429
        elsewhere = await h.send(pageview(), headers={"X-Forwarded-For": "81.2.69.142"})
        assert elsewhere.status_code == 202
        assert len(await h.rows()) == 31


def test_a_bucket_refills_at_its_rate_and_forgets_idle_keys() -> None:
    now = [0.0]
    buckets = Buckets(60, monotonic=lambda: now[0])
    assert all(buckets.take("a") == 0 for _ in range(60))
    assert buckets.take("a") == pytest.approx(1.0)
    now[0] += 2.0
    assert buckets.take("a") == 0 and buckets.take("a") == 0 and buckets.take("a") > 0


async def test_one_site_is_rate_limited(config: Config, clock: Clock) -> None:
    config = config.replace("ingest", rate_limit_site_per_minute=10, rate_limit_address_per_minute=0)
    async with start(config, clock) as h:
        await h.add_site()
        await h.add_site("other.example")
        answers = [await h.send(pageview(), headers={"X-Forwarded-For": f"81.2.{i}.1"}) for i in range(12)]
        assert [r.status_code for r in answers] == [202] * 10 + [429] * 2
        assert "this site" in answers[-1].json()["error"]
        other = await h.send(pageview(domain="other.example", url="https://other.example/"))
        assert other.status_code == 202


async def test_only_the_first_bytes_of_a_user_agent_are_looked_at(harness: Harness) -> None:
    limit = harness.services.config.ingest.max_user_agent_bytes
    long = CHROME_UA + " " + "x" * (limit - len(CHROME_UA))
    for tail in ("a" * 10_000, "b" * 20_000):
        assert (await harness.send(pageview(), headers={"User-Agent": long + tail})).status_code == 202
    await harness.send(pageview(), headers={"User-Agent": CHROME_UA})
    ids = [r["visitor_id"] for r in await harness.rows()]
    assert ids[0] == ids[1] != ids[2]  # what lies past the limit changes nothing, not even the hash


async def test_a_request_that_waited_too_long_for_the_server_is_shed_at_once(harness: Harness) -> None:
    """Queueing delay is measured from when uvicorn parsed the request's head (analytics.protocol)."""
    app = harness.app
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": json.dumps(pageview()).encode(), "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    shed_after = harness.services.config.ingest.shed_after_ms / 1000
    for waited, status in ((shed_after + 1, 503), (0.0, 202)):
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/api/event",
            "headers": [(b"user-agent", CHROME_UA.encode())],
            "client": ("81.2.69.142", 1),
            "query_string": b"",
            RECEIVED: time.monotonic() - waited,
        }
        sent.clear()
        await app(scope, receive, send)
        assert sent[0]["status"] == status
    assert len(await harness.rows()) == 1
    assert dict(sent[0]["headers"]).get(b"retry-after") is None  # the 202
    assert app.state.services  # (the app answered both itself)


async def test_metrics_are_off_by_default_and_only_for_the_listed_networks(config: Config, clock: Clock) -> None:
    async with start(config, clock) as h:
        assert (await h.client.get("/metrics")).status_code == 404
    async with start(config.replace("server", metrics_networks=("127.0.0.1/32",)), clock) as h:
        await h.add_site()
        await h.send(pageview())
        await h.send(pageview(), headers={"User-Agent": "curl/8.5.0"})
        await h.send(b"{not json")
        behind_proxy = await h.client.get("/metrics", headers={"X-Forwarded-For": "193.51.24.77"})
        assert behind_proxy.status_code == 404  # a visitor reaching us through the local proxy
        page = await h.client.get("/metrics")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = page.text
        assert "analytics_events_committed_total 1\n" in text
        assert 'analytics_ingest_dropped_total{reason="bot"} 1\n' in text
        assert 'analytics_ingest_rejected_total{status="400"} 1\n' in text
        assert "analytics_queue_events 0\n" in text
        assert 'analytics_batch_commit_seconds_bucket{le="+Inf"} 1\n' in text
        for line in text.splitlines():  # the format Prometheus parses: comments, or "name{labels} value"
            assert line.startswith("# ") or re.fullmatch(r"[a-z_]+(\{[a-z]+=\"[^\"]*\"\})? [0-9.e+-]+", line), line


async def test_addresses_the_settings_ignore_are_not_limited_as_one_network(config: Config, clock: Clock) -> None:
    config = config.replace("ingest", rate_limit_address_per_minute=5).replace("privacy", ipv4_prefix=0)
    async with start(config, clock) as h:
        await h.add_site()
        answers = [await h.send(pageview(), headers={"X-Forwarded-For": f"81.2.{i}.1"}) for i in range(10)]
        assert [r.status_code for r in answers] == [202] * 10  # all IPv4 addresses truncate to 0.0.0.0 here


async def test_a_percent_encoded_nul_in_a_utm_value_is_not_stored(harness: Harness) -> None:
    """Query values are decoded after the URL's text is checked (found by the hostile review)."""
    answer = await harness.send(pageview(url="https://example.com/x?utm_source=a%00b&ref=r%00"))
    assert answer.status_code == 202
    [row] = await harness.rows()
    assert (row["utm_source"], row["source"]) == ("ab", "ab")


def spin(seconds: float) -> None:
    """Keeps the loop busy computing, as a flood of requests does."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


async def test_a_loop_that_stays_late_lowers_the_admitted_share_and_one_pause_does_not() -> None:
    lag = LoopLag(bound=0.2)
    task = asyncio.create_task(lag.run())
    try:
        await asyncio.sleep(0.2)
        spin(0.3)  # one long pause of the loop
        await asyncio.sleep(0.06)
        assert lag.lag < 0.2 and lag.share == 1.0
        for _ in range(6):  # a loop that stays saturated: every turn takes 0.3 s of its own work
            spin(0.3)
            await asyncio.sleep(0)
        assert lag.lag > 0.2 and lag.share < 1.0
        await asyncio.sleep(2.5)  # the load is gone: the share comes back
        assert lag.share == 1.0
    finally:
        task.cancel()


async def test_a_loop_late_for_want_of_a_core_admits_everything() -> None:
    """Late, but not for its own work (other programs had the cores: here the loop just waits): refusing
    beacons would lose them and not make the server any faster."""
    lag = LoopLag(bound=0.2)
    task = asyncio.create_task(lag.run())
    try:
        await asyncio.sleep(0.2)
        for _ in range(6):
            time.sleep(0.3)  # noqa: ASYNC251 -- a loop that gets no core, on purpose
            await asyncio.sleep(0)
        assert lag.lag > 0.2 and lag.share == 1.0
        assert lag.busy < 0.5
    finally:
        task.cancel()


async def test_a_loop_saturated_on_a_shared_machine_still_sheds() -> None:
    """Its own work makes it late, but other programs hold the cores 60 % of the time: it ran 40 % of the
    time, which is all of the time it could run. Counted against the wall time alone, it looked idle."""
    lag = LoopLag(bound=0.2, cpu=lambda: 0.4 * time.monotonic(), waited=lambda: 0.6 * time.monotonic())
    task = asyncio.create_task(lag.run())
    try:
        await asyncio.sleep(0.2)
        for _ in range(6):
            time.sleep(0.3)  # noqa: ASYNC251 -- late, and (by the clocks above) busy while it could run
            await asyncio.sleep(0)
        assert lag.lag > 0.2 and lag.busy > 0.5
        assert lag.share < 1.0
    finally:
        task.cancel()


async def test_ingest_admits_only_its_share_while_the_loop_stays_late(harness: Harness) -> None:
    ingest = harness.app.ingest  # type: ignore[attr-defined]
    ingest.loop_lag.share = 0.25
    answers = [await harness.send(pageview()) for _ in range(8)]
    assert sorted(a.status_code for a in answers) == [202] * 2 + [503] * 6
    refused = next(a for a in answers if a.status_code == 503)
    assert "overloaded" in refused.json()["error"] and int(refused.headers["retry-after"]) >= 1
    ingest.loop_lag.share = 1.0
    assert (await harness.send(pageview())).status_code == 202
    assert len(await harness.rows()) == 3
