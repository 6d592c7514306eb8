"""Parsing: the bytes of a beacon become a validated `Beacon`, or a `Rejection` saying which field is wrong and why.

Accepts Plausible's Events API body (long keys) and the short keys its script sends, as JSON or as the
`text/plain` body that `navigator.sendBeacon` produces. Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from analytics.scrub import host_as_sent

MAX_URL = 2000
MAX_NAME = 120
MAX_DOMAIN = 1000
MAX_PROPS = 30
MAX_PROP_KEY = 300
MAX_PROP_VALUE = 2000
FORBIDDEN_SCHEMES = frozenset({"data", "javascript", "vbscript"})
# A lone UTF-16 surrogate ("\\udfff" in JSON) cannot be encoded as UTF-8, so no database can store it, and a NUL
# is refused by PostgreSQL and cut short by many SQLite tools: both are refused here, field by field, rather
# than failing at the insert (where one such event used to fail every event committed with it).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
ENGAGEMENT = "engagement"
PAGEVIEW = "pageview"

# Each field: the long key first, then the short keys Plausible's script sends; the first present wins.
_KEYS: dict[str, tuple[str, ...]] = {
    "name": ("name", "n"),
    "url": ("url", "u"),
    "domain": ("domain", "d"),
    "referrer": ("referrer", "r"),
    "props": ("props", "p", "meta", "m"),
    "revenue": ("revenue", "$"),
    "interactive": ("interactive", "i"),
    "hash": ("hash", "h"),
    "screen_width": ("screen_width", "w"),
    "scroll_depth": ("scroll_depth", "sd"),
    "engaged_ms": ("engagement_time", "e"),
}


class Url(NamedTuple):
    """An absolute URL, split once; `host` is lowercased and has no port."""

    scheme: str
    host: str
    path: str
    query: str
    fragment: str
    host_as_sent: str
    """The host in the case it was sent in: scrubbing looks at it before it is lowercased (README § Scrubbing)."""


@dataclass(frozen=True, slots=True)
class Revenue:
    amount_micros: int
    currency: str


@dataclass(frozen=True, slots=True)
class Beacon:
    """A well-formed event as the client described it; nothing derived yet."""

    name: str
    url: Url
    domains: tuple[str, ...]
    referrer: Url | None
    props: tuple[tuple[str, str], ...] = ()
    revenue: Revenue | None = None
    interactive: bool = True
    hash_mode: bool = False
    screen_width: int | None = None
    scroll_depth: int | None = None
    engaged_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a request cannot be accepted: an HTTP status (400, 413, 415) and a message naming the field."""

    status: int
    field: str
    message: str

    def body(self) -> dict[str, str]:
        return {"error": f"{self.field}: {self.message}" if self.field else self.message, "field": self.field}


class _Invalid(Exception):
    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.rejection = Rejection(status, field, message)


def parse(body: bytes, content_type: str | None) -> Beacon | Rejection:
    """The body is read as JSON whatever the Content-Type says (sendBeacon sends text/plain, curl -d sends a
    form type); only the error message mentions the type when it is not a JSON one."""
    if not body.strip():
        return Rejection(400, "body", 'is empty; send a JSON object such as {"name":"pageview",...}')
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        media = (content_type or "").split(";", 1)[0].strip().lower()
        hint = "" if media in ("", "application/json", "text/plain") else f" (it was sent as {media})"
        return Rejection(400, "body", f"is not valid JSON{hint}; send a UTF-8 JSON object")
    if not isinstance(data, dict):
        return Rejection(400, "body", "must be a JSON object")
    return from_mapping(data)


def from_mapping(data: dict[str, Any]) -> Beacon | Rejection:
    """The same validation for a body already decoded (the GIF endpoint's query string)."""
    try:
        return _beacon(data)
    except _Invalid as invalid:
        return invalid.rejection


