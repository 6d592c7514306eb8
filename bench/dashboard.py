"""Dashboard speed in Chromium on the query benchmark's data set (10M pageviews over 12 months).

    python bench/dashboard.py --keep DIR [--rounds 5]

DIR holds bench/query.py's database (generated there first when missing: about 80 minutes). The server runs on
it (jobs off, so the data stays as generated) and Chromium, driven by Playwright, logs in and times:

- first meaningful paint: from navigation start until the tiles, the chart and every panel are drawn (the
  dashboard marks `dashboard-ready-N` in the Performance timeline when all of a state's answers are drawn);
- a filter change: from the click on a source (one not clicked before) to the same mark for the new state;
- a range change: from the keyboard shortcut to the mark.

Each is timed at `30d` and `12mo`, warm (the open day's rows computed less than 10 s before) and "cold" (more
than 10 s before: they are served while fresh ones are computed in the worker process), plus once just after
the server started and the user logged in (the server computes today's rows as it starts). The baseline, in
the same run, is a page of the same layout that asks nothing of the data (a site that does not exist), so
ratios show what the figures themselves cost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from analytics import accounts  # noqa: E402
from analytics.store import SQLiteStore  # noqa: E402
from tests.test_dashboard_browser import log_in  # noqa: E402
from tests.test_server import start_server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
EMAIL, PASSWORD = "bench@example.com", "benchmark password"
CACHE_SECONDS = 10.5  # the open day's rows are reused for 10 s (stats_api.StatsApi)


async def add_user(db: Path) -> str:
    store = SQLiteStore(db)
    await store.open()
    await store.migrate()
    if await store.find_user(EMAIL) is None:
        await store.add_user(EMAIL, accounts.hash_password(PASSWORD, n=2**14), None, 0)
    domain = (await store.list_sites())[0].domain
    await store.close()
    return domain


def ready(page: Page, previous: int) -> float:
    """Milliseconds from the page's time origin to the mark of the first state after `previous`."""
    page.wait_for_function(f"() => Number(document.body.dataset.ready || 0) > {previous}", timeout=120_000)
    state = int(page.evaluate("() => document.body.dataset.ready"))
    return float(page.evaluate(f"() => performance.getEntriesByName('dashboard-ready-{state}')[0].startTime"))


def state(page: Page) -> int:
    return int(page.evaluate("() => Number(document.body.dataset.ready || 0)"))


def timed_action(page: Page, script: str) -> float:
    before = state(page)
    started = float(page.evaluate(f"() => {{ const t = performance.now(); {script}; return t; }}"))
    return ready(page, before) - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", type=Path, required=True, help="folder of bench/query.py's database")
    ap.add_argument("--rounds", type=int, default=4, help="at most 4: each round filters by two new sources")
    args = ap.parse_args()
    db = args.keep / "bench.db"
    if not db.exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "query.py"), "--keep", str(args.keep)], check=True)
    domain = asyncio.run(add_user(db))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    env.update(
        {"PYTHONPATH": str(ROOT), "ANALYTICS_DATABASE_URL": f"sqlite:///{db}", "ANALYTICS_JOBS_INTERVAL_MINUTES": "0"}
    )
    workdir = args.keep / "server"
    workdir.mkdir(exist_ok=True)
    server = start_server(workdir, env)
    started_at = time.perf_counter()
    results: dict[str, list[float]] = {}

    def record(name: str, value: float) -> None:
        results.setdefault(name, []).append(value)

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            log_in(page, server.url, EMAIL, PASSWORD)
            after = time.perf_counter() - started_at  # the server computes today's rows as it starts
            page.goto(f"{server.url}/sites/{domain}?range=30d")
            record(f"first paint {after:.1f} s after the server started", ready(page, 0))
            for round_ in range(args.rounds):
                started = time.perf_counter()
                page.goto(f"{server.url}/sites/no-such-site.example")  # a page of the same layout, no figures
                page.wait_for_load_state("load")
                record("baseline: a page without figures", (time.perf_counter() - started) * 1000)
                for index, range_name in enumerate(("30d", "12mo")):
                    time.sleep(CACHE_SECONDS)  # the open day's cached rows have expired: computed again
                    page.goto(f"{server.url}/sites/{domain}?range={range_name}")
                    record(f"first paint, cold, {range_name}", ready(page, 0))
                    page.goto(f"{server.url}/sites/{domain}?range={range_name}")
                    record(f"first paint, warm, {range_name}", ready(page, 0))
                    row = 2 * round_ + index  # a source not clicked before: its open-day rows must be computed
                    click = f"document.querySelectorAll('[data-panel=\"sources\"] .row')[{row}].click()"
                    record(f"filter change (a new filter), {range_name}", timed_action(page, click))
                    record(
                        f"filter removed, {range_name}",
                        timed_action(page, "document.querySelector('#chips .remove').click()"),
                    )
                key = "document.body.dispatchEvent(new KeyboardEvent('keydown', {key: 'w', bubbles: true}))"
                record("range change to 7d (shortcut)", timed_action(page, key))
            browser.close()
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)
    baseline = statistics.median(results["baseline: a page without figures"])
    print(f"\n{'dashboard, 10M pageviews (median of ' + str(args.rounds) + ')':52}{'ms':>8}{'x baseline':>12}")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:52}{median:8.0f}{median / baseline:11.1f}x")


if __name__ == "__main__":
    main()
