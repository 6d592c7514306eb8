"""Security headers on every page and API answer (the ingest endpoint sets its own).

A strict Content-Security-Policy: scripts, styles, images and requests from this origin only, no inline
script or style, no plugins, no framing, except shared dashboards whose owner allowed embedding.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Receive, Scope, Send

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; manifest-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {frames}"
)
EMBEDDABLE = "x-frame-policy"  # set by a view that may be framed; replaced by the real headers here


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                embeddable = headers.get(EMBEDDABLE) == "embeddable"
                if EMBEDDABLE in headers:
                    del headers[EMBEDDABLE]
                headers.setdefault("Content-Security-Policy", CSP.format(frames="*" if embeddable else "'none'"))
                if not embeddable:
                    headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
            await send(message)

        await self.app(scope, receive, sending)
