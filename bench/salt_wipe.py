"""A salt's destruction and the wipe of purged raw events while two processes re-read today's raw events back to
back (as the open-day workers do on a busy site): how long ingest's commits take meanwhile, and whether the
destroyed salt is still in any file afterwards (README, Privacy model).

    python bench/salt_wipe.py [--events 205000] [--pause 0.05] [--seconds 8]

1. Fills a fresh database with one day of realistic events (bench/traffic.py).
2. Starts two reader processes that read the whole day in a loop, `--pause` seconds apart, then makes
   yesterday's and today's salts (while they read, as at midnight), and starts a writer that commits a batch of
   20 events every 20 ms through the store (the batch writer's path), timing each commit.
3. Three phases of `--seconds` each, the commits timed in each: nothing else (the baseline); yesterday's salt
   destroyed as the server's upkeep does it (`delete_salts_before`, then `wipe` if one is pending); the raw
   events of the day's first hour purged and wiped as the purge does it (`delete_events_before`, `wipe`).
Prints per phase: commits, their p50, p99 and maximum, and how many took over 100 ms; for each step how long
it took and, after the salt's destruction, the files that still hold its bytes. To compare with an earlier
version, run the script from a copy of it (`git archive <commit> | tar -x -C /tmp/old`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.events import Event
from analytics.sites import SiteSettings
from analytics.store import SQLiteStore
from bench.traffic import DAY_MS, Profile, generate

ROOT = Path(__file__).resolve().parent.parent
TODAY = date(2026, 3, 14)
START_MS = 1_773_446_400_000  # 2026-03-14 00:00 UTC
READER = """
import sys, time
from analytics.store.sqlite import read_events
while True:
    read_events(sys.argv[1], 1, {start}, {end})
    time.sleep(float(sys.argv[2]))
"""


async def commits(store: SQLiteStore, template: Event, stop: asyncio.Event, times: list[float]) -> None:
    """A batch of 20 events every 20 ms, each commit timed (seconds)."""
    ts = START_MS + DAY_MS - 1
    while not stop.is_set():
        batch = [template._replace(ts=(ts := ts + 1)) for _ in range(20)]
        started = time.perf_counter()
        await store.insert_events(batch)
        times.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)


def carve(folder: Path, needle: bytes) -> list[str]:
    """The files holding `needle`, read by another process (closing a descriptor would drop SQLite's locks)."""
    files = sorted(folder.iterdir())
    return [p.name for p in files if needle in subprocess.run(["cat", p], capture_output=True, check=False).stdout]


def start_readers(path: Path, pause: float) -> list[subprocess.Popen[bytes]]:
    script = READER.format(start=START_MS, end=START_MS + DAY_MS)
    return [subprocess.Popen([sys.executable, "-c", script, str(path), str(pause)], cwd=ROOT) for _ in range(2)]


async def phase(store: SQLiteStore, name: str, seconds: float, step: Awaitable[None] | None = None) -> None:
    times: list[float] = []
    stop = asyncio.Event()
    template = (await store.events_between(1, START_MS, START_MS + 60_000))[0]
    writer = asyncio.create_task(commits(store, template, stop, times))
    started = time.perf_counter()
    if step is not None:
        await asyncio.sleep(1)
        await step
    await asyncio.sleep(max(0.0, seconds - (time.perf_counter() - started)))
    stop.set()
    await writer
    times.sort()
    p99 = times[int(len(times) * 0.99)]
    slow = sum(t > 0.1 for t in times)
    print(
        f"{name:<20} {len(times):>4} commits: p50 {statistics.median(times) * 1000:5.1f} ms, "
        f"p99 {p99 * 1000:5.0f} ms, max {times[-1] * 1000:4.0f} ms, {slow} over 100 ms"
    )


async def destroy_salt(store: SQLiteStore, salt: bytes) -> None:
    started = time.perf_counter()
    await store.delete_salts_before(TODAY)
    deleted = time.perf_counter() - started
    if store.wipe_pending:
        await store.wipe()
    done = time.perf_counter() - started
    print(f"  salt deleted in {deleted * 1000:.0f} ms, wiped after {done:.2f} s (wal_blocked {store.wal_blocked})")
    print(f"  files holding the destroyed salt: {carve(store.path.parent, salt) or 'none'}")


async def purge(store: SQLiteStore) -> None:
    started = time.perf_counter()
    removed = await store.delete_events_before(1, START_MS + 3_600_000)
    emptied = await store.wipe()
    print(
        f"  purged {removed} raw events; WALs emptied: {emptied} after {time.perf_counter() - started:.2f} s "
        f"(wal_blocked {store.wal_blocked})"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=205_000)
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between a reader's reads")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each phase")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        store = SQLiteStore(Path(tmp) / "analytics.db")
        await store.open()
        await store.migrate()
        site = await store.add_site(SiteSettings("example.com"), 0)
        events = list(generate(site.id, START_MS, 1, Profile(visits_per_day=int(args.events / 1.32))))
        for i in range(0, len(events), 5000):
            await store.insert_events(events[i : i + 5000])
        await store.wipe()
        print(f"{len(events)} events of one day; two readers re-read it, {args.pause:g} s apart")
        readers = start_readers(store.path, args.pause)
        try:
            await asyncio.sleep(3)  # both inside their first read
            # Made while the day is read, as a salt is at midnight: a version that kept it in the events' file
            # wrote it into the WAL.
            old = await store.salt(TODAY - timedelta(days=1), b"Y" * 16 + bytes(range(16)), 0)
            await store.salt(TODAY, b"T" * 32, 0)
            await phase(store, "baseline", args.seconds)
            await phase(store, "salt destroyed", args.seconds, destroy_salt(store, old))
            await phase(store, "raw events purged", args.seconds, purge(store))
        finally:
            for reader in readers:
                reader.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    reader.wait(5)
            await store.close()


if __name__ == "__main__":
    asyncio.run(main())
