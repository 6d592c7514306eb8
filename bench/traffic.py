"""Realistic synthetic traffic: visits of visitors with Zipf-distributed pages, sources, places and devices.

Used by benchmarks (straight into the store as `Event`s) and, later, by the correctness tests. Deterministic
for a given seed. Visitor ids here are what the privacy core would produce: one hash per person and UTC day.
"""

from __future__ import annotations

import bisect
import itertools
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass

from analytics.events import Event

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


class Zipf:
    """Draws one of `values`, the first ones much more often (exponent s)."""

    def __init__(self, values: list[str], s: float = 1.1) -> None:
        self.values = values
        weights = [1 / (i + 1) ** s for i in range(len(values))]
        self.cumulative = list(itertools.accumulate(weights))

    def __call__(self, rng: random.Random) -> str:
        return self.values[bisect.bisect(self.cumulative, rng.random() * self.cumulative[-1])]


SOURCES = (
    [("", "")]
    + [
        (name, host)
        for name, host in [
            ("Google", "google.com"),
            ("Bing", "bing.com"),
            ("DuckDuckGo", "duckduckgo.com"),
            ("Hacker News", "news.ycombinator.com"),
            ("LinkedIn", "linkedin.com"),
            ("Reddit", "reddit.com"),
            ("X (Twitter)", "t.co"),
            ("GitHub", "github.com"),
            ("Qwant", "qwant.com"),
            ("Facebook", "l.facebook.com"),
        ]
    ]
    + [(f"blog{i}.example.net", f"blog{i}.example.net") for i in range(140)]
)
BROWSERS = [
    ("Chrome", ["120", "121", "122", "119"]),
    ("Safari", ["17", "16"]),
    ("Firefox", ["121", "115"]),
    ("Edge", ["120", "121"]),
    ("Samsung Internet", ["23"]),
    ("Opera", ["106"]),
]
SYSTEMS = [
    ("Windows", "10", "desktop"),
    ("macOS", "10.15", "desktop"),
    ("iOS", "17", "mobile"),
    ("Android", "14", "mobile"),
    ("Android", "13", "mobile"),
    ("Linux", "", "desktop"),
    ("iOS", "16", "tablet"),
    ("ChromeOS", "", "desktop"),
]
SCREENS = {"desktop": ["desktop", "laptop"], "mobile": ["mobile"], "tablet": ["tablet"]}
CAMPAIGNS = ["spring", "black-friday", "launch", "webinar", "newsletter-42"]


@dataclass(frozen=True)
class Profile:
    visits_per_day: int
    pages: int = 2000
    countries: int = 120
    cities: int = 3000
    pageviews_per_visit: float = 1.7


def _names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def generate(site_id: int, start_ms: int, days: int, profile: Profile, seed: int = 1) -> Iterator[Event]:
    """Events of `days` days from `start_ms`, in time order within each day."""
    rng = random.Random(seed)
    pages = Zipf(
        ["/"]
        + [f"/{s}/{i}" for s in ("blog", "docs", "product", "help", "pricing") for i in range(profile.pages // 5)],
        1.05,
    )
    countries = Zipf([f"{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(profile.countries)], 1.2)
    cities = Zipf(_names("City ", profile.cities), 1.05)
    sources = Zipf([json.dumps(s) for s in SOURCES], 1.3)
    people = max(profile.visits_per_day * 3, 10)
    for day in range(days):
        day_start = start_ms + day * DAY_MS
        day_events: list[Event] = []
        for _ in range(profile.visits_per_day):
            person = rng.randrange(people)
            visitor = hash((person, (day_start // DAY_MS))) & 0x7FFF_FFFF_FFFF_FFFF
            ts = day_start + rng.randrange(DAY_MS)
            source, referrer = json.loads(sources(rng))
            utm = ("newsletter", "email", rng.choice(CAMPAIGNS)) if rng.random() < 0.08 else ("", "", "")
            browser, versions = rng.choice(BROWSERS)
            os_name, os_version, device = rng.choice(SYSTEMS)
            country = countries(rng)
            common = dict(
                site_id=site_id,
                visitor_id=visitor,
                hostname="example.com",
                referrer=referrer,
                source=source or utm[0],
                utm_source=utm[0],
                utm_medium=utm[1],
                utm_campaign=utm[2],
                utm_content="",
                utm_term="",
                browser=browser,
                browser_version=rng.choice(versions),
                os=os_name,
                os_version=os_version,
                device=device,
                screen=rng.choice(SCREENS[device]),
                country=country,
                region=f"{country}-{rng.randrange(12)}",
                city=cities(rng),
                revenue_micros=None,
                revenue_currency=None,
                scroll_depth=None,
                engaged_ms=None,
            )
            views = 1 + int(rng.expovariate(1 / (profile.pageviews_per_visit - 1)))
            for _ in range(views):
                day_events.append(
                    Event(ts=ts, name="pageview", pathname=pages(rng), props=None, interactive=True, **common)
                )
                if rng.random() < 0.04:
                    plan = rng.choice(["free", "pro", "team"])
                    day_events.append(
                        Event(
                            ts=ts + 1000,
                            name="Signup",
                            pathname="/pricing",
                            props=json.dumps({"plan": plan}),
                            interactive=True,
                            **common,
                        )
                    )
                ts += int(rng.expovariate(1 / 90_000))
        day_events.sort(key=lambda e: e.ts)
        yield from day_events
