"""The privacy core: the only module that sees a visitor's IP address together with their User-Agent.

* The client address is taken from the connection, or from X-Forwarded-For only when the connection comes
  from a trusted proxy.
* It is compared once, whole, with the site's excluded networks (so an operator can exclude their office),
  then truncated (default /24 for IPv4, /48 for IPv6) before any other use.
* The visitor id is BLAKE2b-64 keyed with the salt of the current UTC day over
  `site id | truncated address | User-Agent`, each field length-delimited; only a visit that started before
  UTC midnight and goes on after it (no gap over 30 minutes) keeps its hash under yesterday's salt. No event
  carries both hashes. Salts are 32 random bytes, shared by all workers through the store, and deleted at
  `salt_deadline`: from then on no hash of that day can be linked to an address again, by us or anyone who
  copies the database.
Nothing here is logged or written; callers receive only the hash and the truncated address for the country.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import secrets
import socket
import struct
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

SALT_BYTES = 32
SESSION_TIMEOUT = timedelta(minutes=30)
SALT_KEPT_AT_MOST = timedelta(hours=6)
"""The longest a salt outlives its UTC day, for a visit that started before midnight and goes on after it. As far
as the rollup follows a visit past the end of its day (rollup.LOOKAHEAD_MS): no visit is cut sooner than the
rollup would cut it. A visit still going on then is cut in two: its next event is stored under today's salt."""
_PERSON = b"analytics.v1"
_ONE_DAY = timedelta(days=1)


