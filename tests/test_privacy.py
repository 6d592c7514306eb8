"""The privacy core: address choice, truncation, keyed visitor hash, salt lifetime."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest

from analytics.midnight import OpenVisits
from analytics.privacy import (
    Address,
    Anonymizer,
    Network,
    SaltBook,
    client_ip,
    expired_before,
    is_excluded,
    parse_ip,
)
from tests.conftest import Harness, pageview

LOOPBACK = (Network.parse("127.0.0.1/32"), Network.parse("::1/128"))


def ip(text: str) -> Address:
    address = parse_ip(text)
    assert address is not None
    return address


NOON = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)


def anonymizer(
    v4: int = 24, v6: int = 48, days: dict[date, bytes] | None = None, visits: OpenVisits | None = None
) -> Anonymizer:
    async def load(day: date, candidate: bytes) -> bytes:
        return candidate

    book = SaltBook(load)
    for day, salt in (days or {NOON.date(): b"s" * 32}).items():
        book.remember(day, salt)
    return Anonymizer(v4, v6, book, visits.continues if visits else lambda *_: False)


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", None, "203.0.113.9"),
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not a trusted proxy: header ignored
        ("127.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("127.0.0.1", "198.51.100.1, 127.0.0.1", "198.51.100.1"),  # two local proxy hops
        ("127.0.0.1", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # a client-forged left entry is not believed
        ("127.0.0.1", "garbage", "127.0.0.1"),
        ("::1", "2001:db8::7", "2001:db8::7"),
        ("127.0.0.1", "::ffff:198.51.100.1", "198.51.100.1"),
        (None, "198.51.100.1", None),
        # Proxies that write the client's port, or IPv6 in brackets (RFC 3986 style), are understood.
        ("127.0.0.1", "203.0.113.7:51234", "203.0.113.7"),
        ("127.0.0.1", " 203.0.113.7:51234 ", "203.0.113.7"),
        ("127.0.0.1", "[2001:db8::1]:443", "2001:db8::1"),
        ("127.0.0.1", "[2001:db8::1]", "2001:db8::1"),
        ("127.0.0.1", "  [2001:db8::1]:443  ,127.0.0.1:8080", "2001:db8::1"),
        ("127.0.0.1", "[::ffff:198.51.100.1]:80", "198.51.100.1"),
        ("127.0.0.1", "6.6.6.6:1, 203.0.113.7:51234", "203.0.113.7"),  # a forged left entry, with a port
        # Garbled hops still stop the walk: nothing before them is believed.
        ("127.0.0.1", "203.0.113.7:", "127.0.0.1"),
        ("127.0.0.1", "203.0.113.7:99999", "127.0.0.1"),
        ("127.0.0.1", "203.0.113.7:80:80", "127.0.0.1"),
        ("127.0.0.1", "203.0.113.7:http", "127.0.0.1"),
        ("127.0.0.1", "203.0.113.7:+80", "127.0.0.1"),
        ("127.0.0.1", "203.0.113.7:\u0661\u0662", "127.0.0.1"),  # non-ASCII digits
        ("127.0.0.1", "[2001:db8::1", "127.0.0.1"),
        ("127.0.0.1", "[2001:db8::1]443", "127.0.0.1"),
        ("127.0.0.1", "[2001:db8::1]:", "127.0.0.1"),
        ("127.0.0.1", "[203.0.113.7]", "127.0.0.1"),  # brackets are for IPv6 only
        ("127.0.0.1", "2001:db8::1:443", "2001:db8::1:443"),  # unbracketed, a port cannot be told apart
        ("127.0.0.1", "[garbage]:80", "127.0.0.1"),
        ("127.0.0.1", "garbage:80", "127.0.0.1"),
        ("127.0.0.1", "1.2.3.4:80, garbage, 127.0.0.1", "127.0.0.1"),
    ],
)
def test_client_address_trusts_forwarded_for_only_from_proxies(
    peer: str | None, forwarded: str | None, expected: str | None
) -> None:
    found = client_ip(peer, forwarded, LOOPBACK)
    assert (str(found.as_ipaddress()) if found else None) == expected


@pytest.mark.parametrize(
    ("v4", "v6", "text", "expected"),
    [
        (24, 48, "203.0.113.77", "203.0.113.0"),
        (16, 48, "203.0.113.77", "203.0.0.0"),
        (32, 128, "203.0.113.77", "203.0.113.77"),
        (0, 0, "203.0.113.77", "0.0.0.0"),
        (24, 48, "2001:db8:abcd:1234:5678::1", "2001:db8:abcd::"),
        (24, 128, "2001:db8:abcd:1234:5678::1", "2001:db8:abcd:1234:5678::1"),
    ],
)
def test_truncation(v4: int, v6: int, text: str, expected: str) -> None:
    assert str(anonymizer(v4, v6).truncate(ip(text)).as_ipaddress()) == expected


def vid(a: Anonymizer, site: int, text: str | None, ua: bytes, now: datetime = NOON) -> int:
    identity = a.identify(site, ip(text) if text else None, ua, now)
    assert identity is not None
    return identity.visitor_id


def test_visitor_id_is_64_bits_and_depends_on_site_network_agent_and_salt() -> None:
    a = anonymizer()
    base = vid(a, 1, "203.0.113.7", b"UA")
    assert -(2**63) <= base < 2**63
    assert vid(a, 1, "203.0.113.200", b"UA") == base  # same /24
    assert vid(a, 2, "203.0.113.7", b"UA") != base
    assert vid(a, 1, "203.0.114.7", b"UA") != base
    assert vid(a, 1, "203.0.113.7", b"UA2") != base
    assert vid(anonymizer(days={NOON.date(): b"t" * 32}), 1, "203.0.113.7", b"UA") != base


def test_fields_are_delimited_so_boundaries_cannot_be_shifted() -> None:
    a = anonymizer(32, 128)
    # Same bytes if the fields were simply concatenated: the address ends where the UA begins.
    assert vid(a, 1, "1.2.3.4", b"5UA") != vid(a, 1, "1.2.3.45", b"UA")
    assert vid(a, 1, None, b"UA") != vid(a, 1, "0.0.0.0", b"UA")


def test_without_todays_salt_no_identity_is_made() -> None:
    assert anonymizer().identify(1, ip("203.0.113.7"), b"UA", datetime(2026, 3, 15, 9, tzinfo=UTC)) is None


def test_after_midnight_only_a_visit_that_goes_on_keeps_yesterdays_hash() -> None:
    yesterday, today = date(2026, 3, 14), date(2026, 3, 15)
    visits = OpenVisits()
    a = anonymizer(days={yesterday: b"y" * 32, today: b"t" * 32}, visits=visits)

    def identify(address: str, hour: int, minute: int) -> int:
        found = a.identify(1, ip(address), b"UA", datetime(2026, 3, 14 if hour else 15, hour, minute, tzinfo=UTC))
        assert found is not None
        return found.visitor_id

    staying, leaving = identify("203.0.113.7", 23, 50), identify("198.51.100.7", 23, 45)
    visits.record([_Seen(staying, 23, 50), _Seen(leaving, 23, 45)])
    assert identify("203.0.113.7", 0, 10) == staying  # 20 minutes later: the same visit, the same hash
    returning = identify("198.51.100.7", 0, 20)  # 35 minutes later: another visit, today's hash only
    assert returning != leaving
    assert identify("198.51.100.7", 0, 20) == returning


class _Seen:
    def __init__(self, visitor_id: int, hour: int, minute: int) -> None:
        self.site_id, self.visitor_id, self.name = 1, visitor_id, "pageview"
        self.ts = int(datetime(2026, 3, 14, hour, minute, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("now", "cutoff"),
    [
        (datetime(2026, 3, 15, 0, 10, tzinfo=UTC), date(2026, 3, 14)),  # yesterday's salt still needed
        (datetime(2026, 3, 15, 0, 40, tzinfo=UTC), date(2026, 3, 15)),  # no open visit can need it any more
        (datetime(2026, 3, 15, 23, 59, tzinfo=UTC), date(2026, 3, 15)),
    ],
)
def test_salts_expire_30_minutes_after_the_last_event_of_yesterday(now: datetime, cutoff: date) -> None:
    assert expired_before(now, datetime(2026, 3, 14, 23, 55, tzinfo=UTC)) == cutoff


async def test_salt_book_asks_the_store_once_even_under_concurrency() -> None:
    calls: list[date] = []

    async def load(day: date, candidate: bytes) -> bytes:
        calls.append(day)
        await asyncio.sleep(0)
        return b"stored-by-another-worker".ljust(32, b"!")

    book = SaltBook(load)
    salts = await asyncio.gather(*(book.ensure(NOON.date()) for _ in range(10)))
    assert set(salts) == {b"stored-by-another-worker".ljust(32, b"!")}
    assert calls == [NOON.date()]
    book.forget_before(date(2026, 3, 15))
    assert book.get(NOON.date()) is None


def test_exclusion_compares_the_whole_address() -> None:
    nets = (Network.parse("198.51.100.23/32"),)
    assert is_excluded(parse_ip("198.51.100.23"), nets)
    assert not is_excluded(parse_ip("198.51.100.24"), nets)
    assert not is_excluded(None, nets)
    assert not is_excluded(parse_ip("::1"), nets)


async def test_an_excluded_network_is_dropped_when_the_proxy_writes_the_client_port(harness: Harness) -> None:
    await harness.add_site("office.example", excluded_ips=("198.51.100.0/24", "2001:db8::/32"))
    office = pageview(domain="office.example", url="https://office.example/")
    dropped = [
        await harness.send(office, headers={"X-Forwarded-For": forwarded})
        for forwarded in ("198.51.100.23:51234", "[2001:db8::5]:443", " [2001:db8::5] ")
    ]
    assert [r.headers.get("x-analytics-dropped") for r in dropped] == ["excluded-ip"] * 3
    counted = await harness.send(office, headers={"X-Forwarded-For": "198.51.101.23:51234"})
    assert counted.status_code == 202 and "x-analytics-dropped" not in counted.headers
    assert len(await harness.rows()) == 1
