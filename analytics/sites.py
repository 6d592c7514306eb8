"""Sites: the registered domains, their settings, and the in-memory registry the ingest path reads.

The registry is a dictionary from domain to compiled rules, re-read from the store on a timer and, at most once
a second, when an event names a domain it does not know yet (so a site added with the CLI counts at once).
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from analytics.beacon import normalize_domain
from analytics.privacy import Network

_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)


@dataclass(frozen=True, slots=True)
class Site:
    id: int
    domain: str
    timezone: str = "UTC"
    allowed_hostnames: tuple[str, ...] = ()
    """Hostname patterns (`*` wildcard) events may come from; empty means the domain and its subdomains."""
    excluded_ips: tuple[str, ...] = ()
    excluded_paths: tuple[str, ...] = ()
    page_goals: tuple[str, ...] = ()
    """Path patterns whose pageviews count as goals (see rollup.PageGoals)."""


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """What an operator gives when adding a site; validated by `check_settings`."""

    domain: str
    timezone: str = "UTC"
    allowed_hostnames: tuple[str, ...] = ()
    excluded_ips: tuple[str, ...] = ()
    excluded_paths: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Goal:
    """A conversion: a custom event by name (kind "event"), or pageviews of paths matching a pattern (kind
    "page", `*` a wildcard)."""

    kind: str
    value: str

    @property
    def label(self) -> str:
        return self.value if self.kind == "event" else f"Visit {self.value}"


def check_goal(kind: str, value: str) -> Goal:
    value = value.strip()
    if kind not in ("event", "page"):
        raise ValueError('a goal is an "event" (a custom event name) or a "page" (a path pattern)')
    if not value or len(value) > 120:
        raise ValueError("a goal needs a name of 1 to 120 characters")
    if kind == "page" and not value.startswith("/"):
        raise ValueError(f"a page goal is a path starting with / (e.g. /thank-you or /blog/*), not {value!r}")
    if kind == "event" and value == "pageview":
        raise ValueError('"pageview" is not a custom event: use a page goal for pages')
    return Goal(kind, value)


def check_settings(settings: SiteSettings) -> SiteSettings:
    """Normalises the settings or raises ValueError with a message for the operator."""
    domain = normalize_domain(settings.domain.removeprefix("https://").removeprefix("http://").rstrip("/"))
    if not _DOMAIN.match(domain):
        raise ValueError(f"{settings.domain!r} is not a domain name; give it as example.com (no scheme, no path)")
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {settings.timezone!r}; use an IANA name such as Europe/Paris") from None
    for net in settings.excluded_ips:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ValueError(f"{net!r} is not an IP address or network (e.g. 198.51.100.0/24)") from None
    for path in settings.excluded_paths:
        if not path.startswith("/"):
            raise ValueError(f"excluded path {path!r} must start with / (e.g. /admin/*)")
    hosts = tuple(h.strip().lower() for h in settings.allowed_hostnames if h.strip())
    return SiteSettings(domain, settings.timezone, hosts, settings.excluded_ips, settings.excluded_paths)


def _globs(patterns: Sequence[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


@dataclass(frozen=True, slots=True)
class SiteRules:
    """A site with its patterns compiled once, for the per-event checks."""

    site: Site
    _hosts: re.Pattern[str] | None = field(repr=False)
    _paths: re.Pattern[str] | None = field(repr=False)
    networks: tuple[Network, ...] = ()

    @classmethod
    def of(cls, site: Site) -> SiteRules:
        hosts = tuple(normalize_domain(h) for h in site.allowed_hostnames)
        nets = tuple(Network.parse(n) for n in site.excluded_ips)
        return cls(site, _globs(hosts), _globs(site.excluded_paths), nets)

    def host_allowed(self, hostname: str) -> bool:
        if self._hosts is None:
            domain = self.site.domain
            return hostname == domain or hostname.endswith("." + domain)
        return self._hosts.match(hostname) is not None

    def path_excluded(self, path: str) -> bool:
        return self._paths is not None and self._paths.match(path) is not None


class SiteRegistry:
    """Domain → rules, shared by the requests of one process."""

    def __init__(
        self,
        load: Callable[[], Awaitable[list[Site]]],
        refresh_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self.monotonic = monotonic
        self._refresh_seconds = refresh_seconds
        self._by_domain: dict[str, SiteRules] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    def get(self, domain: str) -> SiteRules | None:
        return self._by_domain.get(domain)

    async def refresh(self, min_age: float = 0.0) -> None:
        """Re-reads the sites unless that happened less than `min_age` seconds ago; concurrent calls share one read."""
        async with self._lock:
            if self.monotonic() - self._loaded_at < min_age:
                return
            sites = await self._load()
            self._by_domain = {s.domain: SiteRules.of(s) for s in sites}
            self._loaded_at = self.monotonic()

    async def lookup(self, domain: str) -> SiteRules | None:
        """The site for a domain; an unknown one triggers a re-read at most once a second."""
        rules = self._by_domain.get(domain)
        if rules is None:
            await self.refresh(min_age=1.0)
            rules = self._by_domain.get(domain)
        return rules
