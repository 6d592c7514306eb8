"""Serving the scripts sites embed, tracker.js and optout.js (the opt-out switch): each its committed minified
build, with a content hash for the ETag, the versioned URL and the Subresource Integrity value, and a
precompressed gzip body."""

from __future__ import annotations

import base64
import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

# The unversioned URL may change with an upgrade: caches keep it an hour. A versioned URL never changes.
SHORT_CACHE = "public, max-age=3600"
LONG_CACHE = "public, max-age=31536000, immutable"
# What prints the tag of each script's current version.
SNIPPET_COMMANDS = {"tracker": "analytics site snippet DOMAIN", "optout": "analytics site snippet DOMAIN --optout"}


@dataclass(frozen=True, slots=True)
class SiteScript:
    name: str  # "tracker": served at /tracker.js and /tracker.<version>.js, built from tracker.js
    body: bytes
    gzipped: bytes
    version: str
    etag: str
    integrity: str

    @classmethod
    def load(cls, name: str = "tracker") -> SiteScript:
        body = (resources.files("analytics") / "static" / f"{name}.min.js").read_bytes()
        digest = hashlib.sha256(body).hexdigest()
        return cls(
            name=name,
            body=body,
            gzipped=gzip.compress(body, 9, mtime=0),
            version=digest[:12],
            etag=f'"{digest[:32]}"',
            integrity="sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode(),
        )

    @property
    def path(self) -> str:
        return f"/{self.name}.js"

    @property
    def versioned_path(self) -> str:
        return f"/{self.name}.{self.version}.js"

    @property
    def versioned_route(self) -> str:
        return f"/{self.name}.{{version}}.js"

    def tag(self, base_url: str, attributes: str = "") -> str:
        """The <script> tag of this version, pinned with its Subresource Integrity hash."""
        src = base_url.rstrip("/") + self.versioned_path
        return (
            f'<script {attributes}{" " if attributes else ""}src="{src}"\n'
            f'        integrity="{self.integrity}" crossorigin="anonymous"></script>'
        )

    def snippet(self, domain: str, base_url: str) -> str:
        """The tracker's tag for one site."""
        return self.tag(base_url, f'defer data-domain="{domain}"')

    async def latest(self, request: Request) -> Response:
        return self.response(request, SHORT_CACHE)

    async def versioned(self, request: Request) -> Response:
        if request.path_params["version"] != self.version:
            return JSONResponse(
                {
                    "error": f"this version of {self.name}.js is no longer served; use {self.path}, or print the "
                    f"current snippet with `{SNIPPET_COMMANDS[self.name]}`"
                },
                status_code=404,
            )
        return self.response(request, LONG_CACHE)

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
