"""`ingest.datacenter_header`: a trusted reverse proxy flags data-centre traffic, and such events are dropped."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from analytics.config import Config
from analytics.errors import ConfigError
from tests.conftest import CHROME_UA, Clock, Harness, pageview, start


@pytest.fixture
async def flagged(config: Config, clock: Clock) -> AsyncIterator[Harness]:
    """The app with `ingest.datacenter_header = "X-Datacenter"`; the harness connects from 127.0.0.1, a trusted
    proxy by default."""
    async with start(config.replace("ingest", datacenter_header="X-Datacenter"), clock) as h:
        await h.add_site()
        yield h


@pytest.mark.parametrize("value", ["1", "true", "TRUE", " yes "])
async def test_flagged_events_from_the_trusted_proxy_are_dropped_as_datacenter(flagged: Harness, value: str) -> None:
    response = await flagged.send(pageview(), headers={"X-Datacenter": value})
    assert response.status_code == 202
    assert response.headers["x-analytics-dropped"] == "datacenter"
    assert await flagged.rows() == []


@pytest.mark.parametrize("headers", [{}, {"X-Datacenter": "0"}, {"X-Datacenter": "false"}, {"X-Datacenter": ""}])
async def test_events_the_proxy_does_not_flag_are_counted(flagged: Harness, headers: dict[str, str]) -> None:
    response = await flagged.send(pageview(), headers=headers)
    assert response.status_code == 202
    assert "x-analytics-dropped" not in response.headers
    assert len(await flagged.rows()) == 1


async def test_the_header_is_ignored_from_a_peer_that_is_not_a_trusted_proxy(flagged: Harness) -> None:
    transport = httpx.ASGITransport(app=flagged.app, client=("203.0.113.9", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://analytics.test") as direct:
        response = await direct.post(
            "/api/event", json=pageview(), headers={"User-Agent": CHROME_UA, "X-Datacenter": "1"}
        )
    assert response.status_code == 202
    assert "x-analytics-dropped" not in response.headers, "a visitor must not be able to drop itself... or others"
    assert len(await flagged.rows()) == 1


async def test_the_header_is_ignored_when_the_option_is_off(harness: Harness) -> None:
    response = await harness.send(pageview(), headers={"X-Datacenter": "1"})
    assert "x-analytics-dropped" not in response.headers
    assert len(await harness.rows()) == 1


async def test_the_pixel_endpoint_drops_flagged_views_too(flagged: Harness) -> None:
    response = await flagged.client.get(
        "/api/event.gif?n=pageview&d=example.com&u=https%3A%2F%2Fexample.com%2F",
        headers={"User-Agent": CHROME_UA, "X-Datacenter": "1"},
    )
    assert response.status_code == 200
    assert response.headers["x-analytics-dropped"] == "datacenter"
    assert await flagged.rows() == []


def test_the_option_must_be_a_header_name() -> None:
    with pytest.raises(ConfigError, match="HTTP header name"):
        Config().replace("ingest", datacenter_header="X Datacenter: 1")
