"""The privacy profile and the minimisation switches: what the cnil profile collects by default, that a field
switched off is never stored (searched for in every file the server wrote), per-site switches over the global
ones, the settings the profile refuses, and visitor hashes unique to a hostname."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from analytics import apikeys, jobs, profile
from analytics.config import Config, load, options
from analytics.errors import ConfigError
from analytics.sites import check_goal
from tests.conftest import DATA, Clock, Harness, pageview, start
from tests.test_stats_api import ask

MARKER_PAGE = "https://example.com/docs?utm_source=srcmark7&utm_medium=medmark7&utm_campaign=cmpmark7"
FULL = pageview(
    url=MARKER_PAGE,
    referrer="https://refmark7.example.org/post",
    props={"plan": "planmark7"},
    revenue={"amount": 12.5, "currency": "EUR"},
    screen_width=1920,
)
EVENT = {**FULL, "name": "Signup evmark7"}
# What each switch leaves out: stored columns that must be empty, and a marker no file may hold.
LEFT_OUT: dict[str, tuple[tuple[str, ...], bytes | None]] = {
    "referrers": (("referrer",), b"refmark7"),
    "utm": (("utm_source", "utm_medium", "utm_campaign"), b"cmpmark7"),
    "locations": (("region", "city"), b"Changchun"),
    "browser_versions": (("browser_version",), None),
    "os_versions": (("os_version",), None),
    "screens": (("screen",), None),
    "properties": (("props",), b"planmark7"),
    "revenue": (("revenue_micros", "revenue_currency"), None),
}


def configured(config: Config, profile_name: str, **collect: str) -> Config:
    located = config.replace("geoip", database=str(DATA / "GeoLite2-City-Test.mmdb"), regions=True, cities=True)
    return located.replace("privacy", profile=profile_name).replace("collect", **collect)


@pytest.fixture
async def cnil(config: Config, clock: Clock) -> AsyncIterator[Harness]:
    async with start(configured(config, "cnil"), clock) as h:
        await h.add_site(allowed_props=("plan",))
        yield h


def files_of(config: Config) -> list[Path]:
    folder = Path(config.database.url.removeprefix("sqlite:///")).parent
    return [p for p in folder.iterdir() if p.is_file()]


def holding(config: Config, marker: bytes) -> list[str]:
    return [p.name for p in files_of(config) if marker in p.read_bytes()]


async def stored(h: Harness, body: dict[str, Any], ip: str = "175.16.199.37") -> dict[str, Any]:
    answer = await h.send(body, headers={"X-Forwarded-For": ip})
    assert answer.status_code == 202, answer.text
    return (await h.rows())[-1]


async def test_the_cnil_profile_keeps_audience_measurement_and_leaves_marketing_out(cnil: Harness) -> None:
    row = await stored(cnil, FULL)
    assert (row["referrer"], row["city"], row["region"]) == ("refmark7.example.org", "Changchun", "CN-22")
    assert row["browser"] == "Chrome" and row["browser_version"] and row["screen"]
    assert (row["utm_source"], row["utm_campaign"], row["props"], row["revenue_micros"]) == ("", "", None, None)
    assert row["source"] == "refmark7.example.org"  # named after the referrer, not the UTM source
    refused = await cnil.send(EVENT, headers={"X-Forwarded-For": "175.16.199.37"})
    assert refused.status_code == 202 and refused.headers["x-analytics-dropped"] == "event-not-collected"
    assert [r["name"] for r in await cnil.rows()] == ["pageview"]


@pytest.mark.parametrize("name", sorted(LEFT_OUT))
async def test_a_field_switched_off_is_never_stored_and_the_others_are(name: str, config: Config, clock: Clock) -> None:
    switched = configured(config, "standard", **{name: "off"})
    async with start(switched, clock) as h:
        await h.add_site(allowed_props=("plan",))
        row = await stored(h, FULL)
        columns, marker = LEFT_OUT[name]
        assert all(row[c] in ("", None) for c in columns), {c: row[c] for c in columns}
        for other, (other_columns, _) in LEFT_OUT.items():
            if other != name:
                assert all(row[c] not in ("", None) for c in other_columns), other
        await h.store.close()  # every page written to the files
    if marker is not None:
        assert holding(switched, marker) == []
        assert holding(switched, b"Changchun" if name != "locations" else b"refmark7")  # the scan sees what is kept


async def test_custom_events_switched_off_are_dropped_and_counted(config: Config, clock: Clock) -> None:
    async with start(configured(config, "standard", events="off"), clock) as h:
        await h.add_site()
        for body in (EVENT, {**FULL, "name": "Outbound Link: Click", "props": {"url": "https://x.example/"}}):
            answer = await h.send(body)
            assert answer.headers["x-analytics-dropped"] == "event-not-collected"
        assert (await h.send(pageview())).status_code == 202
        assert [r["name"] for r in await h.rows()] == ["pageview"]


async def test_a_sites_own_switch_wins_over_the_global_one(cnil: Harness) -> None:
    [site] = await cnil.store.list_sites()
    await cnil.store.set_collect(site.id, {"utm": True, "locations": False})
    await cnil.services.registry.refresh()
    row = await stored(cnil, FULL)
    assert (row["utm_campaign"], row["city"], row["region"]) == ("cmpmark7", "", "")
    await cnil.store.set_collect(site.id, {})
    await cnil.services.registry.refresh()
    row = await stored(cnil, FULL)
    assert (row["utm_campaign"], row["city"]) == ("", "Changchun")


def test_the_profile_sets_the_defaults_and_config_toml_overrides_them() -> None:
    cnil = profile.defaults(load(None, {}))
    assert [n for n, on in cnil.items() if not on] == ["utm", "properties", "events", "revenue"]
    assert all(on for _, on in profile.defaults(load(None, {"ANALYTICS_PRIVACY_PROFILE": "standard"})).items())
    mixed = profile.defaults(load(None, {"ANALYTICS_COLLECT_UTM": "on", "ANALYTICS_COLLECT_SCREENS": "off"}))
    assert mixed.utm and not mixed.screens and not mixed.revenue


@pytest.mark.parametrize(
    ("variable", "value", "criterion"),
    [
        ("ANALYTICS_PRIVACY_IPV4_PREFIX", "32", "IP address anonymised"),
        ("ANALYTICS_PRIVACY_IPV6_PREFIX", "64", "IP address anonymised"),
        ("ANALYTICS_PRIVACY_AGGREGATE_RETENTION_MONTHS", "240", "data kept at most 25 months"),
    ],
)
def test_the_cnil_profile_refuses_what_only_breaks_the_exemption(variable: str, value: str, criterion: str) -> None:
    with pytest.raises(ConfigError, match=criterion):
        load(None, {variable: value})
    accepted = load(None, {variable: value, "ANALYTICS_PRIVACY_PROFILE": "standard"})
    assert accepted.privacy.profile == "standard"


@pytest.mark.parametrize(("scope", "same"), [("profile", False), ("hostname", False), ("site", True)])
async def test_a_visitor_of_two_hostnames_has_one_hash_only_when_the_scope_is_the_site(
    scope: str, same: bool, config: Config, clock: Clock
) -> None:
    scoped = config.replace("privacy", profile="cnil", identity_scope=scope)
    async with start(scoped, clock) as h:
        await h.add_site()
        for url in ("https://example.com/", "https://blog.example.com/post", "https://example.com/pricing"):
            assert (await h.send(pageview(url=url))).status_code == 202
        ids = [r["visitor_id"] for r in await h.rows()]
        assert ids[0] == ids[2]  # one hostname: one visitor
        assert (ids[0] == ids[1]) is same


async def test_no_goal_is_rolled_up_or_answered_while_custom_events_and_goals_are_off(config: Config) -> None:
    clock = Clock(datetime(2026, 3, 10, 9, tzinfo=UTC))
    switched = config.replace("collect", events="off")
    async with start(switched, clock) as h:
        await h.add_site()
        [site] = await h.store.list_sites()
        await h.store.add_goal(site.id, check_goal("page", "/thanks/*"), 0)
        await h.send(pageview(url="https://example.com/thanks/pro"))
        clock.now = datetime(2026, 3, 11, 10, tzinfo=UTC)
        await h.send(pageview(url="https://example.com/thanks/team"), headers={"X-Forwarded-For": "90.84.0.9"})
        await jobs.run_jobs(h.store, clock.now, "test", 48, 25, min_visitors=1, collect=profile.defaults(switched))
        key = apikeys.new_key()
        await h.store.add_api_key("test", apikeys.digest(key), apikeys.display_prefix(key), [site.id], 0)
        body = {"site_id": "example.com", "date_range": "7d", "metrics": ["visitors"]}
        goals = await ask(h, key, {**body, "dimensions": ["event:goal"]})
        assert goals["results"] == []  # the closed day and the open one
        assert (await ask(h, key, body))["results"][0]["metrics"] == [2]


def test_config_toml_states_each_switchs_cnil_default_as_the_profile_applies_it() -> None:
    docs = {o.key: o.doc for o in options() if o.section == "collect"}
    assert list(docs) == list(profile.NAMES)
    for switch in profile.SWITCHES:
        assert ("cnil off" in docs[switch.name]) is not switch.cnil, switch.name
