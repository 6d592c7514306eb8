"""What scrubbing costs per event: every free-text value of bench/ingest.py's beacons through `scrub`, uncached and
through ingest's caches, and a worst case where every path is new and holds an id.

    python bench/scrub.py [--events 20000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics import ingest, pages, scrub
from analytics.beacon import Beacon, parse
from bench.ingest import beacons

HOSTS = (1, 3)
"""Where values_per_event and worst_case put the host names (the page's, the referrer's): scrubbed by
`scrub_host`, the others by `scrub`."""


def values_per_event(n: int) -> list[list[str]]:
    """The values ingest scrubs for each beacon: name, hostname, path, referrer host, source, five UTM values,
    property values."""
    found = []
    for _, body in beacons(n):
        b = parse(body.encode(), "text/plain")
        assert isinstance(b, Beacon)
        page = pages.page(b.url, b.hash_mode)
        ref = b.referrer.host if b.referrer else ""
        utm = [page.utm_source, page.utm_medium, page.utm_campaign, page.utm_content, page.utm_term]
        found.append([b.name, page.hostname, page.path, ref, ref, *utm, *(v for _, v in b.props)])
    return found


def worst_case(n: int) -> list[list[str]]:
    """Every path new, with an order id and a token in it; a UTM value with an e-mail address."""
    rng = random.Random(3)
    return [
        [
            "pageview",
            "example.com",
            f"/orders/{rng.randint(10**7, 10**8)}/receipt/{rng.getrandbits(128):032x}",
            "mail.example",
            "mail.example",
            f"user{rng.randint(0, 10**6)}@example.com",
            "email",
            "spring",
            "",
            "",
        ]
        for _ in range(n)
    ]


def per_event_us(
    events: list[list[str]], fn: Callable[[str], str], host: Callable[[str], str], rounds: int = 3
) -> float:
    """The best of `rounds` passes: each event's host names through `host`, its other values through `fn`."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for values in events:
            for i, v in enumerate(values):
                (host if i in HOSTS else fn)(v)
        best = min(best, time.perf_counter() - started)
    return best / len(events) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=20_000)
    args = ap.parse_args()
    events = values_per_event(args.events)
    values = sum(len(v) for v in events) / len(events)
    print(f"{len(events)} beacons of bench/ingest.py, {values:.1f} values scrubbed per event")
    uncached, cached = (
        per_event_us(events, scrub.scrub, scrub.scrub_host),
        per_event_us(events, ingest._scrub, ingest._host_cached),
    )
    print(f"  scrub, uncached:              {uncached:6.2f} us per event")
    print(f"  through ingest's caches:      {cached:6.2f} us per event")
    worst = worst_case(args.events)
    ingest._scrub_cached.cache_clear()
    print(f"worst case (every path new, with an id and a token; an e-mail in utm_source), {len(worst)} events")
    print(f"  scrub, uncached:              {per_event_us(worst, scrub.scrub, scrub.scrub_host, 1):6.2f} us per event")
    print(f"  values that change: {sum(scrub.scrub(v) != v for e in worst for v in e) / len(worst):.1f} per event")
    print(json.dumps({"sample": [scrub.scrub(v) for v in worst[0]]}))


if __name__ == "__main__":
    main()
