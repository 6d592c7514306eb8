"""uvicorn's httptools protocol with two additions: a bound on the bytes of a request's head, and the instant its
head was complete, for load shedding.

httptools has no limit of its own: a 32 MB User-Agent was read whole into memory, and one connection sending
4 MB headers cut everyone else to ~51 requests/s. Here a head larger than `max_head` is answered 431 and the
connection closed as soon as it crosses the limit, before the rest is read; a head still incomplete after
`head_timeout` is answered 408 and its connection closed (a slow client cannot hold a connection for long).
Connections are capped per address and in all, below the limit on open files: a flood of connections from
anywhere, a trusted proxy included, is closed at the door rather than starve the database of file descriptors.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from analytics.privacy import Network, parse_ip

RECEIVED = "analytics.received"
"""Scope key: time.monotonic() when the request's head was parsed (how long it then waited for the app is the
queueing delay the ingest endpoint sheds on)."""


class BoundedHttpTools(HttpToolsProtocol):
    max_head = 32_768
    head_timeout = 10.0
    per_address = 0
    """Open connections allowed from one address (0: no cap); trusted proxies, which carry many clients, are not
    capped. Held in memory only, as a count per address while its connections are open."""
    trusted: tuple[Network, ...] = ()
    max_total = 0
    """Open connections allowed from everyone at once (0: no cap)."""
    _open: ClassVar[dict[str, int]] = {}
    _total: ClassVar[list[int]] = [0]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_head = True
        self._head_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            if self._head_timer is None:  # a head has begun: it must be complete within head_timeout
                self._head_timer = self.loop.call_later(self.head_timeout, self._too_slow)
            # Measured before parsing: a whole head can arrive in one read, and the parser would take it.
            end = data.find(b"\r\n\r\n")
            size = self._head_bytes + (len(data) if end < 0 else end + 4)
            if size > self.max_head:
                if not self.transport.is_closing():
                    self._refuse()
                return
            self._head_bytes = size
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._stop_timer()
        self.scope[RECEIVED] = time.monotonic()  # type: ignore[literal-required]
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._counted: str | None = None
        self._in_total = False
        if self.max_total:
            if self._total[0] >= self.max_total:
                # Every descriptor left is for the database, the logs and the workers: no more, and no answer.
                transport.close()
                return
            self._total[0] += 1
            self._in_total = True
        if not self.per_address or self.client is None:
            return
        host = self.client[0]
        address = parse_ip(host)
        if address is not None and any(network.contains(address) for network in self.trusted):
            return
        if self._open.get(host, 0) >= self.per_address:
            # One address holding this many connections is a flood (a slowloris): no more, and no answer.
            transport.close()
            return
        self._open[host] = self._open.get(host, 0) + 1
        self._counted = host

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        if self._in_total:
            self._total[0] -= 1
            self._in_total = False
        if self._counted is not None:
            left = self._open.get(self._counted, 1) - 1
            if left > 0:
                self._open[self._counted] = left
            else:
                self._open.pop(self._counted, None)
            self._counted = None
        super().connection_lost(exc)

    def _stop_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _too_slow(self) -> None:
        """A head still incomplete after head_timeout: a slow client (or a slowloris) holds a connection."""
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self._answer(408, "Request Timeout", f"the request's headers took over {self.head_timeout:g} s to arrive")

    def _refuse(self) -> None:
        self._answer(
            431,
            "Request Header Fields Too Large",
            f"the request's headers are larger than {self.max_head} bytes; send shorter headers",
        )

    def _answer(self, status: int, reason: str, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n" % (status, reason.encode())
            + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
            + body
        )
        self.transport.close()


def bounded(
    max_head: int, head_timeout: float, per_address: int = 0, trusted: tuple[Network, ...] = (), max_total: int = 0
) -> type[BoundedHttpTools]:
    """The protocol class uvicorn instantiates per connection, with the configured limits."""
    limits = {
        "max_head": max_head,
        "head_timeout": head_timeout,
        "per_address": per_address,
        "trusted": trusted,
        "max_total": max_total,
    }
    return type("BoundedHttpTools", (BoundedHttpTools,), {**limits, "_open": {}, "_total": [0]})


FD_RESERVE = 256  # descriptors kept for the database files, logs, worker processes' pipes, the listening socket


def connection_limit(configured: int) -> int:
    """The cap on open connections: as configured, or what the limit on open files leaves (raised first to its
    hard limit: the common default of 1,024 is no match for a flood, and a process may raise it itself)."""
    try:
        import resource
    except ImportError:  # not on this system: no limit known
        return configured
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return configured
    available = max(soft - FD_RESERVE, 16)
    return min(configured, available) if configured else available
