"""Ingest benchmark: the real server over loopback against a bare Starlette endpoint, measured in the same run.

    python bench/ingest.py [--seconds 10] [--connections 64]

1. User-Agent parsing per string: `user-agents` (uncached) vs our detector, uncached and cached.
2. Maximum throughput (wrk, closed loop): the bare endpoint that only answers 202, then `analytics serve` with
   the full pipeline and durable acknowledgement (SQLite, WAL, synchronous=NORMAL), with realistic varied
   beacons: thousands of distinct User-Agents, addresses, pages, referrers, UTM values and custom events.
3. Latency at half of the pipeline's maximum rate (wrk with a per-connection delay).
Prints events/s, p50/p99 and the ratio to the bare endpoint. Needs `wrk` (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SHARED_GEO = ROOT.parent / "shared" / "geoip" / "geo-whois-asn-country.mmdb"
TEST_GEO = ROOT / "tests" / "data" / "country-code-subset.mmdb"


def user_agents(rng: random.Random, n: int) -> list[str]:
    templates = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.{b}.{p} "
        "Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.{b}.{p} "
        "Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
        "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS {i}_{p} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/{i}.{p} Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (iPad; CPU OS {i}_{p} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{i}.{p} "
        "Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android {a}; {m}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.{b}.{p} "
        "Mobile Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 "
        "Safari/537.36 Edg/{v}.0.{b}.{p}",
    ]
    models = ["Pixel 8", "SM-S918B", "SM-A546B", "moto g84", "2201116SG", "CPH2451", "SM-X710", "Pixel 7a"]
    found: set[str] = set()
    while len(found) < n:
        found.add(
            rng.choice(templates).format(
                v=rng.randint(100, 131),
                b=rng.randint(1000, 6999),
                p=rng.randint(0, 200),
                i=rng.randint(15, 18),
                a=rng.randint(10, 15),
                m=rng.choice(models),
            )
        )
    return sorted(found)


PROPS = ("plan", "from")
"""The custom properties the beacons send, which the benchmark's site stores (`site add --allow-prop`)."""


def beacons(n: int, seed: int = 7) -> list[tuple[dict[str, str], str]]:
    rng = random.Random(seed)
    agents = user_agents(rng, 3000)
    pages = [f"/{section}/{i}" for section in ("blog", "docs", "product", "help") for i in range(150)] + ["/"]
    referrers = [
        "https://www.google.com/",
        "https://www.bing.com/",
        "https://duckduckgo.com/",
        "https://news.ycombinator.com/",
        "https://www.linkedin.com/",
        "https://t.co/x",
        "",
        "",
        "",
        "https://blog.partner.example/post",
        "https://example.com/pricing",
    ]
    out = []
    for _ in range(n):
        page = pages[min(int(rng.paretovariate(1.2)) - 1, len(pages) - 1)] if rng.random() < 0.7 else rng.choice(pages)
        query = "?utm_source=newsletter&utm_medium=email&utm_campaign=spring" if rng.random() < 0.1 else ""
        body: dict[str, object] = {
            "n": "pageview",
            "u": f"https://example.com{page}{query}",
            "d": "example.com",
            "r": rng.choice(referrers),
            "w": rng.choice([390, 412, 768, 1280, 1440, 1920]),
        }
        if rng.random() < 0.08:
            body = {**body, "n": "Signup", "p": {"plan": rng.choice(["free", "pro", "team"]), "from": page}}  # PROPS
        ip = f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        if rng.random() < 0.2:
            ip = f"2a01:{rng.randint(0, 0xFFFF):x}:{rng.randint(0, 0xFFFF):x}::{rng.randint(1, 0xFFFF):x}"
        headers = {"Content-Type": "text/plain", "User-Agent": rng.choice(agents), "X-Forwarded-For": ip}
        out.append((headers, json.dumps(body)))
    return out


