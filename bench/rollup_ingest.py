"""Ingest during a rollup: p99 and 503s while a busy day (200,000 events) is rolled up, against the same load
with no rollup, measured in the same run.

    python bench/rollup_ingest.py [--events 200000] [--rate 400] [--window 10]

1. Generates one closed day of realistic events (bench/traffic.py) into a fresh database.
2. Starts `analytics serve` (no scheduled jobs) and sends a paced load (wrk, one request = one event) in windows
   of `--window` seconds: first with nothing else running (the baseline), then while `analytics rollup` runs
   from "cron" (another process) followed by `analytics purge`, window after window until they end.
3. Starts the server again on a copy of the database made before the rollup, with `jobs.interval_minutes = 1`,
   and sends the same load while the server's own scheduler rolls the day up and purges it.
Prints per window: requests/s, p50, p99, non-2xx answers; and p99 of each phase as a ratio to the baseline, with
the number of batch commits that took over 100 ms (from the server's /metrics).
Needs wrk (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

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
    day = datetime.now(UTC).date() - timedelta(days=3)  # old enough for the purge too (48 h of raw events kept)
    start_ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
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
            "ANALYTICS_SERVER_METRICS_NETWORKS": "127.0.0.1/32",
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


def slow_batches(url: str) -> tuple[int, int]:
    """(batches committed, batches that took over 100 ms) so far, from the server's /metrics."""
    text = httpx.get(url.replace("/api/event", "/metrics"), timeout=10).text
    total = int(re.search(r'analytics_batch_commit_seconds_bucket\{le="\+Inf"\} (\d+)', text).group(1))  # type: ignore[union-attr]
    fast = int(re.search(r'analytics_batch_commit_seconds_bucket\{le="0.1"\} (\d+)', text).group(1))  # type: ignore[union-attr]
    return total, total - fast


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


def summary(name: str, found: list[dict[str, Any]], baseline: float, batches: tuple[int, int]) -> None:
    worst = max(r["p99_ms"] for r in found)
    failed = sum(r["non2xx"] for r in found)
    print(
        f"  {name}: worst window p99 {worst:.1f} ms = {worst / baseline:.2f}x the baseline; non-2xx {failed}; "
        f"batch commits over 100 ms: {batches[1]} of {batches[0]}"
    )


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
    for name in ("analytics.db", "analytics-aggregates.db", "analytics-salts.db"):
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
        before = slow_batches(url)
        print("rollup from cron (`analytics rollup` in another process):", flush=True)
        env = environment(work, None, 0)
        t = time.perf_counter()
        cron = subprocess.Popen(
            f"{sys.executable} -m analytics rollup && {sys.executable} -m analytics purge",
            shell=True,
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        during_cron = windows(url, script, args.window, lambda: cron.poll() is not None)
        output = cron.stdout.read().strip() if cron.stdout else ""
        print(f"    rollup and purge took {time.perf_counter() - t:.0f} s (exit {cron.returncode}): {output}")
        after = slow_batches(url)
        cron_batches = (after[0] - before[0], after[1] - before[1])
    finally:
        process.terminate()
        process.wait()

    log = fresh / "server.log"
    process, url = serve(fresh, 1)
    try:
        print("rollup by the server's own scheduler (jobs.interval_minutes = 1):", flush=True)

        def purged() -> bool:
            return "purge: removed" in log.read_text(errors="replace")

        during_server = windows(url, script, args.window, purged)
        server_batches = slow_batches(url)
    finally:
        process.terminate()
        process.wait()
    print("summary:")
    print(f"  baseline: worst window p99 {baseline:.1f} ms; non-2xx {sum(r['non2xx'] for r in base)}")
    summary("during the cron rollup and purge", during_cron, baseline, cron_batches)
    summary("from the server's start to the end of its rollup and purge", during_server, baseline, server_batches)


if __name__ == "__main__":
    main()
