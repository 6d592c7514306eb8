"""Ingest while the Stats API answers heavy questions: ingest p99 with questions arriving as fast as they are
answered, against the same paced load with none, measured in the same run.

    python bench/questions_ingest.py [--days 90] [--visits 4000] [--clients 8] [--rate 400] [--keep DIR]

1. Generates `--days` days of realistic traffic (bench/traffic.py) and rolls them up with the product's job, plus
   the open day's raw events (today, not rolled up), in a fresh database (or the one kept in `--keep`).
2. Starts `analytics serve` (no scheduled jobs) and sends a paced load (wrk, one request = one event): first
   alone (the baseline), then while `--clients` clients, half through an API key and half through a public shared
   link, ask the heaviest questions the API accepts (the largest ranges and bucket counts, comparisons, city and
   page breakdowns, the open day, 24h and realtime) one after the other, as fast as they are answered.
Prints per window: requests/s, p50, p99 and non-2xx of ingest; the questions answered, their statuses and
latencies; and ingest p99 as a ratio to the baseline. Needs wrk (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics import accounts, apikeys
from analytics.jobs import rollup_site
from analytics.sites import SiteSettings
from analytics.store import SQLiteStore
from bench.ingest import beacons, free_port, lua_script, wait_ready, wrk
from bench.rollup_ingest import environment
from bench.traffic import Profile, generate

DOMAIN = "example.com"
QUESTIONS: list[dict[str, Any]] = [
    {
        "metrics": ["visitors", "pageviews", "bounce_rate", "visit_duration"],
        "date_range": ["2000-01-01", "2027-05-18"],
        "dimensions": ["visit:source"],
        "include": {"comparisons": {"mode": "previous_period"}},
    },
    {
        "metrics": ["visitors", "visits", "pageviews"],
        "date_range": ["2016-01-01", "2026-12-31"],
        "dimensions": ["time:day"],
        "include": {"comparisons": {"mode": "previous_period"}},
        "pagination": {"limit": 4000},
    },
    {
        "metrics": ["visitors", "percentage"],
        "date_range": "12mo",
        "dimensions": ["visit:city"],
        "include": {"comparisons": {"mode": "previous_period"}},
        "pagination": {"limit": 1000},
    },
    {
        "metrics": ["visitors", "pageviews"],
        "date_range": "all",
        "dimensions": ["event:page"],
        "filters": [["is", "visit:source", ["Google"]]],
        "pagination": {"limit": 1000},
    },
    {
        "metrics": ["visitors", "pageviews"],
        "date_range": "day",
        "dimensions": ["event:page"],
        "include": {"comparisons": {"mode": "previous_period"}},
        "pagination": {"limit": 1000},
    },
    {
        "metrics": ["visitors"],
        "date_range": "24h",
        "dimensions": ["time:hour"],
        "include": {"comparisons": {"mode": "previous_period"}},
    },
    {"metrics": ["visitors"], "date_range": "realtime", "dimensions": ["event:page"]},
    {
        "metrics": ["visitors", "visits"],
        "date_range": "30d",
        "dimensions": ["time:day", "visit:browser"],
        "pagination": {"limit": 4000},
    },
]


async def make_data(path: Path, days: int, visits: int) -> tuple[str, str]:
    """The database, and (API key, shared link token) to ask with."""
    store = SQLiteStore(path)
    await store.open()
    await store.migrate()
    now = datetime.now(UTC)
    site = await store.add_site(SiteSettings(DOMAIN), 0)
    first = now.date() - timedelta(days=days)
    start_ms = int(datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp() * 1000)
    now_ms = int(now.timestamp() * 1000)
    batch: list[Any] = []
    written = 0
    for event in generate(site.id, start_ms, days + 1, Profile(visits_per_day=visits)):
        if event.ts > now_ms:
            break
        batch.append(event)
        if len(batch) >= 20_000:
            await store.insert_events(batch)
            written, batch = written + len(batch), []
    await store.insert_events(batch)
    print(f"generated {written + len(batch):,} events over {days + 1} days", flush=True)
    started = time.perf_counter()
    report = await rollup_site(store, site, now, min_visitors=1)
    print(f"rolled up {len(report.days)} days in {time.perf_counter() - started:.0f} s", flush=True)
    key, token = apikeys.new_key(), accounts.new_token(256)
    await store.add_api_key("bench", apikeys.digest(key), apikeys.display_prefix(key), [site.id], now_ms)
    await store.add_shared_link(site, "bench", apikeys.digest(token), None, None, False, now_ms)
    await store.close()
    return key, token


class Askers:
    """Clients asking QUESTIONS in turn, each waiting for its answer before the next, in a thread of their own."""

    def __init__(self, base: str, key: str, token: str, clients: int) -> None:
        self.base, self.key, self.token, self.clients = base, key, token, clients
        self.statuses: Counter[int] = Counter()
        self.latencies: list[float] = []
        self.by_question: dict[int, list[float]] = {i: [] for i in range(len(QUESTIONS))}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _client(self, n: int) -> None:
        shared = n % 2 == 1
        url = f"{self.base}/share/{self.token}/api/v2/query" if shared else f"{self.base}/api/v2/query"
        headers = {} if shared else {"Authorization": f"Bearer {self.key}"}
        async with httpx.AsyncClient(timeout=60) as client:
            i = n
            while not self.stop.is_set():
                asked = i % len(QUESTIONS)
                body = {"site_id": DOMAIN, **QUESTIONS[asked]}
                i += 1
                started = time.perf_counter()
                try:
                    status = (await client.post(url, json=body, headers=headers)).status_code
                except httpx.HTTPError:
                    status = 0
                self.latencies.append(time.perf_counter() - started)
                self.by_question[asked].append(self.latencies[-1])
                self.statuses[status] += 1

    async def _run(self) -> None:
        await asyncio.gather(*(self._client(n) for n in range(self.clients)))

    def __enter__(self) -> Askers:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def window(url: str, script: Path, seconds: int) -> dict[str, Any]:
    result = wrk(url, script, seconds, 32)
    print(
        f"    ingest {result['rps']:7.0f} req/s  p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:7.1f} ms  "
        f"non-2xx {result['non2xx']}",
        flush=True,
    )
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--visits", type=int, default=4000, help="visits per day")
    ap.add_argument("--clients", type=int, default=8, help="question clients at once")
    ap.add_argument("--rate", type=float, default=400.0, help="ingest requests per second (paced)")
    ap.add_argument("--window", type=int, default=10, help="seconds per measurement window")
    ap.add_argument("--windows", type=int, default=3, help="windows per phase")
    ap.add_argument("--keep", type=Path, help="reuse (or create) the generated database in this folder")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    work = args.keep or Path(tempfile.mkdtemp(prefix="analytics-questions-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    secrets = work / "secrets.txt"
    if not secrets.exists():
        key, token = asyncio.run(make_data(work / "analytics.db", args.days, args.visits))
        secrets.write_text(f"{key}\n{token}\n")
    key, token = secrets.read_text().split()
    script = work / "paced.lua"
    script.write_text(lua_script(beacons(20_000, seed=8), 32 * 1000 / args.rate))
    port = free_port()
    env = environment(work, port, 0)
    with open(work / "server.log", "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "analytics", "serve"], cwd=work, env=env, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/api/event", process)
        time.sleep(3)  # the open-day workers start
        print(f"baseline: {args.rate:.0f} ingest req/s paced, no questions", flush=True)
        baseline = [window(f"{base}/api/event", script, args.window) for _ in range(args.windows)]
        print(f"with {args.clients} clients asking heavy questions as fast as they are answered:", flush=True)
        with Askers(base, key, token, args.clients) as askers:
            during = [window(f"{base}/api/event", script, args.window) for _ in range(args.windows)]
    finally:
        process.terminate()
        process.wait()
    base_p99 = statistics.median(r["p99_ms"] for r in baseline)
    worst = max(r["p99_ms"] for r in during)
    lat = sorted(askers.latencies)
    answered = len(lat)
    print("summary:")
    print(f"  baseline ingest p99 (median of windows) {base_p99:.1f} ms")
    print(
        f"  with questions: worst window p99 {worst:.1f} ms = {worst / base_p99:.2f}x the baseline; "
        f"ingest non-2xx {sum(r['non2xx'] for r in during)}"
    )
    if answered:
        print(
            f"  questions: {answered} answered ({answered / (args.window * args.windows):.1f}/s), statuses "
            f"{dict(sorted(askers.statuses.items()))}, latency p50 {lat[answered // 2] * 1000:.0f} ms, "
            f"p99 {lat[int(answered * 0.99)] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms, "
            f"over 1 s: {sum(t > 1 for t in lat)}"
        )
        for i, times in askers.by_question.items():
            q = QUESTIONS[i]
            name = f"{q['date_range']} {' x '.join(q.get('dimensions', []))}"
            if times:
                print(
                    f"    {name:42} {len(times):4} answers, median {statistics.median(times) * 1000:6.0f} ms, "
                    f"max {max(times) * 1000:6.0f} ms"
                )


if __name__ == "__main__":
    main()