def lua_script(requests: list[tuple[dict[str, str], str]], delay_ms: float) -> str:
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    rows = ",\n".join(
        "{" + "{" + ", ".join(f"[{q(k)}]={q(v)}" for k, v in h.items()) + "}, " + q(b) + "}" for h, b in requests
    )
    delay = f"function delay() return {delay_ms} end" if delay_ms else ""
    return f"""
local data = {{
{rows}
}}
local reqs = {{}}
local i = 0
init = function(args)
  for k, v in ipairs(data) do reqs[k] = wrk.format("POST", "/api/event", v[1], v[2]) end
  i = math.random(#reqs)
end
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
local statuses = {{}}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  io.write(string.format("P50_US=%d\\nP99_US=%d\\n", latency:percentile(50), latency:percentile(99)))
end
{delay}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited early with {process.returncode}")
        try:
            httpx.options(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def wrk(url: str, script: Path, seconds: int, connections: int) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50_ms": int(re.search(r"P50_US=(\d+)", out).group(1)) / 1000,  # type: ignore[union-attr]
        "p99_ms": int(re.search(r"P99_US=(\d+)", out).group(1)) / 1000,  # type: ignore[union-attr]
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1) if errors else "none",
    }


def paced(url: str, work: Path, rate: float, seconds: int, connections: int = 32) -> dict[str, Any]:
    """wrk at a target rate: each connection waits `delay` ms between requests; the delay is calibrated
    twice on short runs (rate = connections / (delay + latency))."""
    script = work / "paced.lua"
    delay = connections * 1000 / rate
    for _ in range(2):
        script.write_text(lua_script(beacons(20_000, seed=8), delay))
        achieved = wrk(url, script, 3, connections)["rps"]
        latency = max(connections * 1000 / achieved - delay, 0.0)
        delay = max(connections * 1000 / rate - latency, 0.1)
    script.write_text(lua_script(beacons(20_000, seed=8), delay))
    return wrk(url, script, seconds, connections)


def start(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=open(cwd / "server.log", "wb"))


def ua_parsing() -> None:
    from user_agents import parse

    from analytics.devices import DeviceDetector

    agents = user_agents(random.Random(1), 1500)
    t = time.perf_counter()
    for ua in agents[:300]:
        parse(ua)
    slow = (time.perf_counter() - t) / 300 * 1e6
    detector = DeviceDetector(cache_size=0)
    t = time.perf_counter()
    for ua in agents:
        detector.detect(ua)
    fast = (time.perf_counter() - t) / len(agents) * 1e6
    cached = DeviceDetector(cache_size=10_000)
    for ua in agents:
        cached.detect(ua)
    t = time.perf_counter()
    for _ in range(10):
        for ua in agents:
            cached.detect(ua)
    hit = (time.perf_counter() - t) / (10 * len(agents)) * 1e6
    print("User-Agent parsing, per string (distinct realistic UAs):")
    print(f"  user-agents, uncached:                         {slow:8.1f} us")
    print(f"  analytics.devices, uncached (Rust + crawlers): {fast:8.1f} us   ({slow / fast:.0f}x faster)")
    print(f"  analytics.devices, cache hit:                  {hit:8.2f} us   ({slow / hit:.0f}x faster)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    ua_parsing()

    work = Path(tempfile.mkdtemp(prefix="analytics-bench-"))
    script = work / "load.lua"
    script.write_text(lua_script(beacons(20_000), 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    env["PYTHONPATH"] = str(ROOT)
    geo = SHARED_GEO if SHARED_GEO.exists() else TEST_GEO
    env.update(
        {
            "ANALYTICS_DATABASE_URL": f"sqlite:///{work}/data/analytics.db",
            "ANALYTICS_GEOIP_DATABASE": str(geo),
            "ANALYTICS_LOG_LEVEL": "warning",
        }
    )
    subprocess.run(
        [sys.executable, "-m", "analytics", "site", "add", "example.com", *(f"--allow-prop={k}" for k in PROPS)],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
    )

    results = {}
    for name, cmd in (
        ("bare", [sys.executable, str(ROOT / "bench" / "bare.py")]),
        ("analytics", [sys.executable, "-m", "analytics", "serve"]),
    ):
        port = free_port()
        process = start([*cmd, "--port", str(port)], work, env)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(f"{url}/api/event", process)
            wrk(url, script, 2, args.connections)  # warm-up: parser caches, allocator, page cache
            # Closed-loop load: the maximum is the best of a few connection counts, since a server that
            # answers only after a commit needs more requests in flight to stay busy.
            runs = {c: wrk(url, script, args.seconds, c) for c in (args.connections, args.connections * 4)}
            best = max(runs, key=lambda c: runs[c]["rps"])
            results[name] = {**runs[best], "connections": best}
            if name == "analytics":
                results["half"] = paced(url, work, results[name]["rps"] / 2, args.seconds)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)

    with __import__("sqlite3").connect(work / "data" / "analytics.db") as db:
        stored = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    bare, full, half = results["bare"], results["analytics"], results["half"]
    print(f"\nIngest over loopback, 1 server process, wrk 1 thread, {args.seconds}s per run (geo: {geo.name}):")
    print(f"  {'':40}{'conns':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    rows = (
        ("bare Starlette endpoint (202 only), max", bare),
        ("analytics, durable ack, max", full),
        ("analytics at half its max rate", {**half, "connections": 32}),
    )
    for label, r in rows:
        print(
            f"  {label:40}{r['connections']:>6.0f}{r['rps']:>9.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
            f"{r['non2xx']:>9.0f}"
        )
    print(f"\n  throughput ratio analytics / bare: {full['rps'] / bare['rps']:.2f}  (target >= 0.60)")
    print(f"  p99 at half the maximum rate: {half['p99_ms']:.1f} ms  (target < 25 ms)")
    print(f"  events stored: {stored}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
