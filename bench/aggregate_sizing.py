"""How many aggregate rows would each design keep? Counts rows per pageview for synthetic traffic.

    python bench/aggregate_sizing.py [--days 3] [--visits 16000]

For each bucket length (1 day, the whole run), counts distinct (dimension, value) rows and distinct
(filter dimension, filter value, dimension, value) pairs, then the pairs left when pairs seen in fewer than k
visits are folded into "(other)". A raw event costs ~110 bytes in SQLite; an aggregate row ~25-35.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.events import Event
from analytics.visits import Visit, build
from bench.traffic import DAY_MS, Profile, generate

VISIT_DIMS = (
    "source",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "country",
    "region",
    "city",
    "browser",
    "browser_version",
    "os",
    "os_version",
    "device",
    "screen",
)


def visit_values(events: list[Event], visit: Visit) -> set[tuple[str, str]]:
    first = events[visit.first]
    values = {(d, getattr(first, d)) for d in VISIT_DIMS}
    values.add(("entry_page", visit.entry_page))
    values.add(("exit_page", visit.exit_page))
    for i in visit.events:
        e = events[i]
        if e.name == "pageview":
            values.add(("page", e.pathname))
        else:
            values.add(("name", e.name))
            for key, value in json.loads(e.props or "{}").items():
                values.add((f"props:{key}", value))
    return values


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--visits", type=int, default=16_000)
    args = ap.parse_args()
    started = time.perf_counter()
    events = list(generate(1, 1_700_000_000_000 // DAY_MS * DAY_MS, args.days, Profile(args.visits)))
    pageviews = sum(e.name == "pageview" for e in events)
    visits, _ = build(events)
    singles_day: Counter[tuple[int, str, str]] = Counter()
    pairs_all: Counter[tuple[str, str, str, str]] = Counter()
    pairs_day: Counter[tuple[int, str, str, str, str]] = Counter()
    for visit in visits:
        day = events[visit.first].ts // DAY_MS
        values = visit_values(events, visit)
        for dim, value in values:
            singles_day[(day, dim, value)] += 1
            for fdim, fvalue in values:
                if fdim != dim:
                    pairs_all[(fdim, fvalue, dim, value)] += 1
                    pairs_day[(day, fdim, fvalue, dim, value)] += 1
    print(f"{args.days} days, {len(visits)} visits, {pageviews} pageviews ({time.perf_counter() - started:.0f} s)")
    print(f"  daily (dimension, value) rows per pageview: {len(singles_day) / pageviews:.3f}")
    for label, counter in (("pairs in daily buckets", pairs_day), (f"pairs in one {args.days}-day bucket", pairs_all)):
        for k in (1, 2, 3, 5):
            kept = sum(1 for n in counter.values() if n >= k)
            print(f"  {label}, k={k}: {kept / pageviews:.2f} rows per pageview")


if __name__ == "__main__":
    main()
