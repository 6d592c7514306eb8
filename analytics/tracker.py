"""Serving tracker.js: the committed minified build, with a content hash for the ETag, the versioned URL and the
Subresource Integrity value, and a precompressed gzip body."""

from __future__ import annotations

import base64
import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

PATH = "/tracker.js"
# The unversioned URL may change with an upgrade: caches keep it an hour. A versioned URL never changes.
SHORT_CACHE = "public, max-age=3600"
LONG_CACHE = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class TrackerScript:
    body: bytes
    gzipped: bytes
    version: str
    etag: str
    integrity: str

    @classmethod
    def load(cls) -> TrackerScript:
        body = (resources.files("analytics") / "static" / "tracker.min.js").read_bytes()
        digest = hashlib.sha256(body).hexdigest()
        return cls(
            body=body,
            gzipped=gzip.compress(body, 9, mtime=0),
            version=digest[:12],
            etag=f'"{digest[:32]}"',
            integrity="sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode(),
        )

    @property
    def versioned_path(self) -> str:
        return f"/tracker.{self.version}.js"

    def snippet(self, domain: str, base_url: str) -> str:
        src = base_url.rstrip("/") + self.versioned_path
        return (
            f'<script defer data-domain="{domain}" src="{src}"\n'
            f'        integrity="{self.integrity}" crossorigin="anonymous"></script>'
        )

    def response(self, request: Request, cache_control: str) -> Response:
        headers = {
            "Cache-Control": cache_control,
            "ETag": self.etag,
            "Vary": "Accept-Encoding",
            # Needed for <script integrity=... crossorigin="anonymous"> on other sites.
            "Access-Control-Allow-Origin": "*",
            "X-Content-Type-Options": "nosniff",
        }
        if self.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        body = self.body
        if "gzip" in request.headers.get("accept-encoding", ""):
            body = self.gzipped
            headers["Content-Encoding"] = "gzip"
        return Response(body, headers=headers, media_type="text/javascript; charset=utf-8")
