"""Slow connections: honest requests and memory while one address holds thousands of unfinished request heads.

    python bench/slowloris.py [--connections 19500]

Starts `analytics serve` on a fresh SQLite database and sends honest pageviews (one at a time, 50 of them:
median and max latency, failures), then opens `--connections` connections from 127.0.0.1, which is a trusted
proxy by default (so not capped per address), each sending the start of a request head and nothing more; sends
the honest pageviews again while they are held, and once more after the server's header timeout has closed them.
Prints the server's RSS at each step. The number of connections is bounded by this process's own limit on open
files (raised to its hard limit here).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.flood import rss_mb
from bench.ingest import ROOT, free_port, wait_ready

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"


def honest(url: str, n: int = 50) -> str:
    times, failed = [], 0
    body = json.dumps({"n": "pageview", "u": "https://example.com/", "d": "example.com"})
    for _ in range(n):
        started = time.perf_counter()
        try:
            response = httpx.post(url, content=body, headers={"User-Agent": FIREFOX}, timeout=10)
            failed += response.status_code != 202
        except httpx.HTTPError:
            failed += 1
        times.append(time.perf_counter() - started)
    return f"median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms, {failed} failed"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", type=int, default=19_500)
    args = ap.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    work = Path(tempfile.mkdtemp(prefix="analytics-slowloris-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "ANALYTICS_DATABASE_URL": f"sqlite:///{work}/analytics.db",
            "ANALYTICS_SERVER_PORT": str(port),
        }
    )
    cli = [sys.executable, "-m", "analytics"]
    subprocess.run([*cli, "site", "add", "example.com"], env=env, cwd=work, capture_output=True, check=True)
    with open(work / "server.log", "wb") as log:
        process = subprocess.Popen([*cli, "serve"], env=env, cwd=work, stderr=log)
    url = f"http://127.0.0.1:{port}/api/event"
    held: list[socket.socket] = []
    try:
        wait_ready(url, process)
        print(f"before:  honest pageviews {honest(url)}; server RSS {rss_mb(process.pid):.0f} MB", flush=True)
        started, errors = time.monotonic(), 0
        for _ in range(args.connections):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
                s.sendall(b"POST /api/event HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
                held.append(s)
            except OSError:
                errors += 1
        print(
            f"opened {len(held):,} slow connections in {time.monotonic() - started:.1f} s ({errors} refused); "
            f"server RSS {rss_mb(process.pid):.0f} MB",
            flush=True,
        )
        print(f"during:  honest pageviews {honest(url)}; server RSS {rss_mb(process.pid):.0f} MB", flush=True)
        time.sleep(11)
        print(f"after the header timeout: honest pageviews {honest(url)}; server RSS {rss_mb(process.pid):.0f} MB")
    finally:
        for s in held:
            s.close()
        process.terminate()
        process.wait()
    limit = next((line for line in (work / "server.log").read_text().splitlines() if "accepting up to" in line), "")
    print(limit.split(": ", 1)[-1])


if __name__ == "__main__":
    main()
