"""Floods and soak: what ingest answers, how fast, and the server's memory, under overload and over time.

    python bench/flood.py flood [--seconds 60]      # closed-loop wrk with many connections: far past capacity
    python bench/flood.py soak [--minutes 30]       # paced at half the measured maximum, one line per minute

`flood` measures the maximum rate first (wrk, 64 connections, 10 s), then floods with 4,096 connections
(`--connections`; raise `ulimit -n` to match) from many networks for `--seconds`, then lets the server rest
60 s. It prints requests/s, p50/p99 of all answers, how many were not 2xx (503 shed, 429 rate-limited), and
the server's resident memory before, at the end of the flood and after the rest. `soak` prints p99 and memory
every minute at half the maximum rate: both should stay flat. `--env ANALYTICS_X=Y` sets server options.
Needs wrk (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import ROOT, beacons, free_port, lua_script, wait_ready, wrk


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("flood", "soak"))
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--minutes", type=int, default=30)
    ap.add_argument("--connections", type=int, default=4096, help="flood connections (raise ulimit -n to match)")
    ap.add_argument("--env", action="append", default=[], help="ANALYTICS_NAME=value for the server (repeatable)")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="analytics-flood-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    port = free_port()
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "ANALYTICS_DATABASE_URL": f"sqlite:///{work}/analytics.db",
            "ANALYTICS_SERVER_PORT": str(port),
            "ANALYTICS_LOG_LEVEL": "warning",
            "ANALYTICS_JOBS_INTERVAL_MINUTES": "0",
        }
    )
    env.update(dict(item.split("=", 1) for item in args.env))
    subprocess.run([sys.executable, "-m", "analytics", "site", "add", "example.com"], cwd=work, env=env, check=True)
    server = subprocess.Popen([sys.executable, "-m", "analytics", "serve"], cwd=work, env=env)
    url = f"http://127.0.0.1:{port}/api/event"
    try:
        wait_ready(url, server)
        script = work / "load.lua"
        script.write_text(lua_script(beacons(20_000), 0))
        idle = rss_mb(server.pid)
        best = wrk(url, script, 10, 64)
        print(f"maximum (64 connections, closed loop): {best['rps']:.0f} req/s, p99 {best['p99_ms']:.1f} ms")
        print(f"server memory at rest: {idle:.0f} MB; after the maximum-rate run: {rss_mb(server.pid):.0f} MB")
        if args.mode == "flood":
            flood = wrk(url, script, args.seconds, args.connections)
            end = rss_mb(server.pid)
            print(
                f"flood ({args.connections:,} connections, {args.seconds} s): {flood['rps']:.0f} answers/s, "
                f"p50 {flood['p50_ms']:.1f} ms, p99 {flood['p99_ms']:.1f} ms, not 2xx: {flood['non2xx']}, "
                f"socket errors: {flood['socket_errors']}"
            )
            print(f"server memory: {end:.0f} MB at the end of the flood", flush=True)
            time.sleep(60)
            print(f"server memory: {rss_mb(server.pid):.0f} MB after 60 s of rest (at rest before: {idle:.0f} MB)")
        else:
            rate = best["rps"] / 2
            paced = work / "paced.lua"
            delay = 32 * 1000 / rate
            for _ in range(2):  # calibrated: rate = connections / (delay + latency)
                paced.write_text(lua_script(beacons(20_000, seed=8), delay))
                achieved = wrk(url, paced, 5, 32)["rps"]
                delay = max(32 * 1000 / rate - max(32 * 1000 / achieved - delay, 0.0), 0.1)
            paced.write_text(lua_script(beacons(20_000, seed=8), delay))
            print(f"soak at ~{rate:.0f} req/s for {args.minutes} minutes:")
            for minute in range(args.minutes):
                result = wrk(url, paced, 60, 32)
                print(
                    f"  minute {minute + 1:3d}: {result['rps']:6.0f} req/s, p99 {result['p99_ms']:6.1f} ms, "
                    f"not 2xx {result['non2xx']}, memory {rss_mb(server.pid):.0f} MB",
                    flush=True,
                )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
