"""The ingest pipeline: a parsed `Beacon` and its `Client` go through named gates, then become stored `Event`s.

Gates are an ordered list of small functions; each returns a `Drop` reason or None. A dropped beacon is answered
202 with the reason in `X-Analytics-Dropped`, so a client never retries what we chose not to count. Gates see
the values as sent; every free-text value of the stored event goes through `analytics.scrub` first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache, partial

from analytics import pages, privacy, referrers, scrub
from analytics.beacon import ENGAGEMENT, PAGEVIEW, Beacon, Url
from analytics.devices import Device, DeviceDetector, screen_class
from analytics.events import Event
from analytics.geo import NOWHERE, GeoLocator
from analytics.privacy import Address, Anonymizer
from analytics.sites import SiteRules


class Drop(StrEnum):
    GPC = "gpc"
    DNT = "dnt"
    UNKNOWN_SITE = "unknown-site"
    HOSTNAME = "hostname-not-allowed"
    BOT = "bot"
    DATACENTER = "datacenter"
    EXCLUDED_IP = "excluded-ip"
    EXCLUDED_PATH = "excluded-path"
    SPAM_REFERRER = "spam-referrer"
    NOT_COLLECTED = "event-not-collected"
    """A custom event while the site's custom events are switched off (collect.events)."""


PROPERTY_NOT_ALLOWED = "property-not-allowed"
"""The drop counters' reason for a custom property whose key the site does not allow (the event is stored
without it)."""


@dataclass(frozen=True, slots=True)
class Client:
    """What the request says about who sent it. Only the privacy core combines `ip` and `user_agent`."""

    ip: Address | None
    user_agent: bytes
    gpc: bool = False
    dnt: bool = False
    datacenter: bool = False
    """A trusted proxy's `ingest.datacenter_header` said the sender is in a data centre or hosting network."""


@dataclass(frozen=True, slots=True)
class Signals:
    respect_gpc: bool
    respect_dnt: bool
    is_spam: Callable[[str], bool]
    """Referrer host -> is it referrer spam? (cached: the same few hundred hosts make most traffic)"""

    @classmethod
    def of(cls, respect_gpc: bool, respect_dnt: bool, spam_domains: frozenset[str] = frozenset()) -> Signals:
        return cls(respect_gpc, respect_dnt, lru_cache(maxsize=8192)(partial(referrers.is_spam, extra=spam_domains)))


@dataclass(frozen=True, slots=True)
class Candidate:
    """A beacon on its way through the gates for one site, with what the gates need computed once."""

    beacon: Beacon
    client: Client
    rules: SiteRules
    page: pages.Page
    device: Device
    referrer_host: str
    props: tuple[tuple[str, str], ...]
    """The beacon's properties whose keys the site allows."""
    unlisted: int
    """How many properties were left out because the site does not allow their key."""


Gate = Callable[[Candidate, Signals], Drop | None]


def _hostname(c: Candidate, s: Signals) -> Drop | None:
    return None if c.rules.host_allowed(c.page.hostname) else Drop.HOSTNAME


def _bot(c: Candidate, s: Signals) -> Drop | None:
    return Drop.BOT if c.device.bot else None


def _datacenter(c: Candidate, s: Signals) -> Drop | None:
    return Drop.DATACENTER if c.client.datacenter else None


def _excluded_ip(c: Candidate, s: Signals) -> Drop | None:
    return Drop.EXCLUDED_IP if privacy.is_excluded(c.client.ip, c.rules.networks) else None


def _excluded_path(c: Candidate, s: Signals) -> Drop | None:
    return Drop.EXCLUDED_PATH if c.rules.path_excluded(c.page.path) else None


def _spam(c: Candidate, s: Signals) -> Drop | None:
    return Drop.SPAM_REFERRER if c.referrer_host and s.is_spam(c.referrer_host) else None


def _not_collected(c: Candidate, s: Signals) -> Drop | None:
    custom = c.beacon.name not in (PAGEVIEW, ENGAGEMENT)
    return Drop.NOT_COLLECTED if custom and not c.rules.collect.events else None


SITE_GATES: tuple[Gate, ...] = (_hostname, _bot, _datacenter, _excluded_ip, _excluded_path, _spam, _not_collected)


def signal_drop(client: Client, signals: Signals) -> Drop | None:
    """Checked before anything else: a visitor who asked not to be tracked is not looked at further."""
    if client.gpc and signals.respect_gpc:
        return Drop.GPC
    if client.dnt and signals.respect_dnt:
        return Drop.DNT
    return None


_source = lru_cache(maxsize=8192)(referrers.source)
_scrub_cached = lru_cache(maxsize=16384)(scrub.scrub)
_strip_cached = lru_cache(maxsize=4096)(scrub.strip_url)
_host_cached = lru_cache(maxsize=4096)(scrub.scrub_host)
CACHED_LENGTH = 256
"""Values up to this length are scrubbed once and remembered (the same paths, names and UTM values make most
traffic: ~0.1 us instead of 2-10); longer ones, rare, are scrubbed each time, so the caches stay under ~10 MB."""


