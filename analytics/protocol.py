"""uvicorn's httptools protocol with two additions: a bound on the bytes of a request's head, and the instant its
head was complete, for load shedding.

httptools has no limit of its own: a 32 MB User-Agent was read whole into memory, and one connection sending
4 MB headers cut everyone else to ~51 requests/s. Here a head larger than `max_head` is answered 431 and the
connection closed as soon as it crosses the limit, before the rest is read.
"""

from __future__ import annotations

import json
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

RECEIVED = "analytics.received"
"""Scope key: time.monotonic() when the request's head was parsed (how long it then waited for the app is the
queueing delay the ingest endpoint sheds on)."""


class BoundedHttpTools(HttpToolsProtocol):
    max_head = 32_768

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_head = True

    def data_received(self, data: bytes) -> None:
        if self._in_head:
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
        self.scope[RECEIVED] = time.monotonic()  # type: ignore[literal-required]
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True

    def _refuse(self) -> None:
        body = json.dumps(
            {"error": f"the request's headers are larger than {self.max_head} bytes; send shorter headers"}
        ).encode()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
            + body
        )
        self.transport.close()


def bounded(max_head: int) -> type[BoundedHttpTools]:
    """The protocol class uvicorn instantiates per connection, with the configured limit."""
    return type("BoundedHttpTools", (BoundedHttpTools,), {"max_head": max_head})
