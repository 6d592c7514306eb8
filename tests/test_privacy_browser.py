"""The visitors' notice at /privacy/DOMAIN, read in Chromium: in the browser's language, styled under its own
Content-Security-Policy (no violation), and following the live configuration."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.test_browser import CHROMIUM
from tests.test_server import Server, run_cli, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("notice")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    env["PYTHONPATH"] = str(Path(__file__).parent.parent)
    env["ANALYTICS_PRIVACY_MIN_VISITORS"] = "8"
    assert run_cli(workdir, env, "site", "add", "example.com").returncode == 0
    assert run_cli(workdir, env, "site", "collect", "example.com", "--off", "screens").returncode == 0
    started = start_server(workdir, env)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


@pytest.mark.parametrize(
    ("locale", "heading", "k_text", "screen_row"),
    [
        ("fr-FR", "Comment example.com mesure son audience", "moins de 8 visiteurs", "non (pas de collecte)"),
        ("en-GB", "How example.com measures its audience", "fewer than 8 visitors", "no (not collected)"),
    ],
)
def test_the_notice_reads_in_the_browsers_language(
    server: Server, browser: Browser, locale: str, heading: str, k_text: str, screen_row: str
) -> None:
    context = browser.new_context(locale=locale)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    answer = page.goto(f"{server.url}/privacy/example.com")
    assert answer is not None and answer.status == 200
    assert page.locator("h1").inner_text() == heading
    assert page.locator("html").get_attribute("lang") == locale[:2]
    assert k_text in page.locator("body").inner_text()
    screen = page.locator("tr", has_text="(mobile,").locator("td").nth(2).inner_text()
    assert screen == screen_row  # the site's own switch, read from the live configuration
    # The page's style applies (its CSP allows that one sheet, by hash) and nothing was refused.
    assert page.evaluate("getComputedStyle(document.querySelector('table')).borderCollapse") == "collapse"
    assert problems == []
    context.close()
