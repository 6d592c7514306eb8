"""uvicorn's httptools protocol with two additions: a bound on the bytes of a request's head, and the instant its
head was complete, for load shedding.

httptools has no limit of its own: a 32 MB User-Agent was read whole into memory, and one connection sending
4 MB headers cut everyone else to ~51 requests/s. Here a head larger than `max_head` is answered 431 and the
connection closed as soon as it crosses the limit, before the rest is read; a head still incomplete after
`head_timeout` is answered 408 and its connection closed (a slow client cannot hold a connection for long).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

RECEIVED = "analytics.received"
"""Scope key: time.monotonic() when the request's head was parsed (how long it then waited for the app is the
queueing delay the ingest endpoint sheds on)."""


class BoundedHttpTools(HttpToolsProtocol):
    max_head = 32_768
    head_timeout = 10.0

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

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
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


def bounded(max_head: int, head_timeout: float) -> type[BoundedHttpTools]:
    """The protocol class uvicorn instantiates per connection, with the configured limits."""
    return type("BoundedHttpTools", (BoundedHttpTools,), {"max_head": max_head, "head_timeout": head_timeout})
