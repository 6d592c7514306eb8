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
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from analytics.beacon import MAX_PROP_KEY, normalize_domain, unstorable
from analytics.privacy import Network
from analytics.profile import EVERYTHING, Collect, collect
from analytics.scrub import scrub

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
    allowed_props: tuple[str, ...] = ()
    """Custom property keys stored for this site; the others are dropped (and counted) before storage."""
    collect: tuple[tuple[str, bool], ...] = ()
    """The site's minimisation switches over the global ones (analytics.profile), sorted by field."""


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """What an operator gives when adding a site; validated by `check_settings`."""

    domain: str
    timezone: str = "UTC"
    allowed_hostnames: tuple[str, ...] = ()
    excluded_ips: tuple[str, ...] = ()
    excluded_paths: tuple[str, ...] = ()
    allowed_props: tuple[str, ...] = ()


MAX_ALLOWED_PROPS = 100
"""Property keys a site may allow (a dashboard tab each; Plausible's sites use a handful)."""
BUILTIN_PROPS: dict[str, str] = {"Outbound Link: Click": "url", "File Download": "url"}
"""The tracker's own events and the property each sends: accepted whatever the site allows (the value is reduced
to scheme, host and path by `scrub.strip_url`)."""


@dataclass(frozen=True, slots=True)
class Goal:
    """A conversion: a custom event by name (kind "event"), or pageviews of paths matching a pattern (kind
    "page", `*` a wildcard)."""

    kind: str
    value: str

    @property
    def label(self) -> str:
        return self.value if self.kind == "event" else f"Visit {self.value}"


def check_goal(kind: str, value: str, new: bool = True) -> Goal:
    """A goal as given, checked; a `new` one must also match what is stored (see below), an old one being removed
    need not (it may predate scrubbing)."""
    value = value.strip()
    if kind not in ("event", "page"):
        raise ValueError('a goal is an "event" (a custom event name) or a "page" (a path pattern)')
    if not value or len(value) > 120:
        raise ValueError("a goal needs a name of 1 to 120 characters")
    if kind == "page" and not value.startswith("/"):
        raise ValueError(f"a page goal is a path starting with / (e.g. /thank-you or /blog/*), not {value!r}")
    if kind == "event" and value == "pageview":
        raise ValueError('"pageview" is not a custom event: use a page goal for pages')
    scrubbed = scrub(value)
    if new and scrubbed != value:
        # Goals are matched against the stored, scrubbed names and paths: this one could never match.
        what = "event names" if kind == "event" else "paths"
        raise ValueError(
            f"{value!r} holds what looks like personal data (an e-mail address, a long number or a token), which is "
            f"never stored: {what} are stored as {scrubbed!r}, so use that"
        )
    return Goal(kind, value)


def check_prop_key(key: str) -> str:
    """A custom property key a site may allow, stripped; raises ValueError saying what is wrong."""
    key = key.strip()
    if not key or len(key) > MAX_PROP_KEY:
        raise ValueError(f"a property key has 1 to {MAX_PROP_KEY} characters")
    if unstorable(key) or any(c < " " for c in key):
        raise ValueError(f"the property key {key[:40]!r} holds a control character")
    if scrub(key) != key:
        raise ValueError(
            f"the property key {key[:40]!r} looks like personal data (an e-mail address, a long number or a token); "
            "keys name what a property is, e.g. plan or author"
        )
    return key


def check_prop_keys(keys: Sequence[str]) -> tuple[str, ...]:
    """The keys a site allows, checked, without duplicates, in the order given."""
    checked = tuple(dict.fromkeys(check_prop_key(k) for k in keys if k.strip()))
    if len(checked) > MAX_ALLOWED_PROPS:
        raise ValueError(f"a site may allow at most {MAX_ALLOWED_PROPS} property keys ({len(checked)} given)")
    return checked


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
    props = check_prop_keys(settings.allowed_props)
    return SiteSettings(domain, settings.timezone, hosts, settings.excluded_ips, settings.excluded_paths, props)


Props = tuple[tuple[str, str], ...]


def _globs(patterns: Sequence[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


def minimised(site: Site, base: Collect) -> Site:
    """The site as its figures are computed: without page goals while its custom events and goals are
    switched off (analytics.profile), so that no goal row is rolled up or answered."""
    return replace(site, page_goals=()) if site.page_goals and not collect(base, dict(site.collect)).events else site


@dataclass(frozen=True, slots=True)
class SiteRules:
    """A site with its patterns compiled once, for the per-event checks."""

    site: Site
    _hosts: re.Pattern[str] | None = field(repr=False)
    _paths: re.Pattern[str] | None = field(repr=False)
    networks: tuple[Network, ...] = ()
    props: frozenset[str] = frozenset()
    """The property keys stored (a key scrubbing would change never is, whatever an old list holds; none while
    custom properties are switched off)."""
    collect: Collect = EVERYTHING
    """What is stored for the site (its switches over the global ones)."""

    @classmethod
    def of(cls, site: Site, base: Collect = EVERYTHING) -> SiteRules:
        hosts = tuple(normalize_domain(h) for h in site.allowed_hostnames)
        nets = tuple(Network.parse(n) for n in site.excluded_ips)
        switches = collect(base, dict(site.collect))
        props = frozenset(k for k in site.allowed_props if scrub(k) == k) if switches.properties else frozenset()
        return cls(site, _globs(hosts), _globs(site.excluded_paths), nets, props, switches)

    def allowed_props(self, name: str, props: Props) -> tuple[Props, int]:
        """The properties whose keys the site allows (and the tracker's own `url` of outbound-link and download
        events), and how many others were left out."""
        builtin = BUILTIN_PROPS.get(name)
        kept = tuple(p for p in props if p[0] in self.props or p[0] == builtin)
        return kept, len(props) - len(kept)

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
        collect: Collect = EVERYTHING,
    ) -> None:
        self._load = load
        self._collect = collect
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
            self._by_domain = {s.domain: SiteRules.of(s, self._collect) for s in sites}
            self._loaded_at = self.monotonic()

    async def lookup(self, domain: str) -> SiteRules | None:
        """The site for a domain; an unknown one triggers a re-read at most once a second."""
        rules = self._by_domain.get(domain)
        if rules is None:
            await self.refresh(min_age=1.0)
            rules = self._by_domain.get(domain)
        return rules