class Address(NamedTuple):
    """An IP address as (4 or 6, integer value): parsed with inet_pton and masked with integer arithmetic,
    about ten times cheaper than the `ipaddress` objects on the per-event path."""

    version: int
    value: int

    @property
    def packed(self) -> bytes:
        return self.value.to_bytes(4 if self.version == 4 else 16, "big")

    def as_ipaddress(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return ipaddress.IPv4Address(self.value) if self.version == 4 else ipaddress.IPv6Address(self.value)


class Network(NamedTuple):
    version: int
    base: int
    mask: int

    @classmethod
    def parse(cls, text: str) -> Network:
        """Raises ValueError for anything but an address or a CIDR network."""
        net = ipaddress.ip_network(text.strip(), strict=False)
        bits = net.max_prefixlen
        return cls(net.version, int(net.network_address), _mask(bits, net.prefixlen))

    def contains(self, address: Address) -> bool:
        return address.version == self.version and address.value & self.mask == self.base


def parse_ip(text: str) -> Address | None:
    text = text.strip()
    try:
        if ":" in text:
            value = int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
            if value >> 32 == 0xFFFF:  # ::ffff:a.b.c.d is an IPv4 client on a dual-stack socket
                return Address(4, value & 0xFFFFFFFF)
            return Address(6, value)
        return Address(4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big"))
    except (OSError, ValueError):
        return None


def parse_hop(text: str) -> Address | None:
    """One X-Forwarded-For entry. Some proxies (Azure's gateways, some load balancers) write the client's port
    too: `203.0.113.7:51234`, `[2001:db8::1]:443`, or the brackets without a port; each is read as the bare
    address. Anything else that is not an address is None."""
    address = parse_ip(text)
    if address is not None:  # the common case, first: a bare address
        return address
    text = text.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if bracket and ":" in host and (not rest or (rest.startswith(":") and _is_port(rest[1:]))):
            return parse_ip(host)
        return None
    host, colon, port = text.partition(":")
    if colon and "." in host and _is_port(port):  # one colon only: more would make it IPv6 (rejected above)
        return parse_ip(host)
    return None


def _is_port(digits: str) -> bool:
    return 0 < len(digits) <= 5 and digits.isascii() and digits.isdigit() and int(digits) <= 65535


def client_ip(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> Address | None:
    """The visitor's address: X-Forwarded-For is walked from the right while the hops are trusted proxies."""
    address = parse_ip(peer) if peer else None
    if address is None or not forwarded_for or not _within(address, trusted):
        return address
    for hop in reversed(forwarded_for.split(",")):
        hop_address = parse_hop(hop)
        if hop_address is None:
            return address  # a forged or garbled entry: trust nothing before it
        address = hop_address
        if not _within(address, trusted):
            break
    return address


def from_trusted_proxy(peer: str | None, trusted: Sequence[Network]) -> bool:
    """Whether the connection itself comes from one of the trusted proxies (whose headers are believed)."""
    address = parse_ip(peer) if peer else None
    return address is not None and _within(address, trusted)


def _within(address: Address, networks: Sequence[Network]) -> bool:
    for network in networks:  # noqa: SIM110 -- a plain loop: any() with a generator costs twice as much here
        if network.contains(address):
            return True
    return False


def is_excluded(address: Address | None, networks: Sequence[Network]) -> bool:
    """The one use of the whole address: does the site's operator exclude it?"""
    return address is not None and _within(address, networks)


@dataclass(frozen=True, slots=True)
class Identity:
    visitor_id: int
    network: Address | None
    """The truncated address, for the country lookup only."""


class SaltBook:
    """The salts this process currently holds, by UTC day, loaded from (or created in) the store."""

    def __init__(self, load: Callable[[date, bytes], Awaitable[bytes]]) -> None:
        self._load = load
        self._salts: dict[date, bytes] = {}
        self._lock = asyncio.Lock()

    def get(self, day: date) -> bytes | None:
        return self._salts.get(day)

    async def ensure(self, day: date) -> bytes:
        """The salt of `day`, creating it in the store if no worker has yet (the store keeps the first one)."""
        async with self._lock:
            salt = self._salts.get(day)
            if salt is None:
                salt = await self._load(day, secrets.token_bytes(SALT_BYTES))
                self._salts[day] = salt
            return salt

    def remember(self, day: date, salt: bytes) -> None:
        self._salts[day] = salt

    def forget_before(self, day: date) -> None:
        for old in [d for d in self._salts if d < day]:
            del self._salts[old]


def salt_deadline(day: date, last_continued: datetime | None) -> datetime:
    """When the salt of the UTC day `day` must be gone: the one rule of its deletion.

    `last_continued` is the last event (engagement pings aside) stored under one of the day's hashes less than
    SESSION_TIMEOUT ago, before or after midnight (None: none). Past its SESSION_TIMEOUT no visit can continue
    under the salt, so it goes then: at midnight itself if nobody was active in the day's last 30 minutes, and
    SALT_KEPT_AT_MOST after midnight at the latest, whatever goes on. The server deletes it at its first upkeep
    after this instant (every 60 s at most, analytics/app.py) or at start, `analytics purge` when it runs."""
    end = _midnight(day + timedelta(days=1))
    if last_continued is None:
        return end
    return min(end + SALT_KEPT_AT_MOST, max(end, last_continued + SESSION_TIMEOUT))


def expired_before(now: datetime, last_continued: datetime | None) -> date:
    """Salts of days before the returned one must be deleted now (`last_continued`: see salt_deadline, for
    yesterday's salt)."""
    today = now.astimezone(UTC).date()
    yesterday = today - timedelta(days=1)
    return today if now > salt_deadline(yesterday, last_continued) else yesterday


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


Continues = Callable[[int, int, int], bool]
"""(site id, visitor hash under yesterday's salt, event time in ms) -> does the event continue that hash's visit?
(analytics/midnight.py: its last event is at most 30 minutes older)"""


class Anonymizer:
    """Turns (site, address, User-Agent) into an `Identity`; holds the truncation settings and the salts."""

    def __init__(self, ipv4_prefix: int, ipv6_prefix: int, salts: SaltBook, continues: Continues) -> None:
        self._prefix = {4: ipv4_prefix, 6: ipv6_prefix}
        self._masks = {4: _mask(32, ipv4_prefix), 6: _mask(128, ipv6_prefix)}
        self.salts = salts
        self._continues = continues

    def truncate(self, address: Address) -> Address:
        return Address(address.version, address.value & self._masks[address.version])

    def network(self, address: Address) -> Address | None:
        """The truncated address, or None where the settings ignore addresses of its version (prefix 0)."""
        return self.truncate(address) if self._prefix[address.version] else None

    def identify(
        self, site_id: int, address: Address | None, user_agent: bytes, now: datetime, hostname: str = ""
    ) -> Identity | None:
        """None when today's salt is not loaded yet: the caller awaits `salts.ensure(day)` and asks again.
        `hostname`: given when hashes are unique to a hostname (privacy.identity_scope), so that one person on
        two hostnames of a site has two unrelated hashes."""
        utc = now.astimezone(UTC)
        day = utc.date()
        salt = self.salts.get(day)
        if salt is None:
            return None
        network = self.truncate(address) if address is not None else None
        packed = network.packed if network is not None and self._prefix[network.version] else b""
        message = struct.pack(">qB", site_id, len(packed)) + packed + user_agent
        if hostname:
            host = hostname.encode()
            # After the User-Agent, whose length varies: the length of the host, last, keeps it unambiguous.
            message += host + struct.pack(">H", len(host))
        yesterday = self.salts.get(day - _ONE_DAY)  # held only until salt_deadline: minutes after midnight, mostly
        if yesterday is not None:
            # A visit from before midnight that goes on keeps its hash until it ends; anyone else gets today's.
            # Only one of the two is stored, so nothing links a visitor's two days unless one visit spans both.
            previous = _hash(yesterday, message)
            if self._continues(site_id, previous, int(now.timestamp() * 1000)):
                return Identity(previous, network)
        return Identity(_hash(salt, message), network)


def _mask(bits: int, prefix: int) -> int:
    return ((1 << prefix) - 1) << (bits - prefix) if prefix else 0


def _hash(salt: bytes, message: bytes) -> int:
    digest = hashlib.blake2b(message, digest_size=8, key=salt, person=_PERSON).digest()
    return int.from_bytes(digest, "big", signed=True)
