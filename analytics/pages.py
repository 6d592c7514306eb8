"""Page facts from the event URL: hostname, path (no query, fragment only in hash mode) and the five UTM values.

Values are taken as sent; `analytics.scrub` cleans them before they are stored (the gates see them unscrubbed).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from analytics.beacon import Url

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
MAX_UTM = 300


@dataclass(frozen=True, slots=True)
class Page:
    hostname: str
    path: str
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""
    utm_content: str = ""
    utm_term: str = ""
    ref: str = ""
    """`?ref=` / `?source=`: names the source when the browser sent no referrer (Plausible does the same)."""


def hostname(url: Url) -> str:
    return url.host.removeprefix("www.")


def hash_route(fragment: str) -> str:
    """The route of a hash-mode fragment: its own query (`#/reset?token=...&email=...`) is dropped as the page's
    is, and so are parameters without a route (`#access_token=...&state=...`, OAuth's implicit flow), from the
    segment where they start."""
    route = fragment.split("?", 1)[0].split("&", 1)[0]
    equals = route.find("=")
    if equals >= 0:
        route = route[: route.rfind("/", 0, equals) + 1]
    return route


def page(url: Url, hash_mode: bool = False) -> Page:
    path = url.path or "/"
    if hash_mode and url.fragment:
        route = hash_route(url.fragment)
        if route:
            path = f"{path}#{route}"
    if not url.query:
        return Page(hostname(url), path)
    found: dict[str, str] = {}
    for key, value in parse_qsl(url.query, keep_blank_values=False):
        key = key.lower()
        if (key in UTM_KEYS or key in ("ref", "source")) and key not in found:
            # Decoded here, after the URL's text was checked: a %00 would put a NUL in the stored value.
            found[key] = value.replace("\x00", "").strip()[:MAX_UTM]
    return Page(
        hostname(url),
        path,
        utm_source=found.get("utm_source", ""),
        utm_medium=found.get("utm_medium", ""),
        utm_campaign=found.get("utm_campaign", ""),
        utm_content=found.get("utm_content", ""),
        utm_term=found.get("utm_term", ""),
        ref=found.get("ref") or found.get("source", ""),
    )
