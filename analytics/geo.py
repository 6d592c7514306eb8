"""Location from a (truncated) IP address, using a MaxMind-format database: country, and region/city if enabled.

Reads both layouts in use: GeoLite2 / DB-IP (`country.iso_code`, `subdivisions`, `city.names.en`) and
ip-location-db (`country_code`). Private and reserved ranges never get a location, whatever the database says
(some databases map private ranges to a country).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import maxminddb

from analytics.errors import ConfigError
from analytics.privacy import Address


@dataclass(frozen=True, slots=True)
class Location:
    country: str = ""
    region: str = ""
    city: str = ""


NOWHERE = Location()


class GeoLocator:
    """Looks addresses up in one open database; lookups are cached by (truncated) address."""

    def __init__(self, path: Path, regions: bool = False, cities: bool = False, cache_size: int = 65_536) -> None:
        try:
            self._reader = maxminddb.open_database(str(path))
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise ConfigError(
                f"geoip.database = {str(path)!r} cannot be opened as a MaxMind database ({exc}); "
                'fix the path or set it to "" to run without locations'
            ) from None
        self.description = f"{self._reader.metadata().database_type} ({path.name})"
        self._regions = regions
        self._cities = cities
        self.locate = lru_cache(maxsize=cache_size)(self._locate)

    def close(self) -> None:
        self._reader.close()

    def _locate(self, address: Address) -> Location:
        ip = address.as_ipaddress()
        if not ip.is_global or ip.is_multicast:
            return NOWHERE
        try:
            record = self._reader.get(ip)
        except ValueError:  # an IPv6 address in an IPv4-only database
            return NOWHERE
        return _location(record, self._regions, self._cities) if isinstance(record, dict) else NOWHERE


def _location(record: dict[str, Any], regions: bool, cities: bool) -> Location:
    country = record.get("country")
    code = country.get("iso_code", "") if isinstance(country, dict) else record.get("country_code", "")
    if not isinstance(code, str) or len(code) != 2:
        return NOWHERE
    region = city = ""
    if regions:
        subdivisions = record.get("subdivisions")
        if isinstance(subdivisions, list) and subdivisions and isinstance(subdivisions[0], dict):
            iso = subdivisions[0].get("iso_code")
            region = f"{code}-{iso}" if isinstance(iso, str) else ""
        elif isinstance(record.get("state1"), str):  # ip-location-db city layout
            region = record["state1"]
    if cities:
        found = record.get("city")
        if isinstance(found, dict):
            names = found.get("names")
            city = names.get("en", "") if isinstance(names, dict) else ""
        elif isinstance(found, str):
            city = found
    return Location(code.upper(), region, city)
