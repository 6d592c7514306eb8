"""Serving tracker.js and optout.js (build matches source, size budget, caching, SRI) and the no-JS GIF endpoint."""

from __future__ import annotations

import base64
import gzip
import hashlib
import subprocess
from pathlib import Path

import pytest

from analytics.tracker import SiteScript
from tests.conftest import CHROME_UA, Harness

ROOT = Path(__file__).parent.parent
STATIC = ROOT / "analytics" / "static"
TERSER = ROOT / "tools" / "node_modules" / ".bin" / "terser"
# Gzipped bytes: the tracker is on every page, the opt-out switch (mostly its sentences in two languages) on one.
BUDGETS = {"tracker": 1024, "optout": 1280}
SCRIPTS = pytest.mark.parametrize("name", sorted(BUDGETS))


@SCRIPTS
def test_the_served_build_is_the_minified_source(name: str) -> None:
    assert TERSER.exists(), "terser is missing: `make test` installs it (npm ci --prefix tools)"
    makefile = (ROOT / "Makefile").read_text()
    options = makefile.split("TERSER_OPTIONS := ", 1)[1].split("\n", 1)[0].split()
    assert f"terser {name}.js $(TERSER_OPTIONS) -o analytics/static/{name}.min.js" in makefile  # `make tracker`
    built = subprocess.run([str(TERSER), str(ROOT / f"{name}.js"), *options], capture_output=True, check=True).stdout
    assert built.strip() == (STATIC / f"{name}.min.js").read_bytes().strip(), "the build is stale: run `make tracker`"


@SCRIPTS
def test_each_script_fits_its_budget_and_the_readme_states_its_size(name: str) -> None:
    size = len(gzip.compress((STATIC / f"{name}.min.js").read_bytes(), 9))
    assert size <= BUDGETS[name], f"{name}.min.js is {size} bytes gzipped; the budget is {BUDGETS[name]}"
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The tracker" if name == "tracker" else "### The opt-out switch", 1)[1]
    assert f"**{size} bytes**" in section.split("\n## ", 1)[0], f"the README must state {name}.js's current size"


@SCRIPTS
async def test_each_script_is_served_with_cache_headers_etag_and_gzip(harness: Harness, name: str) -> None:
    build = (STATIC / f"{name}.min.js").read_bytes()
    plain = await harness.client.get(f"/{name}.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "text/javascript; charset=utf-8"
    assert plain.headers["cache-control"] == "public, max-age=3600"
    assert plain.headers["access-control-allow-origin"] == "*"
    assert plain.headers["x-content-type-options"] == "nosniff"
    assert "set-cookie" not in plain.headers
    assert plain.content == build
    etag = plain.headers["etag"]
    again = await harness.client.get(f"/{name}.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    zipped = await harness.client.get(f"/{name}.js", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["vary"] == "Accept-Encoding"
    assert zipped.content == build  # httpx decodes it
    head = await harness.client.head(f"/{name}.js")
    assert head.status_code == 200 and head.content == b""


@SCRIPTS
async def test_versioned_url_is_immutable_and_matches_the_integrity_hash(harness: Harness, name: str) -> None:
    script = SiteScript.load(name)
    response = await harness.client.get(script.versioned_path, headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    digest = base64.b64encode(hashlib.sha384(response.content).digest()).decode()
    assert script.integrity == f"sha384-{digest}"
    gone = await harness.client.get(f"/{name}.000000000000.js")
    assert gone.status_code == 404 and "analytics site snippet" in gone.json()["error"]
    assert f"use /{name}.js" in gone.json()["error"]


def test_the_two_scripts_are_different_files() -> None:
    tracker, optout = SiteScript.load(), SiteScript.load("optout")
    assert tracker.body != optout.body and tracker.versioned_path != optout.versioned_path
    assert optout.versioned_path == f"/optout.{optout.version}.js"


def test_snippet_pins_the_version_with_sri() -> None:
    script = SiteScript.load()
    snippet = script.snippet("example.com", "https://stats.example.com/")
    assert f'src="https://stats.example.com/tracker.{script.version}.js"' in snippet
    assert f'integrity="{script.integrity}"' in snippet and 'crossorigin="anonymous"' in snippet
    assert 'data-domain="example.com"' in snippet and "defer" in snippet
    optout = SiteScript.load("optout")
    tag = optout.tag("https://stats.example.com/")
    assert tag.startswith(f'<script src="https://stats.example.com/optout.{optout.version}.js"')
    assert f'integrity="{optout.integrity}"' in tag and "data-domain" not in tag and "defer" not in tag


@pytest.mark.parametrize(
    ("query", "headers", "dropped"),
    [
        ("?d=example.com&u=https%3A%2F%2Fexample.com%2Fnoscript&w=390", {}, None),
        ("?d=example.com", {"Referer": "https://example.com/from-referer?x=1"}, None),
        ("?d=example.com&u=https%3A%2F%2Fexample.com%2F", {"Sec-GPC": "1"}, "gpc"),
        ("?d=example.com&u=https%3A%2F%2Fexample.com%2F", {"User-Agent": "curl/8.0"}, "bot"),
        ("?d=unknown.example&u=https%3A%2F%2Funknown.example%2F", {}, "unknown-site"),
    ],
)
async def test_gif_endpoint_counts_like_the_api(
    harness: Harness, query: str, headers: dict[str, str], dropped: str | None
) -> None:
    response = await harness.client.get(
        "/api/event.gif" + query, headers={"User-Agent": CHROME_UA, "X-Forwarded-For": "193.51.24.77", **headers}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert response.headers["cache-control"] == "no-store"
    assert response.content.startswith(b"GIF89a")
    assert response.headers.get("x-analytics-dropped") == dropped
    rows = await harness.rows()
    assert len(rows) == (0 if dropped else 1)
    if not dropped:
        assert rows[0]["name"] == "pageview"
        assert rows[0]["pathname"] in ("/noscript", "/from-referer")


async def test_gif_endpoint_rejects_bad_input_like_the_api(harness: Harness) -> None:
    response = await harness.client.get("/api/event.gif?d=example.com&u=javascript:alert(1)")
    assert response.status_code == 400
    assert response.json()["field"] == "u"
    missing = await harness.client.get("/api/event.gif?u=https%3A%2F%2Fexample.com%2F")
    assert missing.status_code == 400 and missing.json()["field"] == "domain"
    post = await harness.client.post("/api/event.gif")
    assert post.status_code == 405
