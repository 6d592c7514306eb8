"""Maximum ingest throughput of this tree against another checkout, in alternating rounds of the same run.

    git worktree add --detach /tmp/before 512f838^
    python bench/ingest_ab.py /tmp/before [--rounds 5] [--seconds 10] [--connections 64] [--rate R]
        [--env KEY=VALUE]

Each round starts `analytics serve` from the other checkout, then from this one, each on a fresh SQLite database,
and measures closed-loop throughput with wrk (the beacons of bench/ingest.py) after a 2 s warm-up. This tree runs
with the rate limits off (they exist to refuse a flood; here the flood is the measurement); --env adds
environment variables for this tree's server only. With --rate, each server gets a paced load at that rate
instead (p99 compared). Prints req/s and p99 per round, the medians and their ratio: machines like this one are
too noisy for two separate runs to compare.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import PROPS, ROOT, SHARED_GEO, TEST_GEO, beacons, free_port, lua_script, paced, wait_ready, wrk

NO_LIMITS = {"ANALYTICS_INGEST_RATE_LIMIT_SITE_PER_MINUTE": "0", "ANALYTICS_INGEST_RATE_LIMIT_ADDRESS_PER_MINUTE": "0"}


def measure(
    tree: Path, folder: Path, extra: dict[str, str], script: Path, seconds: int, connections: int, rate: float
) -> Any:
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    geo = SHARED_GEO if SHARED_GEO.exists() else TEST_GEO
    env.update(
        {
            "PYTHONPATH": str(tree),
            "ANALYTICS_DATABASE_URL": f"sqlite:///{folder}/analytics.db",
            "ANALYTICS_GEOIP_DATABASE": str(geo),
            "ANALYTICS_LOG_LEVEL": "warning",
            **extra,
        }
    )
    cli = [sys.executable, "-m", "analytics"]
    subprocess.run([*cli, "site", "add", "example.com"], cwd=folder, env=env, check=True, capture_output=True)
    # A tree with a property allow-list stores the beacons' properties as one without does (an older tree has no
    # such command: it fails, and stores them anyway).
    allow = [f"--allow={k}" for k in PROPS]
    subprocess.run([*cli, "site", "props", "example.com", *allow], cwd=folder, env=env, capture_output=True)
    port = free_port()
    env["ANALYTICS_SERVER_PORT"] = str(port)
    with open(folder / "server.log", "wb") as log:
        process = subprocess.Popen([*cli, "serve"], cwd=folder, env=env, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/api/event", process)
        wrk(url, script, 2, connections)
        if rate:
            return paced(url, folder, rate, seconds)
        return wrk(url, script, seconds, connections)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("against", type=Path, help="a checkout of the commit to compare with")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for this tree's server (repeatable)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--rate", type=float, default=0.0, help="paced at this rate (32 connections) instead of the max")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="analytics-ingest-ab-"))
    script = work / "load.lua"
    script.write_text(lua_script(beacons(20_000), 0))
    trees = {
        "other": (args.against.resolve(), {}),
        "this": (ROOT, {**NO_LIMITS, **dict(e.split("=", 1) for e in args.env)}),
    }
    found: dict[str, list[Any]] = {name: [] for name in trees}
    for round_ in range(args.rounds):
        for name, (tree, extra) in trees.items():
            r = measure(tree, work / f"{name}{round_}", extra, script, args.seconds, args.connections, args.rate)
            found[name].append(r)
            print(
                f"round {round_ + 1} {name:5} {r['rps']:7.0f} req/s  p99 {r['p99_ms']:6.1f} ms  non-2xx {r['non2xx']}"
            )
    if args.rate:
        p99 = {name: statistics.median(r["p99_ms"] for r in runs) for name, runs in found.items()}
        print(f"median p99 at {args.rate:.0f} req/s: other {p99['other']:.1f} ms, this {p99['this']:.1f} ms")
    medians = {name: statistics.median(r["rps"] for r in runs) for name, runs in found.items()}
    print(
        f"median req/s: other {medians['other']:.0f}, this {medians['this']:.0f}; "
        f"ratio this / other {medians['this'] / medians['other']:.2f}"
    )


if __name__ == "__main__":
    main()
