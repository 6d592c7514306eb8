"""The privacy commands: `analytics site collect` (a site's minimisation switches) and `analytics privacy report`.

They take the loaded configuration and a way to reach the store from analytics/cli.py, which wires them in.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from analytics import profile
from analytics.config import Config
from analytics.errors import AnalyticsError
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
