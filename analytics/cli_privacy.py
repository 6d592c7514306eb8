"""The privacy commands: `analytics site collect` (a site's minimisation switches) and `analytics privacy report`.

They take the loaded configuration and a way to reach the store from analytics/cli.py, which wires them in.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from analytics import profile, report
from analytics.config import Config
from analytics.errors import AnalyticsError
from analytics.rollup import day_number
from analytics.sites import Site
from analytics.store.base import Store

WithStore = Callable[[Config, Callable[[Store], Awaitable[Any]]], Any]
"""Runs an async function with the open store and returns its result (analytics/cli.py)."""


def origin(config: Config, site: Site, name: str) -> str:
    """Where a switch's value comes from: the site, config.toml, or the profile."""
    if name in dict(site.collect):
        return "this site"
    if getattr(config.collect, name) != "profile":
        return f"collect.{name}"
    return f"profile {config.privacy.profile}"


def describe(config: Config, site: Site) -> list[str]:
    """One line per switch: the field, on or off, and why."""
    switches = profile.collect(profile.defaults(config), dict(site.collect))
    width = max(len(n) for n in profile.NAMES)
    return [
        f"  {name:<{width}}  {'on ' if on else 'off'}  ({origin(config, site, name)})" for name, on in switches.items()
    ]


def add_collect_parser(site_commands: Any, run: Callable[[argparse.Namespace], int]) -> None:
    collect = site_commands.add_parser(
        "collect",
        help="show or change what is collected for a site",
        description="Show which fields are stored for the site, and where each setting comes from (this site, "
        "config.toml's [collect], or the privacy profile), or switch fields on or off for this site. A field "
        "switched off is never stored. Fields: " + ", ".join(profile.NAMES) + ".",
    )
    collect.add_argument("domain")
    for flag, meaning in (
        ("on", "store this field for the site"),
        ("off", "never store this field for the site"),
        ("default", "follow config.toml and the profile again"),
    ):
        collect.add_argument(
            f"--{flag}",
            action="append",
            default=[],
            metavar="FIELD",
            choices=profile.NAMES,
            help=f"{meaning}; repeatable",
        )
    collect.set_defaults(run=run)


def site_collect(config: Config, with_store: WithStore, args: argparse.Namespace) -> int:
    domain = args.domain.strip().lower()
    named = [*args.on, *args.off, *args.default]
    if len(set(named)) < len(named):
        raise AnalyticsError("a field is named more than once; name each field once")

    async def work(store: Store) -> Site:
        site = next((s for s in await store.list_sites() if s.domain == domain), None)
        if site is None:
            raise AnalyticsError(f"no site {domain}; `analytics site list` shows the registered ones")
        if not named:
            return site
        overrides = dict(site.collect)
        overrides.update({name: True for name in args.on})
        overrides.update({name: False for name in args.off})
        for name in args.default:
            overrides.pop(name, None)
        await store.set_collect(site.id, overrides)
        return dataclasses.replace(site, collect=tuple(sorted(overrides.items())))

    site = with_store(config, work)
    print(f"{domain} stores:")
    print("\n".join(describe(config, site)))
    if named:
        print(f"(running servers apply the change within {config.ingest.site_refresh_seconds:g} seconds)")
    return 0


def add_privacy_parser(commands: Any, run: Callable[[argparse.Namespace], int]) -> None:
    privacy = commands.add_parser(
        "privacy",
        help="the privacy report",
        description="What the server collects, how and for how long, generated from the live configuration.",
    )
    actions = privacy.add_subparsers(dest="privacy_command", required=True, metavar="ACTION")
    rep = actions.add_parser(
        "report",
        help="print the privacy report of one site or of every site",
        description="Print each site's privacy report: every data point and whether it is stored, purposes, IP "
        "handling, the visitor hash and its salt, k, scrubbing, retention, the signals honoured, "
        "sub-processors, where data is stored, what was not counted in the last 30 days and why, a "
        "self-assessment against each CNIL criterion for audience measurement without consent (met or not "
        "met, with the setting that decides it), the opt-out snippet and a paragraph for a privacy policy. "
        "Generated from the configuration and the site's settings; a self-assessment, not a certification.",
    )
    rep.add_argument("--site", metavar="DOMAIN", help="only this site (default: every site)")
    rep.add_argument("--format", choices=report.FORMATS, default="md", help="md (default), html or json")
    rep.add_argument("--lang", choices=report.LANGS, default="en", help="en (default) or fr")
    rep.add_argument("--url", help="this server's public origin, for the opt-out snippet (default: server.public_url)")
    rep.set_defaults(run=run)


async def site_drops(store: Store, site: Site, now: datetime) -> dict[str, int]:
    """The site's drop counters of its last 30 local days, by reason."""
    today = day_number(now.astimezone(ZoneInfo(site.timezone)).date())
    totals: dict[str, int] = {}
    for _, _, reason, count in await store.drop_counts(site.id, today - report.DROPS_DAYS + 1, today):
        totals[reason] = totals.get(reason, 0) + count
    return totals


def privacy_report(config: Config, with_store: WithStore, args: argparse.Namespace, base_url: str) -> int:
    domain = (args.site or "").strip().lower()

    async def work(store: Store) -> list[tuple[Site, dict[str, int]]]:
        sites = [s for s in await store.list_sites() if not domain or s.domain == domain]
        if domain and not sites:
            raise AnalyticsError(f"no site {domain}; `analytics site list` shows the registered ones")
        if not sites:
            raise AnalyticsError("no sites yet; add one with: analytics site add example.com")
        now = datetime.now(UTC)
        return [(s, await site_drops(store, s, now)) for s in sites]

    built = [report.build(config, s, drops, args.lang, base_url) for s, drops in with_store(config, work)]
    if args.format == "json":
        print(json.dumps(built if not domain else built[0], ensure_ascii=False, indent=2))
    else:
        print("\n\n".join(report.render(r, args.format) for r in built))
    return 0
