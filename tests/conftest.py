from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from analytics.app import Services, create_app
from analytics.config import Config
from analytics.sites import SiteSettings
from analytics.store import SQLiteStore, Store

DATA = Path(__file__).parent / "data"
CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Mobile/15E148 Safari/604.1"
)


class Clock:
    """A controllable clock for the app: tests move time instead of sleeping."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC))


@pytest.fixture
def config(tmp_path: Path) -> Config:
    # In-process, the app shares its event loop with the test itself (Hypothesis generating and shrinking
    # examples, a test's own synchronous work): that loop's lag says nothing about the server's load, so
    # shedding by it is off here. It is tested on its own (tests/test_hostile.py: LoopLag, the admitted share).
    # Most tests check exact figures of one to a few visitors: they run with k = 1 (no threshold); the threshold
    # is tested on its own (tests/test_anonymity.py), with the default k. They check every field, so they run
    # under the standard profile (everything collected); the cnil profile's defaults are tested on their own
    # (tests/test_profile.py).
    return (
        Config()
        .replace("database", url=f"sqlite:///{tmp_path}/data/analytics.db")
        .replace("ingest", shed_loop_lag_ms=60_000)
        .replace("privacy", min_visitors=1, profile="standard")
    )


@dataclass
class Harness:
    app: Starlette
    client: httpx.AsyncClient
    clock: Clock

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    @property
    def store(self) -> Store:
        return self.services.store

    async def add_site(self, domain: str = "example.com", **settings: Any) -> None:
        await self.store.add_site(SiteSettings(domain, **settings), 0)
        await self.services.registry.refresh()

    async def send(self, body: Any = None, *, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        merged = {"User-Agent": CHROME_UA, "X-Forwarded-For": "193.51.24.77"}
        merged.update(headers or {})
        if body is not None and not isinstance(body, bytes | str):
            kwargs["json"] = body
        elif body is not None:
            kwargs["content"] = body
        return await self.client.post("/api/event", headers=merged, **kwargs)

    async def rows(self, sql: str = "SELECT * FROM events ORDER BY ts, rowid") -> list[dict[str, Any]]:
        store = self.store
        assert isinstance(store, SQLiteStore)
        async with store.admin.execute(sql) as cur:
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]

    async def salts(self) -> dict[str, bytes]:
        """The salts' file's content, by UTC day, through the store's own connection to it."""
        store = self.store
        assert isinstance(store, SQLiteStore)
        async with store.salts_db.execute("SELECT day, salt FROM salts ORDER BY day") as cur:
            return {str(day): bytes(salt) for day, salt in await cur.fetchall()}


def pageview(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "pageview", "url": "https://example.com/pricing", "domain": "example.com"}
    body.update(fields)
    return body


@contextlib.asynccontextmanager
async def start(config: Config, clock: Clock) -> AsyncIterator[Harness]:
    """The app with its lifespan, and a client; a context manager, so that a failing test still shuts the app
    (and its database threads) down at once instead of leaving pytest waiting at exit."""
    app = create_app(config, clock=clock)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://analytics.test") as client:
                yield Harness(app, client, clock)
    finally:
        # The app freezes what exists at its start (gc.freeze: right for a server, one app per process); the
        # tests start hundreds in one process, whose frozen objects were never freed (10.7 GB by the end).
        gc.unfreeze()


PROPS = ("plan", "seats")
"""The custom properties the default site stores (a site stores those it allows, none by default)."""


@pytest.fixture
async def harness(config: Config, clock: Clock) -> AsyncIterator[Harness]:
    async with start(config, clock) as h:
        await h.add_site(allowed_props=PROPS)
        yield h