def _scrub(text: str) -> str:
    return _scrub_cached(text) if len(text) <= CACHED_LENGTH else scrub.scrub(text)


def _host(url: Url) -> str:
    """A page's or referrer's host name as stored: without `www.`, scrubbed in the case it was sent in, then
    lowercased (scrub.scrub_host)."""
    sent = url.host_as_sent[4:] if url.host.startswith("www.") else url.host_as_sent
    return _host_cached(sent) if len(sent) <= CACHED_LENGTH else scrub.scrub_host(sent)


def _value(text: str) -> str:
    """A property value: scrubbed, and reduced to scheme, host and path when it is a URL."""
    return _strip_cached(text) if len(text) <= CACHED_LENGTH else scrub.strip_url(text)


class Pipeline:
    """Everything the per-event work needs, built once per process from the config."""

    def __init__(
        self,
        devices: DeviceDetector,
        geo: GeoLocator | None,
        anonymizer: Anonymizer,
        signals: Signals,
        per_hostname: bool = False,
    ):
        self.devices = devices
        self.geo = geo
        self.anonymizer = anonymizer
        self.signals = signals
        self.per_hostname = per_hostname
        """Visitor hashes unique to a hostname (privacy.identity_scope): no identifier spans two sites."""

    def candidate(self, beacon: Beacon, client: Client, rules: SiteRules) -> Candidate:
        page = pages.page(beacon.url, beacon.hash_mode)
        ref_host = referrers.host(beacon.referrer) if beacon.referrer is not None else ""
        if ref_host and referrers.is_self(ref_host, page.hostname, rules.site.domain):
            ref_host = ""
        device = self.devices.detect(client.user_agent.decode("latin-1"))
        props, unlisted = rules.allowed_props(beacon.name, beacon.props) if beacon.props else ((), 0)
        return Candidate(beacon, client, rules, page, device, ref_host, props, unlisted)

    def gate(self, candidate: Candidate) -> Drop | None:
        for gate in SITE_GATES:
            drop = gate(candidate, self.signals)
            if drop is not None:
                return drop
        return None

    def event(self, c: Candidate, now: datetime) -> Event | None:
        """The stored event, or None when today's salt is not loaded yet (the caller loads it and retries)."""
        scope = c.page.hostname if self.per_hostname else ""
        identity = self.anonymizer.identify(c.rules.site.id, c.client.ip, c.client.user_agent, now, scope)
        if identity is None:
            return None
        on = c.rules.collect
        location = self.geo.locate(identity.network) if self.geo and identity.network is not None else NOWHERE
        b, page, device = c.beacon, c.page, c.device
        engagement = b.name == ENGAGEMENT
        # The referrer's host as stored: scrubbed in the case it was sent in (c.referrer_host is lowercased).
        referrer = _host(b.referrer) if on.referrers and c.referrer_host and b.referrer else ""
        utm = on.utm
        revenue = b.revenue if on.revenue and not engagement else None
        # Every free-text value is scrubbed here, and only here: README § Scrubbing. A field switched off
        # (analytics.profile) is never stored: README § Minimisation.
        return Event(
            site_id=c.rules.site.id,
            ts=int(now.timestamp() * 1000),
            visitor_id=identity.visitor_id,
            name=_scrub(b.name),
            hostname=_host(b.url),
            pathname=_scrub(page.path),
            referrer=referrer,
            source=_source(referrer, _scrub(page.utm_source or page.ref) if utm else ""),
            utm_source=_scrub(page.utm_source) if utm else "",
            utm_medium=_scrub(page.utm_medium) if utm else "",
            utm_campaign=_scrub(page.utm_campaign) if utm else "",
            utm_content=_scrub(page.utm_content) if utm else "",
            utm_term=_scrub(page.utm_term) if utm else "",
            browser=device.browser,
            browser_version=device.browser_version if on.browser_versions else "",
            os=device.os,
            os_version=device.os_version if on.os_versions else "",
            device=device.device,
            screen=screen_class(b.screen_width) if on.screens else "",
            country=location.country,
            region=location.region if on.locations else "",
            city=location.city if on.locations else "",
            props=_props(c.props),
            revenue_micros=revenue.amount_micros if revenue else None,
            revenue_currency=revenue.currency if revenue else None,
            interactive=b.interactive and not engagement,
            scroll_depth=b.scroll_depth if engagement else None,
            engaged_ms=b.engaged_ms if engagement else None,
        )


def _props(props: tuple[tuple[str, str], ...]) -> str | None:
    """The allowed properties as stored: a JSON object of scrubbed values (keys were checked when allowed)."""
    if not props:
        return None
    return json.dumps({k: _value(v) for k, v in props}, ensure_ascii=False, separators=(",", ":"))
