"""The Stats API over HTTP: `POST /api/v2/query` (Plausible's v2 shape) and the realtime visitor count.

Bearer keys are checked against their SHA-256; a wrong or revoked key gets 401, a site the key may not read
gets 404 (the same answer as a site that does not exist, so keys cannot probe for sites).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from analytics import apikeys
from analytics.answers import Answers, Busy
from analytics.beacon import normalize_domain
from analytics.errors import StoreError, TooSlow
from analytics.profile import EVERYTHING, Collect
from analytics.query import QueryError, parse
from analytics.sites import Site, minimised
from analytics.web.auth import Sessions, same

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from analytics.store.base import Store

log = logging.getLogger("analytics")
REALTIME_WINDOW = timedelta(minutes=5)
MAX_QUERY_BYTES = 65_536
QUERY_SECONDS = 10.0  # a question still unanswered after this gets a 503: no dashboard question comes close
RETRY_AFTER = "30"
BUSY_RETRY_AFTER = "5"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    # backslashreplace: a message quoting what was sent must not fail to encode (a lone surrogate cannot be UTF-8)
    safe = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse({"error": safe}, status_code=status, headers=headers)


def _too_slow() -> JSONResponse:
    return _error(
        503,
        f"the question took longer than {QUERY_SECONDS:g} seconds and was stopped: ask for a shorter date_range, "
        "or retry later if the server is busy",
        {"Retry-After": RETRY_AFTER},
    )


def _valid_text(body: Any) -> bool:
    """Whether every string of the JSON is real text: JSON may escape a lone surrogate ("\\udfff"), which is no
    character, cannot be stored nor sent back, and would otherwise fail deep inside the answer."""
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return False
    return True


class StatsApi:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime],
        open_days_max_age: float = 10.0,
        open_days_stale_for: float = 120.0,
        sessions: Sessions | None = None,
        shared_site: Callable[[Request, str], Awaitable[Site | None]] | None = None,
        *,
        min_visitors: int,
        collect: Collect = EVERYTHING,
    ) -> None:
        self.store = store
        self.clock = clock
        self.collect = collect
        """The global switches: a site without custom events and goals is answered without page goals."""
        self.answers = Answers(store, open_days_max_age, open_days_stale_for, min_visitors=min_visitors)
        self.sessions = sessions
        self.shared_site = shared_site
        self.budget = QUERY_SECONDS

    async def prepare(self, sites: list[Site], now: datetime) -> None:
        """Computes today's rows of the sites that have raw events (a head start only)."""
        try:
            await self.answers.prepare([minimised(s, self.collect) for s in sites], now)
        except Exception as exc:  # noqa: BLE001 -- questions compute the rows themselves if this failed
            log.warning("could not prepare today's figures: %s", exc)

    async def _site(self, request: Request, domain: Any) -> Site | JSONResponse:
        """The site asked for, if the caller may read it: an API key (Authorization: Bearer), the dashboard's
        session (its cookie and X-CSRF-Token header), or a shared link (its token in the path: its one site)."""
        link = request.path_params.get("token")
        if link is not None:
            site = await self.shared_site(request, str(link)) if self.shared_site else None
            if site is None:
                return _error(404, "this shared link does not exist, has expired, was revoked or needs its password")
            return site
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        allows: Callable[[int], bool]
        if scheme.lower() == "bearer" and token.strip():
            key = await self.store.find_api_key(apikeys.digest(token.strip()))
            if key is None or key.revoked_at is not None:
                return _error(401, "invalid or revoked API key")
            allows, who = key.allows, "this API key"
        else:
            session = await self.sessions.current(request) if self.sessions else None
            if session is None:
                return _error(
                    401,
                    "missing API key: send the header Authorization: Bearer <key> "
                    "(create a key with `analytics apikey create --site example.com`)",
                )
            if not same(request.headers.get("x-csrf-token"), session[1]):
                return _error(403, "the X-CSRF-Token header is missing or wrong: reload the dashboard")
            allows, who = session[0].allows, "your account"
        if not isinstance(domain, str) or not domain.strip():
            return _error(400, 'site_id is required: the site\'s domain, e.g. "example.com"')
        name = normalize_domain(domain)
        site = next((s for s in await self.store.list_sites() if s.domain == name), None)
        if site is None or not allows(site.id):
            return _error(404, f"site {name} does not exist or {who} may not read it")
        return site

    async def query(self, request: Request) -> Response:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_QUERY_BYTES:
            return _error(413, f"the query is larger than {MAX_QUERY_BYTES} bytes")
        raw = await request.body()
        if len(raw) > MAX_QUERY_BYTES:
            return _error(413, f"the query is larger than {MAX_QUERY_BYTES} bytes")
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            return _error(400, "the body must be JSON")
        if not _valid_text(body):
            return _error(400, "the body holds an escaped lone surrogate (such as \\udfff), which is not text")
        try:
            site = await self._site(request, body.get("site_id") if isinstance(body, dict) else None)
            site = minimised(site, self.collect) if isinstance(site, Site) else site
            if isinstance(site, JSONResponse):
                return site
            query = parse(body)
            async with asyncio.timeout(self.budget):
                answer = await self.answers.answer(site, query, self.clock(), self.budget)
            return Response(answer, media_type="application/json")
        except QueryError as exc:
            return _error(400, str(exc))
        except (TimeoutError, TooSlow):
            return _too_slow()
        except Busy as exc:
            return _error(503, f"{exc}: retry in a few seconds", {"Retry-After": BUSY_RETRY_AFTER})
        except StoreError as exc:
            return _error(503, f"the database is unavailable: {exc}")

    async def realtime(self, request: Request) -> JSONResponse:
        try:
            site = await self._site(request, request.query_params.get("site_id"))
            site = minimised(site, self.collect) if isinstance(site, Site) else site
            if isinstance(site, JSONResponse):
                return site
            since = self.clock() - REALTIME_WINDOW
            return JSONResponse(await self.store.recent_visitors(site.id, int(since.timestamp() * 1000)))
        except StoreError as exc:
            return _error(503, f"the database is unavailable: {exc}")