_QUERY_FLAGS = frozenset({"interactive", "i", "hash", "h"})
_QUERY_INTEGERS = frozenset({"screen_width", "w", "scroll_depth", "sd", "engagement_time", "e"})


def from_query(pairs: list[tuple[str, str]], referer: str | None) -> Beacon | Rejection:
    """`GET /api/event.gif?n=pageview&u=...&d=...`: query values are strings, so flags and numbers are
    converted first; without `u`, the page is the request's Referer."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            continue
        if key in _QUERY_FLAGS and value.lower() in ("1", "true", "0", "false"):
            data[key] = value.lower() in ("1", "true")
        elif key in _QUERY_INTEGERS and value.isdigit():
            data[key] = int(value)
        else:
            data[key] = value
    if "url" not in data and "u" not in data and referer:
        data["u"] = referer
    data.setdefault("n", "pageview")
    return from_mapping(data)


_FIELD_OF = {key: (field, rank) for field, keys in _KEYS.items() for rank, key in enumerate(keys)}

Found = dict[str, tuple[str, Any]]
"""field -> (the key the client used, its value); errors name the key as sent, long or short."""


def _fields(data: dict[str, Any]) -> Found:
    """One pass over the body's keys; when a field is sent under several keys, the long key wins."""
    found: Found = {}
    ranks: dict[str, int] = {}
    for key, value in data.items():
        spec = _FIELD_OF.get(key)
        if spec is not None:
            field, rank = spec
            if field not in ranks or rank < ranks[field]:
                found[field] = (key, value)
                ranks[field] = rank
    return found


def _find(found: Found, field: str) -> tuple[str, Any]:
    return found.get(field) or (_KEYS[field][0], None)


def _beacon(body: dict[str, Any]) -> Beacon:
    data = _fields(body)
    name = _text(data, "name", MAX_NAME, required=True).strip()
    if not name:
        raise _Invalid(_find(data, "name")[0], "must not be blank")
    url = _url(_find(data, "url")[0], _text(data, "url", MAX_URL, required=True))
    domain_text = _text(data, "domain", MAX_DOMAIN, required=True)
    if "," in domain_text:
        domains = tuple(dict.fromkeys(d for d in (normalize_domain(p) for p in domain_text.split(",")) if d))
    else:
        domain = normalize_domain(domain_text)
        domains = (domain,) if domain else ()
    if not domains:
        raise _Invalid(_find(data, "domain")[0], 'must name the site, e.g. "example.com"')
    referrer_text = _text(data, "referrer", MAX_URL).strip()
    return Beacon(
        name=name,
        url=url,
        domains=domains,
        referrer=_url(_find(data, "referrer")[0], referrer_text) if referrer_text else None,
        props=_props(*_find(data, "props")),
        revenue=_revenue(*_find(data, "revenue")),
        interactive=_flag(data, "interactive", default=True),
        hash_mode=_flag(data, "hash", default=False),
        screen_width=_integer(data, "screen_width", 0, 100_000),
        scroll_depth=_integer(data, "scroll_depth", -1, 100),
        engaged_ms=_integer(data, "engaged_ms", 0, 86_400_000),
    )


def normalize_domain(text: str) -> str:
    """`WWW.Example.com ` and `example.com` name the same site."""
    domain = text.strip().lower().rstrip(".")
    return domain.removeprefix("www.")


def _text(data: Found, field: str, limit: int, required: bool = False) -> str:
    key, value = _find(data, field)
    if value is None:
        if required:
            raise _Invalid(key, f"is required (as {' or '.join(repr(k) for k in _KEYS[field])})")
        return ""
    if not isinstance(value, str):
        raise _Invalid(key, "must be a string")
    if len(value) > limit:
        raise _Invalid(key, f"is {len(value)} characters long; the limit is {limit}", 413)
    return _storable(key, value)


def unstorable(text: str) -> bool:
    """Whether the text holds a NUL or a lone surrogate, which no database stores."""
    return _UNSTORABLE.search(text) is not None


