"""Ingest during a rollup: p99 and 503s while a busy day (200,000 events) is rolled up, against the same load
with no rollup, measured in the same run.

    python bench/rollup_ingest.py [--events 200000] [--rate 400] [--window 10]

1. Generates one closed day of realistic events (bench/traffic.py) into a fresh database.
2. Starts `analytics serve` (no scheduled jobs) and sends a paced load (wrk, one request = one event) in windows
   of `--window` seconds: first with nothing else running (the baseline), then while `analytics rollup` runs
   from "cron" (another process), window after window until it ends.
3. Starts the server again on a copy of the database made before the rollup, with `jobs.interval_minutes = 1`,
   and sends the same load while the server's own scheduler rolls the day up.
Prints per window: requests/s, p50, p99, non-2xx answers; and p99 of each phase as a ratio to the baseline.
Needs wrk (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.sites import SiteSettings
from analytics.store import SQLiteStore
from bench.ingest import ROOT, free_port, lua_script, wait_ready, wrk
from bench.traffic import Profile, generate


async def make_day(path: Path, events: int) -> int:
    store = SQLiteStore(path)
    await store.open()
    await store.migrate()
    site = await store.add_site(SiteSettings("example.com"), 0)
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    start_ms = int(datetime(yesterday.year, yesterday.month, yesterday.day, tzinfo=UTC).timestamp() * 1000)
    batch, written = [], 0
    for event in generate(site.id, start_ms, 1, Profile(visits_per_day=int(events / 1.32))):
        batch.append(event)
        if len(batch) >= 20_000:
            await store.insert_events(batch)
            written, batch = written + len(batch), []
    await store.insert_events(batch)
    await store.close()
    return written + len(batch)


def environment(work: Path, port: int | None, interval: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    if port is not None:
        env["ANALYTICS_SERVER_PORT"] = str(port)
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "ANALYTICS_DATABASE_URL": f"sqlite:///{work}/analytics.db",
            "ANALYTICS_JOBS_INTERVAL_MINUTES": str(interval),
            "ANALYTICS_LOG_LEVEL": "info",
        }
    )
    return env


def serve(work: Path, interval: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = open(work / "server.log", "ab")  # noqa: SIM115 -- closed with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "analytics", "serve"], cwd=work, env=environment(work, port, interval), stderr=log
    )
    url = f"http://127.0.0.1:{port}/api/event"
    wait_ready(url, process)
    return process, url


def windows(url: str, script: Path, seconds: int, until: Any) -> list[dict[str, Any]]:
    found = []
    while True:
        result = wrk(url, script, seconds, 32)
        found.append(result)
        print(
            f"    {result['rps']:7.0f} req/s  p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:7.1f} ms  "
            f"non-2xx {result['non2xx']}  socket errors {result['socket_errors']}",
            flush=True,
        )
        if until():
            return found


def summary(name: str, found: list[dict[str, Any]], baseline: float) -> None:
    worst = max(r["p99_ms"] for r in found)
    failed = sum(r["non2xx"] for r in found)
    print(f"  {name}: worst window p99 {worst:.1f} ms = {worst / baseline:.2f}x the baseline; non-2xx {failed}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rate", type=float, default=400.0, help="requests per second (paced)")
    ap.add_argument("--window", type=int, default=10, help="seconds per measurement window")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="analytics-rollup-bench-"))
    started = time.perf_counter()
    count = asyncio.run(make_day(work / "analytics.db", args.events))
    print(f"generated {count:,} events of yesterday in {time.perf_counter() - started:.0f} s", flush=True)
    fresh = work / "fresh"
    fresh.mkdir()
    for name in ("analytics.db", "analytics-aggregates.db"):
        shutil.copy(work / name, fresh / name)

    from bench.ingest import beacons

    script = work / "paced.lua"
    delay = 32 * 1000 / args.rate  # each of 32 connections waits this long between requests
    script.write_text(lua_script(beacons(20_000, seed=8), delay))

    process, url = serve(work, 0)
    try:
        print(f"baseline: {args.rate:.0f} req/s paced, no rollup", flush=True)
        base = windows(url, script, args.window, lambda: True)
        base += windows(url, script, args.window, lambda: True)
        baseline = max(r["p99_ms"] for r in base)
        print("rollup from cron (`analytics rollup` in another process):", flush=True)
        env = environment(work, None, 0)
        t = time.perf_counter()
        cron = subprocess.Popen(
            [sys.executable, "-m", "analytics", "rollup"], cwd=work, env=env, stdout=subprocess.PIPE, text=True
        )
        during_cron = windows(url, script, args.window, lambda: cron.poll() is not None)
        print(f"    rollup took {time.perf_counter() - t:.0f} s: {cron.stdout.read().strip() if cron.stdout else ''}")
    finally:
        process.terminate()
        process.wait()

    log = fresh / "server.log"
    process, url = serve(fresh, 1)
    try:
        print("rollup by the server's own scheduler (jobs.interval_minutes = 1):", flush=True)

        def rolled() -> bool:
            return "rolled up example.com" in log.read_text(errors="replace")

        during_server = windows(url, script, args.window, rolled)
    finally:
        process.terminate()
        process.wait()
    print("summary:")
    print(f"  baseline: worst window p99 {baseline:.1f} ms; non-2xx {sum(r['non2xx'] for r in base)}")
    summary("during the cron rollup", during_cron, baseline)
    summary("during the in-server rollup", during_server, baseline)


if __name__ == "__main__":
    main()
