from __future__ import annotations

from pathlib import Path

import pytest

from analytics.errors import ConfigError
from analytics.geo import GeoLocator, Location
from analytics.privacy import Address, parse_ip
from tests.conftest import DATA


def addr(text: str) -> Address:
    address = parse_ip(text)
    assert address is not None
    return address


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("81.2.69.142", Location("GB", "GB-ENG", "London")),
        ("175.16.199.0", Location("CN", "CN-22", "Changchun")),
        ("2001:218::", Location("JP", "", "")),
        ("10.0.0.1", Location()),
        ("1.2.3.4", Location()),
    ],
)
def test_city_database_gives_country_region_and_city_when_enabled(ip: str, expected: Location) -> None:
    geo = GeoLocator(DATA / "GeoLite2-City-Test.mmdb", regions=True, cities=True)
    assert geo.locate(addr(ip)) == expected


def test_region_and_city_are_left_out_unless_enabled() -> None:
    geo = GeoLocator(DATA / "GeoLite2-City-Test.mmdb")
    assert geo.locate(addr("81.2.69.142")) == Location("GB")


def test_country_database_layout() -> None:
    geo = GeoLocator(DATA / "GeoLite2-Country-Test.mmdb", regions=True, cities=True)
    assert geo.locate(addr("81.2.69.142")) == Location("GB")


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("81.2.69.0", "GB"),
        ("193.51.24.0", "FR"),
        ("2a01:e0a::", "FR"),
        ("8.8.8.0", "US"),
        # The database maps these private and documentation ranges to countries; they must give none.
        ("172.16.5.0", ""),
        ("192.168.1.0", ""),
        ("203.0.113.0", ""),
        ("198.51.100.0", ""),
        ("2001:db8::", ""),
        ("127.0.0.1", ""),
        ("::1", ""),
    ],
)
def test_country_code_layout_and_private_ranges(ip: str, country: str) -> None:
    geo = GeoLocator(DATA / "country-code-subset.mmdb")
    assert geo.locate(addr(ip)).country == country


def test_an_unreadable_database_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"not a database")
    with pytest.raises(ConfigError, match=r"geoip\.database"):
        GeoLocator(bad)
    with pytest.raises(ConfigError, match=r"geoip\.database"):
        GeoLocator(tmp_path / "missing.mmdb")
