"""The privacy profile: what is collected (the minimisation switches, per site over the global configuration) and
the verdict on each criterion of the CNIL's exemption from consent for audience measurement.

The criteria come from the CNIL's guidelines on cookies and other trackers (délibération 2020-091, art. 5), its
page « Cookies : solutions pour les outils de mesure d'audience » and the self-assessment tool it published in
2025 for vendors of audience measurement; the defaults that follow from them are in `SWITCHES`. A verdict is
computed from the live configuration, never written by hand: the privacy report (analytics/report.py) shows
them, and `tests/test_profile.py` flips each one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from analytics.config import CNIL_IPV4_PREFIX, CNIL_IPV6_PREFIX, CNIL_RETENTION_MONTHS, Config


@dataclass(frozen=True, slots=True)
class Switch:
    name: str
    cnil: bool
    """The default under the cnil profile (the standard profile collects everything)."""
    why: str
    """Why the cnil profile has it on or off, and the source (README, Minimisation)."""


_MEASURE = (
    "on: the CNIL lists it among what audience measurement may collect without consent (page « Cookies : "
    "solutions pour les outils de mesure d'audience »: {})"
)
_MARKETING = (
    "off: {}; the configurations the CNIL validated after its 2025 self-assessment tool (Matomo's among them) "
    "leave out marketing measurement: campaigns, acquisition channels, conversions"
)
SWITCHES: tuple[Switch, ...] = (
    Switch("referrers", True, _MEASURE.format("the page a link was followed from, aggregated daily")),
    Switch("utm", False, _MARKETING.format("UTM values measure campaigns")),
    Switch("locations", True, _MEASURE.format("geolocation no finer than the city")),
    Switch("browser_versions", True, _MEASURE.format("the types of terminal and browser")),
    Switch("os_versions", True, _MEASURE.format("the types of terminal")),
    Switch("screens", True, _MEASURE.format("the screen size")),
    Switch(
        "properties",
        False,
        "off: free values the site chooses can carry what is not audience measurement, or personal data, while "
        "the exemption covers anonymous statistics for that purpose only (délibération 2020-091, art. 5)",
    ),
    Switch(
        "events",
        False,
        _MARKETING.format("custom events and goals measure what the site decides, conversions and sign-ups mostly"),
    ),
    Switch("revenue", False, _MARKETING.format("revenue measures sales")),
)
NAMES = tuple(s.name for s in SWITCHES)
MARKETING = ("utm", "events", "revenue", "properties")
"""The switches the purpose criterion requires off."""


@dataclass(frozen=True, slots=True)
class Collect:
    """What is collected for one site: each field True when stored."""

    referrers: bool = True
    utm: bool = True
    locations: bool = True
    browser_versions: bool = True
    os_versions: bool = True
    screens: bool = True
    properties: bool = True
    events: bool = True
    revenue: bool = True

    def on(self, name: str) -> bool:
        return bool(getattr(self, name))

    def items(self) -> list[tuple[str, bool]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]


EVERYTHING = Collect()
"""Every field collected (the standard profile's defaults)."""


def defaults(config: Config) -> Collect:
    """The global switches: config.toml's `[collect]`, where "profile" takes the profile's default."""
    values = {}
    for switch in SWITCHES:
        said = getattr(config.collect, switch.name)
        values[switch.name] = said == "on" if said != "profile" else switch.cnil or config.privacy.profile != "cnil"
    return Collect(**values)


def collect(base: Collect, overrides: Mapping[str, bool]) -> Collect:
    """A site's switches: its own overrides (`analytics site collect`) over the global ones."""
    return Collect(**{name: overrides.get(name, value) for name, value in base.items()})


def check_overrides(overrides: Mapping[str, object]) -> dict[str, bool]:
    """A site's overrides as given (a name -> bool mapping), checked; raises ValueError naming what is wrong."""
    checked = {}
    for name, value in overrides.items():
        if name not in NAMES:
            raise ValueError(f"no field {name!r} can be switched; the fields are: {', '.join(NAMES)}")
        if not isinstance(value, bool):
            raise ValueError(f"{name} is switched on or off, not {value!r}")
        checked[name] = value
    return checked


def per_hostname(config: Config) -> bool:
    """Whether visitor hashes are unique to a hostname (privacy.identity_scope; "profile": under cnil)."""
    scope = config.privacy.identity_scope
    return scope == "hostname" or (scope == "profile" and config.privacy.profile == "cnil")


@dataclass(frozen=True, slots=True)
class Criterion:
    id: str
    met: bool
    settings: tuple[str, ...]
    """The settings that decide the verdict, as `section.key = value`; none when the product meets it by
    construction (no outbound connection, no per-visitor export, no level finer than the city)."""


def criteria(config: Config, site_collect: Collect) -> list[Criterion]:
    """The verdict on each criterion of the exemption for one site, from the live configuration."""
    p, i = config.privacy, config.ingest
    marketing = [name for name in MARKETING if site_collect.on(name)]
    scope = "hostname" if per_hostname(config) else "site"
    return [
        Criterion(
            "purpose",
            not marketing,
            tuple(f"collect.{name} = {'on' if site_collect.on(name) else 'off'}" for name in MARKETING),
        ),
        Criterion("publisher-only", True, ()),
        Criterion("anonymous", p.min_visitors >= 5, (f"privacy.min_visitors = {p.min_visitors}",)),
        Criterion("no-cross-site-identifier", scope == "hostname", (f"privacy.identity_scope = {scope}",)),
        Criterion("no-combination", True, ()),
        Criterion(
            "ip-anonymised",
            p.ipv4_prefix <= CNIL_IPV4_PREFIX and p.ipv6_prefix <= CNIL_IPV6_PREFIX,
            (f"privacy.ipv4_prefix = {p.ipv4_prefix}", f"privacy.ipv6_prefix = {p.ipv6_prefix}"),
        ),
        Criterion("geolocation-city", True, ()),
        Criterion("identifier-lifetime", True, (f"privacy.raw_retention_hours = {p.raw_retention_hours}",)),
        Criterion(
            "retention",
            p.aggregate_retention_months <= CNIL_RETENTION_MONTHS,
            (f"privacy.aggregate_retention_months = {p.aggregate_retention_months}",),
        ),
        Criterion("information", p.public_page, (f"privacy.public_page = {str(p.public_page).lower()}",)),
        Criterion(
            "objection",
            i.respect_gpc and i.respect_dnt,
            (
                f"ingest.respect_gpc = {str(i.respect_gpc).lower()}",
                f"ingest.respect_dnt = {str(i.respect_dnt).lower()}",
            ),
        ),
    ]
