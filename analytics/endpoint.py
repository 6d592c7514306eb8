"""`POST /api/event`: a plain ASGI callable, because it runs for every pageview and Starlette's request object,
body buffering and response classes cost more than the whole pipeline behind them.

Answers: 202 accepted (after the commit), 202 + `X-Analytics-Dropped` for events we chose not to count, 400 /
413 / 415 with a JSON body naming the problem, 405 for other methods, 503 + `Retry-After` when the store
cannot take the event. Nothing the client sends can make it answer 500.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import parse_qsl

from starlette.types import Receive, Scope, Send

from analytics import privacy
from analytics.beacon import Beacon, Rejection, from_query, parse
from analytics.errors import InvalidData, StoreError, Unavailable
from analytics.events import Event
from analytics.ingest import PROPERTY_NOT_ALLOWED, Client, Drop, signal_drop
from analytics.limits import RateLimits
from analytics.privacy import Network
from analytics.protocol import RECEIVED
from analytics.saturation import LoopLag
from analytics.sites import Site

if TYPE_CHECKING:
    from analytics.app import Services

log = logging.getLogger("analytics.ingest")

_CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", b"X-Analytics-Dropped, Retry-After"),
]
_PREFLIGHT = [
    *_CORS,
    (b"access-control-allow-methods", b"POST, OPTIONS"),
    (b"access-control-allow-headers", b"Content-Type"),
    (b"access-control-max-age", b"86400"),
    (b"content-length", b"0"),
]
INGEST_PATH = "/api/event"
PIXEL_PATH = "/api/event.gif"
# The smallest transparent 1x1 GIF (43 bytes).
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_PIXEL_HEADERS = [
    (b"content-type", b"image/gif"),
    (b"content-length", str(len(PIXEL)).encode()),
    (b"cache-control", b"no-store"),  # every view must reach us
    (b"access-control-allow-origin", b"*"),
]
_JSON = (b"content-type", b"application/json")

# The common answer, built once; no body, so that the response is a single write to the socket.
_ACCEPTED_START = {
    "type": "http.response.start",
    "status": 202,
    "headers": [*_CORS, (b"content-length", b"0")],
}
_ACCEPTED_BODY = {"type": "http.response.body", "body": b""}


class _Headers(NamedTuple):
    content_type: str | None
    user_agent: bytes
    forwarded: str | None
    length: int
    gpc: bool
    dnt: bool
    referer: str | None
    datacenter: bool


def _headers(scope: Scope, datacenter_header: bytes = b"") -> _Headers:
    """The request headers ingest reads, in one pass over the list (`datacenter_header`: lower case, b"" = off)."""
    content_type = forwarded = referer = None
    user_agent = b""
    gpc = dnt = datacenter = False
    length = -1
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value.decode("latin-1")
        elif name == b"user-agent":
            user_agent = value
        elif name == b"x-forwarded-for":
            forwarded = value.decode("latin-1") if forwarded is None else f"{forwarded},{value.decode('latin-1')}"
        elif name == b"content-length":
            length = int(value) if value.isdigit() else -1
        elif name == b"sec-gpc":
            gpc = value.strip() == b"1"
        elif name == b"dnt":
            dnt = value.strip() == b"1"
        elif name == b"referer":
            referer = value.decode("latin-1")
        elif name == datacenter_header:
            datacenter = value.strip().lower() in (b"1", b"true", b"yes")
    return _Headers(content_type, user_agent, forwarded, length, gpc, dnt, referer, datacenter)


class Refusal(NamedTuple):
    """Not now: 429 (a rate limit) or 503 (the store, or the server, cannot take it), with Retry-After."""

    status: int
    message: str
    retry_after: bytes


class IngestEndpoint:
    def __init__(self, services: Services, trusted: Sequence[Network], clock: Callable[[], datetime]) -> None:
        self.services = services
        self.trusted = tuple(trusted)
        self.clock = clock
        ingest = services.config.ingest
        self.max_body = ingest.max_body_bytes
        self.max_user_agent = ingest.max_user_agent_bytes
        self.retry_after = str(ingest.retry_after_seconds).encode()
        self.shed_after = ingest.shed_after_ms / 1000
        self.loop_lag = LoopLag(ingest.shed_loop_lag_ms / 1000)  # run by the app's lifespan
        self.limits = RateLimits(ingest.rate_limit_site_per_minute, ingest.rate_limit_address_per_minute)
        self.counts = Counts()
        self.datacenter_header = ingest.datacenter_header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        pixel = scope["path"] == PIXEL_PATH
        received = scope.get(RECEIVED)
        if method != "OPTIONS" and (
            not self.loop_lag.admit() or (received is not None and time.monotonic() - received > self.shed_after)
        ):
            # The server is saturated: its loop runs late, or this request waited too long for its turn. Answering
            # at once costs a fraction of the pipeline, which is what lets the accepted requests stay fast.
            self.counts.shed += 1
            await _refuse(send, Refusal(503, "the server is overloaded; retry later", self.retry_after))
            return
        if pixel and method == "GET":
            await self._pixel(scope, send)
            return
        if method == "OPTIONS" and not pixel:
            await send({"type": "http.response.start", "status": 204, "headers": _PREFLIGHT})
            await send({"type": "http.response.body", "body": b""})
            return
        if method != "POST" or pixel:
            allowed = "GET" if pixel else "POST, OPTIONS"
            await _reply(
                send, 405, {"error": f"{method} is not allowed here; use {allowed}"}, [(b"allow", allowed.encode())]
            )
            return

        headers = _headers(scope, self.datacenter_header)
        if headers.length > self.max_body:
            await self._reject(send, Rejection(413, "body", f"is {headers.length} bytes; the limit is {self.max_body}"))
            return
        body = await self._read(receive)
        if body is None:
            return  # the client went away
        if len(body) > self.max_body:
            await self._reject(send, Rejection(413, "body", f"is larger than {self.max_body} bytes"))
            return
        beacon = parse(body, headers.content_type)
        if isinstance(beacon, Rejection):
            await self._reject(send, beacon)
            return
        outcome = await self._ingest(beacon, self._client(scope, headers))
        if outcome is None:
            await send(_ACCEPTED_START)
            await send(_ACCEPTED_BODY)
        elif isinstance(outcome, Drop):
            await _reply(send, 202, None, [(b"x-analytics-dropped", outcome.value.encode())])
        elif isinstance(outcome, Rejection):
            await _reject(send, outcome)
        else:
            await _refuse(send, outcome)

    async def _reject(self, send: Send, rejection: Rejection) -> None:
        self.counts.record(rejection)
        await _reject(send, rejection)

    async def _pixel(self, scope: Scope, send: Send) -> None:
        """`GET /api/event.gif?...`: the same event from a query string, answered with a 1x1 GIF."""
        headers = _headers(scope, self.datacenter_header)
        pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        beacon = from_query(pairs, headers.referer)
        if isinstance(beacon, Rejection):
            await self._reject(send, beacon)
            return
        outcome = await self._ingest(beacon, self._client(scope, headers))
        if isinstance(outcome, Rejection):
            await _reject(send, outcome)
            return
        if isinstance(outcome, Refusal):
            await _refuse(send, outcome)
            return
        extra: list[tuple[bytes, bytes]] = [(b"x-analytics-dropped", outcome.value.encode())] if outcome else []
        await send({"type": "http.response.start", "status": 200, "headers": [*_PIXEL_HEADERS, *extra]})
        await send({"type": "http.response.body", "body": PIXEL})

    def _client(self, scope: Scope, headers: _Headers) -> Client:
        peer = scope.get("client")
        address = privacy.client_ip(peer[0] if peer else None, headers.forwarded, self.trusted)
        datacenter = headers.datacenter and privacy.from_trusted_proxy(peer[0] if peer else None, self.trusted)
        # Only the first max_user_agent_bytes are looked at (parsed, hashed, cached): no browser sends more.
        return Client(address, headers.user_agent[: self.max_user_agent], headers.gpc, headers.dnt, datacenter)

    async def _ingest(self, beacon: Beacon, client: Client) -> Drop | Rejection | Refusal | None:
        """None once the events are committed; a Drop; a Rejection (a 4xx); or a Refusal (429, 503)."""
        outcome = await self._outcome(beacon, client)
        self.counts.record(outcome)
        return outcome

    async def _outcome(self, beacon: Beacon, client: Client) -> Drop | Rejection | Refusal | None:
        network = self.services.pipeline.anonymizer.network(client.ip) if client.ip is not None else None
        if network is not None:  # the key is the truncated address, never the whole one
            limited = self.limits.check((), network, len(beacon.domains))
            if limited is not None:
                return self._limited(*limited)
        try:
            result = await self._events(beacon, client)
        except StoreError as exc:
            log.error("ingest could not read sites or salts: %s", exc)
            return Refusal(503, "the database is unavailable; retry later", self.retry_after)
        if isinstance(result, Drop):
            return result
        events, unlisted = result
        limited = self.limits.check(tuple(e.site_id for e in events), None, len(events))
        if limited is not None:
            return self._limited(*limited)
        try:
            await self.services.writer.submit(events)
        except Unavailable as exc:
            return Refusal(503, f"{exc}; retry later", self.retry_after)
        except InvalidData as exc:  # the batch writer committed the other requests' events without these
            return Rejection(400, "body", f"{exc}; send text as valid UTF-8 and numbers within range")
        for site, count in unlisted:  # counted once the events are stored without those properties
            self.services.drops.add(site, PROPERTY_NOT_ALLOWED, count)
        return None

    def _limited(self, scope: str, wait: float) -> Refusal:
        ingest = self.services.config.ingest
        per_minute = ingest.rate_limit_address_per_minute if scope == "address" else ingest.rate_limit_site_per_minute
        who = "your network" if scope == "address" else "this site"
        return Refusal(
            429,
            f"too many events from {who}: the limit is {per_minute} a minute (ingest.rate_limit_{scope}_per_minute)",
            str(max(1, math.ceil(wait))).encode(),
        )

    async def _read(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return b"x" * size  # enough for the caller to answer 413; the rest is not read
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _events(self, beacon: Beacon, client: Client) -> tuple[list[Event], list[tuple[Site, int]]] | Drop:
        """The events to store (one per known site the beacon names) with, per site, how many properties were left
        out; or the reason none is stored. Drops are counted for the sites they concern (README § Scrubbing)."""
        services = self.services
        drop = signal_drop(client, services.pipeline.signals)
        if drop is not None:
            for domain in beacon.domains:  # the known sites only: a visitor who opted out is not looked at further
                known = services.registry.get(domain)
                if known is not None:
                    services.drops.add(known.site, drop)
            return drop
        events: list[Event] = []
        unlisted: list[tuple[Site, int]] = []
        first_drop: Drop | None = None
        now = self.clock()
        for domain in beacon.domains:
            rules = services.registry.get(domain) or await services.registry.lookup(domain)
            if rules is None:
                first_drop = first_drop or Drop.UNKNOWN_SITE
                continue
            candidate = services.pipeline.candidate(beacon, client, rules)
            drop = services.pipeline.gate(candidate)
            if drop is not None:
                services.drops.add(rules.site, drop)
                first_drop = first_drop or drop
                continue
            if candidate.unlisted:
                unlisted.append((rules.site, candidate.unlisted))
            event = services.pipeline.event(candidate, now)
            if event is None:  # first event of a new UTC day in this process: load or create its salt
                await services.salts.ensure(now.astimezone(UTC).date())
                event = services.pipeline.event(candidate, now)
                assert event is not None
            events.append(event)
        if not events:
            assert first_drop is not None
            return first_drop
        return events, unlisted


async def _reply(
    send: Send, status: int, payload: dict[str, str] | None, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = b"" if payload is None else json.dumps(payload).encode()
    headers = (
        [*_CORS, (b"content-length", str(len(body)).encode())]
        if payload is None
        else [*_CORS, _JSON, (b"content-length", str(len(body)).encode())]
    )
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _reject(send: Send, rejection: Rejection) -> None:
    await _reply(send, rejection.status, rejection.body())


async def _refuse(send: Send, refusal: Refusal) -> None:
    await _reply(send, refusal.status, {"error": refusal.message}, [(b"retry-after", refusal.retry_after)])


class Counts:
    """What ingest answered, for /metrics: by outcome and reason, never by visitor."""

    def __init__(self) -> None:
        self.accepted_requests = 0
        self.dropped: dict[str, int] = {}
        self.rejected: dict[str, int] = {}
        self.refused: dict[str, int] = {}
        self.shed = 0

    def record(self, outcome: Drop | Rejection | Refusal | None) -> None:
        if outcome is None:
            self.accepted_requests += 1
        elif isinstance(outcome, Drop):
            self.dropped[outcome.value] = self.dropped.get(outcome.value, 0) + 1
        elif isinstance(outcome, Rejection):
            key = str(outcome.status)
            self.rejected[key] = self.rejected.get(key, 0) + 1
        else:
            key = str(outcome.status)
            self.refused[key] = self.refused.get(key, 0) + 1
