"""The first run in a real browser (Debian's Chromium, driven by Playwright) against the real server: a server
started with no account, its setup code read from its log, and a person who opens the address, creates the
first administrator, adds a site and finds its snippet. The details of the setup form are tested over HTTP in
tests/test_setup.py."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.test_dashboard_browser import WATCH, browser
from tests.test_server import Server, start_server
from tests.test_setup import CODE

__all__ = ["browser"]  # the module-scoped Chromium of the dashboard's browser tests

PASSWORD = "a long enough password"


@pytest.fixture
def new_server(tmp_path: Path) -> Iterator[Server]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    env["PYTHONPATH"] = str(Path(__file__).parent.parent)
    server = start_server(tmp_path, env)
    yield server
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(WATCH)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    assert errors == []
    context.close()


def fill_setup(page: Page, code: str) -> None:
    page.fill("#code", code)
    page.fill("#email", "owner@example.com")
    page.fill("#password", PASSWORD)
    page.fill("#repeat", PASSWORD)
    page.click("button[type=submit]")


def test_a_person_creates_the_first_administrator_with_the_code_from_the_log(new_server: Server, page: Page) -> None:
    found = CODE.search(new_server.log.decode())
    assert found, new_server.log.decode()
    url = new_server.url

    page.goto(f"{url}/")
    page.wait_for_url(f"{url}/setup")
    assert page.inner_text("h1") == "Create the first administrator"
    assert page.evaluate("window.__violations") == []

    fill_setup(page, "AAAA-AAAA-AAAA-AAAA")
    assert "Wrong setup code" in page.inner_text("[role=alert]")
    fill_setup(page, found.group(1).lower())  # as typed, in lower case
    page.wait_for_url(f"{url}/")
    assert page.inner_text("h1") == "Your sites" and "owner@example.com" in page.inner_text("header")

    page.fill("#domain", "example.com")
    page.click("text=Add site")
    page.wait_for_url(f"{url}/sites/example.com/settings?saved=added")
    snippet = page.input_value("#snippet")
    assert 'data-domain="example.com"' in snippet and f"{url}/tracker." in snippet
    assert page.evaluate("window.__violations") == []

    page.goto(f"{url}/setup")  # the page is gone: to the login, which sends a logged-in person to their sites
    page.wait_for_url(f"{url}/")
    page.click("text=Log out")
    page.wait_for_url(f"{url}/login")
    page.goto(f"{url}/setup")
    page.wait_for_url(f"{url}/login")
    assert page.inner_text("h1") == "Log in" and "create the first administrator" not in page.content()
    new_server.process.send_signal(signal.SIGTERM)
    assert new_server.process.wait(timeout=30) == 0
    assert b"the first administrator was created on the setup page" in new_server.log
