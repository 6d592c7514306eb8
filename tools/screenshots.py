"""Screenshots of the dashboard for the README (docs/screenshots/), taken in Chromium on generated data.

    python tools/screenshots.py

Uses the browser tests' data set (two weeks of generated traffic, rolled up, today from raw events) and server.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.test_dashboard_browser import CHROMIUM, SETTLED, SITE, log_in, populate  # noqa: E402
from tests.test_server import start_server  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="analytics-screens-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    env["PYTHONPATH"] = str(ROOT)
    populate(workdir, env, days=60, visits_per_day=300)
    server = start_server(workdir, env)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            for scheme in ("light", "dark"):
                for name, viewport in (
                    ("desktop", {"width": 1280, "height": 900}),
                    ("phone", {"width": 390, "height": 844}),
                ):
                    context = browser.new_context(viewport=viewport, color_scheme=scheme, device_scale_factor=1)
                    page = context.new_page()
                    log_in(page, server.url)
                    page.goto(f"{server.url}/sites/{SITE}?range=30d&compare=1")
                    page.wait_for_function(SETTLED)
                    page.wait_for_timeout(300)
                    page.screenshot(path=OUT / f"dashboard-{name}-{scheme}.png", full_page=True)
                    if name == "desktop" and scheme == "light":
                        page.goto(f"{server.url}/")
                        page.wait_for_selector(f'[data-site="{SITE}"] svg')
                        page.screenshot(path=OUT / "sites.png")
                        page.goto(f"{server.url}/sites/{SITE}?range=30d&filter=visit:source&value=Google")
                        page.wait_for_function(SETTLED)
                        page.screenshot(path=OUT / "filtered.png", full_page=True)
                        page.click('[data-panel="pages"] .more')
                        page.wait_for_selector("#details tbody button")
                        page.screenshot(path=OUT / "details.png")
                        page.goto(f"{server.url}/sites/{SITE}?range=realtime")
                        page.wait_for_function(SETTLED)
                        page.screenshot(path=OUT / "realtime.png", full_page=True)
                        page.goto(f"{server.url}/sites/{SITE}/settings")
                        page.screenshot(path=OUT / "settings.png", full_page=True)
                    context.close()
            browser.close()
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main()