def _storable(field: str, text: str) -> str:
    found = _UNSTORABLE.search(text)
    if found is not None:
        what = "a NUL character" if found.group() == "\x00" else f"a lone surrogate (U+{ord(found.group()):04X})"
        raise _Invalid(field, f"contains {what} at position {found.start()}; send valid UTF-8 text")
    return text


def _url(field: str, text: str) -> Url:
    text = text.strip()
    try:
        url = urlsplit(text)
        url.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        raise _Invalid(field, "is not a valid URL") from None
    scheme = url.scheme.lower()
    if scheme in FORBIDDEN_SCHEMES:
        raise _Invalid(field, f"{scheme}: URLs are not accepted")
    host = url.hostname
    if not scheme or not host:
        raise _Invalid(field, "must be an absolute URL such as https://example.com/page")
    return Url(scheme, host, url.path, url.query, url.fragment, host_as_sent(url.netloc))


def parse_url(text: str) -> Url:
    """An absolute URL as the ingest endpoint accepts it; raises ValueError saying what is wrong."""
    try:
        return _url("url", text)
    except _Invalid as invalid:
        raise ValueError(invalid.rejection.message) from None


def _scalar(field: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    raise _Invalid(field, "values must be strings, numbers or booleans")


def _props(field: str, value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if isinstance(value, str):  # older Plausible scripts send `m` as a JSON-encoded string
        try:
            value = json.loads(value) if value.strip() else {}
        except (ValueError, RecursionError):
            raise _Invalid(field, "must be a JSON object") from None
    if not isinstance(value, dict):
        raise _Invalid(field, "must be an object of key/value pairs")
    if len(value) > MAX_PROPS:
        raise _Invalid(field, f"has {len(value)} properties; the limit is {MAX_PROPS}", 413)
    props: list[tuple[str, str]] = []
    for key, raw in value.items():
        if raw is None:
            continue
        key = key.strip()
        if not key:
            raise _Invalid(field, "keys must not be blank")
        if len(key) > MAX_PROP_KEY:
            raise _Invalid(field, f"key {key[:40]!a}... is longer than {MAX_PROP_KEY} characters", 413)
        _storable(f"{field} key {key[:40]!a}", key)
        text = _scalar(f"{field}.{key}", raw)
        if len(text) > MAX_PROP_VALUE:
            raise _Invalid(f"{field}.{key}", f"is longer than {MAX_PROP_VALUE} characters", 413)
        _storable(f"{field}.{key}", text)
        if text:
            props.append((key, text))
    return tuple(sorted(props))


def _revenue(field: str, value: Any) -> Revenue | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise _Invalid(field, 'must be an object {"amount": ..., "currency": "EUR"}') from None
    if not isinstance(value, dict):
        raise _Invalid(field, 'must be an object {"amount": ..., "currency": "EUR"}')
    currency = value.get("currency")
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isascii() and currency.isalpha()):
        raise _Invalid(f"{field}.currency", 'must be a three-letter ISO 4217 code such as "EUR"')
    amount = value.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int | float | str):
        raise _Invalid(f"{field}.amount", "must be a number or a decimal string")
    try:
        decimal = Decimal(str(amount).strip())
    except InvalidOperation:
        raise _Invalid(f"{field}.amount", "must be a number or a decimal string") from None
    if not decimal.is_finite() or abs(decimal) >= Decimal(10) ** 12:
        raise _Invalid(f"{field}.amount", "must be a finite amount below 10^12")
    return Revenue(int((decimal * 1_000_000).to_integral_value()), currency.upper())


def _flag(data: Found, field: str, default: bool) -> bool:
    key, value = _find(data, field)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _Invalid(key, "must be true or false")


def _integer(data: Found, field: str, low: int, high: int) -> int | None:
    key, value = _find(data, field)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(key, "must be a whole number")
    if not low <= value <= high:
        raise _Invalid(key, f"must be between {low} and {high}")
    return value
