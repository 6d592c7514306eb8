"""Which PostgreSQL driver for the store (issue 14): asyncpg or psycopg 3, measured on what ingest does.

    pip install asyncpg 'psycopg[binary]'
    python bench/pg_drivers.py [--events 200000] [--batch 100]

Starts a throwaway cluster (initdb and pg_ctl from /usr/lib/postgresql/<version>/bin, in a temporary folder,
on a Unix socket; as the postgres user when run as root), creates a table shaped like the raw events, and
commits the same events in batches of `--batch` (what the group-commit writer does), each batch in its own
transaction, with each driver's two ways of writing many rows: COPY, and one multi-row INSERT. Then it reads
a day's events back (the rollup's read). Each figure is printed against asyncpg's COPY measured in the same
run, because these machines are noisy; the runs alternate between drivers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

COLUMNS = ("site_id", "ts", "visitor_id", "name", "pathname", "referrer", "browser", "country")
CREATE = (
    "CREATE TABLE IF NOT EXISTS events (site_id BIGINT NOT NULL, ts BIGINT NOT NULL, visitor_id BIGINT NOT NULL, "
    "name TEXT NOT NULL, pathname TEXT NOT NULL, referrer TEXT NOT NULL, browser TEXT NOT NULL, "
    "country TEXT NOT NULL)"
)


def postgres_bin() -> Path:
    for version in sorted(Path("/usr/lib/postgresql").glob("*"), reverse=True):
        if (version / "bin" / "pg_ctl").exists():
            return version / "bin"
    raise SystemExit("PostgreSQL server binaries not found (Debian: apt-get install postgresql)")


def as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def start_cluster(folder: Path) -> str:
    """A throwaway cluster in `folder`, listening on a Unix socket there only; returns its connection DSN."""
    binaries = postgres_bin()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    data, sockets = folder / "data", folder
    subprocess.run(
        as_postgres([str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "bench"]),
        check=True,
        capture_output=True,
    )
    options = f"-c listen_addresses='' -c unix_socket_directories={sockets} -c fsync=on -c synchronous_commit=on"
    subprocess.run(
        as_postgres(
            [str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l", str(folder / "log"), "start"]
        ),
        check=True,
        capture_output=True,
    )
    return f"postgresql://bench@/postgres?host={sockets}"


def stop_cluster(folder: Path) -> None:
    subprocess.run(
        as_postgres([str(postgres_bin() / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "stop"]),
        capture_output=True,
    )


def events(n: int) -> list[tuple[Any, ...]]:
    rng = random.Random(7)
    start = 1_764_547_200_000
    pages = [f"/docs/page-{i}" for i in range(300)]
    return [
        (1, start + i * 400, rng.getrandbits(63), "pageview", rng.choice(pages), "news.example.org", "Chrome", "FR")
        for i in range(n)
    ]


def batches(rows: list[tuple[Any, ...]], size: int) -> list[list[tuple[Any, ...]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def values_sql(rows: int, style: str) -> str:
    width = len(COLUMNS)
    if style == "$":
        groups = [f"({', '.join(f'${r * width + c + 1}' for c in range(width))})" for r in range(rows)]
    else:
        groups = [f"({', '.join(['%s'] * width)})"] * rows
    return f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES " + ", ".join(groups)


async def run_asyncpg(dsn: str, groups: list[list[tuple[Any, ...]]], way: str) -> float:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("TRUNCATE events")
        started = time.perf_counter()
        for group in groups:
            async with conn.transaction():
                if way == "copy":
                    await conn.copy_records_to_table("events", records=group, columns=COLUMNS)
                else:
                    await conn.execute(values_sql(len(group), "$"), *[v for row in group for v in row])
        return time.perf_counter() - started
    finally:
        await conn.close()


async def run_psycopg(dsn: str, groups: list[list[tuple[Any, ...]]], way: str) -> float:
    import psycopg

    conn = await psycopg.AsyncConnection.connect(dsn)
    try:
        await conn.execute("TRUNCATE events")
        await conn.commit()
        started = time.perf_counter()
        for group in groups:
            async with conn.transaction(), conn.cursor() as cur:
                if way == "copy":
                    async with cur.copy(f"COPY events ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                        for row in group:
                            await copy.write_row(row)
                else:
                    await cur.execute(values_sql(len(group), "%"), [v for row in group for v in row])
        return time.perf_counter() - started
    finally:
        await conn.close()


async def read_asyncpg(dsn: str) -> float:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        await conn.fetch("SELECT * FROM events WHERE site_id = 1 ORDER BY ts")
        return time.perf_counter() - started
    finally:
        await conn.close()


async def read_psycopg(dsn: str) -> float:
    import psycopg

    conn = await psycopg.AsyncConnection.connect(dsn)
    try:
        started = time.perf_counter()
        async with conn.cursor() as cur:
            await cur.execute("SELECT * FROM events WHERE site_id = 1 ORDER BY ts")
            await cur.fetchall()
        return time.perf_counter() - started
    finally:
        await conn.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="analytics-pg-"))
    dsn = start_cluster(folder)
    try:
        import asyncpg

        setup = await asyncpg.connect(dsn)
        await setup.execute(CREATE)
        await setup.close()
        groups = batches(events(args.events), args.batch)
        writes: dict[str, Callable[[], Awaitable[float]]] = {
            "asyncpg COPY": lambda: run_asyncpg(dsn, groups, "copy"),
            "asyncpg INSERT": lambda: run_asyncpg(dsn, groups, "insert"),
            "psycopg COPY": lambda: run_psycopg(dsn, groups, "copy"),
            "psycopg INSERT": lambda: run_psycopg(dsn, groups, "insert"),
        }
        best: dict[str, float] = {}
        for _ in range(args.rounds):  # alternating, so that a noisy moment hits every driver alike
            for name, write in writes.items():
                best[name] = min(best.get(name, float("inf")), await write())
        reads = {"asyncpg read": read_asyncpg, "psycopg read": read_psycopg}
        for _ in range(args.rounds):
            for name, read in reads.items():
                best[name] = min(best.get(name, float("inf")), await read(dsn))
        base = best["asyncpg COPY"]
        print(f"{args.events:,} events in batches of {args.batch}, one transaction each; best of {args.rounds}")
        for name in writes:
            rate = args.events / best[name]
            print(f"  {name:<15} {rate:>9,.0f} events/s   {best[name] / base:.2f}x asyncpg COPY's time")
        read_base = best["asyncpg read"]
        for name in reads:
            print(f"  {name:<15} {best[name] * 1000:>7.0f} ms for the day   {best[name] / read_base:.2f}x asyncpg's")
    finally:
        stop_cluster(folder)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
