"""tracker.js in a real browser (Debian's Chromium driven by Playwright) against the real server.

A small test site is served next to `analytics serve`; Chromium maps *.test names to 127.0.0.1, so the site is
http://site.test:<port> and the tracker comes from http://stats.test:<port> (cross-origin, like production).
Every assertion is on what the server stored.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.test_server import Server, free_port, run_cli, start_server

CHROMIUM = "/usr/bin/chromium"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
QUEUE_STUB = (
    "<script>window.analytics = window.analytics || function () "
    "{ (window.analytics.q = window.analytics.q || []).push(arguments) }</script>"
)


def page_html(attributes: str = "", body: str = "", head: str = "") -> str:
    return (
        f"<!doctype html><html><head><title>t</title>{head}"
        f'<script defer data-domain="site.test" {attributes} src="http://stats.test:{{stats}}/tracker.js"></script>'
        f"</head><body>{body}</body></html>"
    )


PAGES = {
    "/": page_html(),
    "/control": page_html(),
    "/app/a": page_html(),
    "/hash.html": page_html("data-hash"),
    "/early": page_html(head=QUEUE_STUB + "<script>analytics('Early', {props: {when: 'before load'}})</script>"),
    "/links": page_html(
        "data-outbound data-downloads",
        '<a id="out" href="http://elsewhere.test:{site}/landing">out</a>'
        '<a id="pdf" href="/files/report.pdf" download>pdf</a>'
        '<a id="mail" href="mailto:someone@example.com">mail</a>'
        '<button id="buy" data-analytics-event="Buy" data-analytics-props=\'{"plan":"pro"}\'>buy</button>'
        '<form id="form" data-analytics-event="Contact" action="/control"><button id="send">send</button></form>',
    ),
    "/missing": page_html("data-404"),
    "/admin/users": page_html('data-exclude="/admin/**"'),
    "/signals-ignored": page_html('data-respect-signals="false"'),
    "/custom-api": page_html('data-api="http://collect.test:{stats}/api/event"'),
}


class SiteHandler(BaseHTTPRequestHandler):
    pages = PAGES
    stats_port = 0
    site_port = 0

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        html = self.pages.get(path)
        if html is None:
            self.send_response(404 if not path.startswith("/files/") else 200)
            self.end_headers()
            return
        body = html.replace("{stats}", str(self.stats_port)).replace("{site}", str(self.site_port)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serving(workdir: Path, pages: dict[str, str]) -> Iterator[tuple[Server, int]]:
    """The analytics server (site.test registered) and the test site serving these pages: ({stats} and {site}
    in a page are the two ports)."""
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("ANALYTICS_")}
    env["PYTHONPATH"] = str(Path(__file__).parent.parent)
    env["ANALYTICS_INGEST_BATCH_INTERVAL_MS"] = "1"
    env["ANALYTICS_PRIVACY_PROFILE"] = "standard"  # every field the tracker sends is stored and checked
    env["ANALYTICS_PRIVACY_MIN_VISITORS"] = "1"  # single test visits are checked one by one (k: test_anonymity.py)
    added = run_cli(workdir, env, "site", "add", "site.test", *(f"--allow-prop={k}" for k in ("plan", "seats", "when")))
    assert added.returncode == 0, added.stderr
    server = start_server(workdir, env)
    site_port = free_port()
    stats_port = int(server.url.rsplit(":", 1)[1])
    handler = type("Handler", (SiteHandler,), {"pages": pages, "stats_port": stats_port, "site_port": site_port})
    site = ThreadingHTTPServer(("127.0.0.1", site_port), handler)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, site_port
    finally:
        site.shutdown()
        site.server_close()
        server.process.terminate()
        server.process.wait(timeout=30)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, int]]:
    with serving(tmp_path_factory.mktemp("browser"), PAGES) as stack:
        yield stack


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--host-resolver-rules=MAP *.test 127.0.0.1",
                # Without this, navigator.webdriver is true and the tracker (rightly) stays silent.
                "--disable-blink-features=AutomationControlled",
            ],
        )
        yield browser
        browser.close()


class Visit:
    """One browser context on the test site, and the events the server stored meanwhile."""

    def __init__(self, server: Server, site_port: int, context: BrowserContext) -> None:
        self.server = server
        self.base = f"http://site.test:{site_port}"
        self.context = context
        self.page: Page = context.new_page()
        self.start = self.count()

    def count(self) -> int:
        with sqlite3.connect(self.server.workdir / "data" / "analytics.db") as db:
            return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def events(self) -> list[dict[str, object]]:
        with sqlite3.connect(self.server.workdir / "data" / "analytics.db") as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT * FROM events ORDER BY ts, rowid").fetchall()
        return [dict(r) for r in rows[self.start :]]

    def wait_for(self, n: int, timeout: float = 10.0) -> list[dict[str, object]]:
        """The events stored since this visit began, once there are n of them (the tracker's beacons are
        asynchronous, so the server is polled; a 202 is only sent after the commit)."""
        deadline = time.monotonic() + timeout
        while len(found := self.events()) < n:
            assert time.monotonic() < deadline, f"expected {n} events, the server stored {found}"
            time.sleep(0.05)
        return found

    def goto(self, path: str) -> None:
        self.page.goto(self.base + path)
        self.page.wait_for_function("typeof window.analytics === 'function'")

    def storage(self) -> list[str]:
        return self.page.evaluate(
            "[document.cookie, JSON.stringify(Object.entries(localStorage)), "
            "JSON.stringify(Object.entries(sessionStorage))]"
        )

    def nothing_more_than(self, expected: int) -> list[dict[str, object]]:
        """Proves silence: a control pageview from a clean context must arrive, and nothing else."""
        control = self.context.browser.new_context(user_agent=USER_AGENT)  # type: ignore[union-attr]
        control.new_page().goto(self.base + "/control")
        found = self.wait_for(expected + 1)
        control.close()
        assert [e["pathname"] for e in found][-1] == "/control"
        return found[:-1]


@pytest.fixture
def visit(stack: tuple[Server, int], browser: Browser) -> Iterator[Visit]:
    context = browser.new_context(user_agent=USER_AGENT)
    yield Visit(stack[0], stack[1], context)
    context.close()


def fresh(visit: Visit, user_agent: str = USER_AGENT) -> Visit:
    context = visit.context.browser.new_context(user_agent=user_agent)  # type: ignore[union-attr]
    return Visit(visit.server, int(visit.base.rsplit(":", 1)[1]), context)


def test_page_load_is_a_pageview_and_nothing_is_stored_on_the_device(visit: Visit) -> None:
    visit.page.goto(visit.base + "/")
    before = ["", "[]", "[]"]
    [event] = visit.wait_for(1)
    assert (event["name"], event["hostname"], event["pathname"]) == ("pageview", "site.test", "/")
    assert event["browser"] == "Chrome" and event["device"] == "desktop" and event["screen"] != ""
    assert visit.storage() == before
    assert visit.context.cookies() == []


def test_spa_navigation_counts_each_new_path_once(visit: Visit) -> None:
    visit.goto("/app/a")
    visit.page.evaluate("history.pushState({}, '', '/app/b')")
    visit.page.evaluate("history.pushState({}, '', '/app/b')")  # same path: no second pageview
    visit.page.evaluate("history.replaceState({}, '', '/app/b')")
    visit.page.evaluate("history.replaceState({}, '', '/app/c')")
    visit.page.evaluate("history.back()")
    events = visit.wait_for(4)
    assert [e["pathname"] for e in events] == ["/app/a", "/app/b", "/app/c", "/app/b"]
    assert visit.nothing_more_than(4) == events


def test_hash_routing_counts_fragments_as_pages(visit: Visit) -> None:
    visit.goto("/hash.html")
    visit.page.evaluate("location.hash = '#/settings'")
    events = visit.wait_for(2)
    assert [e["pathname"] for e in events] == ["/hash.html", "/hash.html#/settings"]


def test_custom_events_with_props_and_calls_queued_before_load(visit: Visit) -> None:
    visit.goto("/early")
    visit.page.evaluate("analytics('Signup', {props: {plan: 'pro', seats: 3}, revenue: {amount: 49, currency: 'EUR'}})")
    events = visit.wait_for(3)
    assert [e["name"] for e in events] == ["pageview", "Early", "Signup"]
    assert json.loads(str(events[1]["props"])) == {"when": "before load"}
    assert json.loads(str(events[2]["props"])) == {"plan": "pro", "seats": "3"}
    assert (events[2]["revenue_micros"], events[2]["revenue_currency"]) == (49_000_000, "EUR")
    assert visit.storage() == ["", "[]", "[]"]  # no cookie, nothing in localStorage or sessionStorage
    assert visit.context.cookies() == []


def test_callback_runs_after_sending(visit: Visit) -> None:
    visit.goto("/")
    assert visit.page.evaluate("new Promise((done) => analytics('Ping', {callback: () => done('called')}))") == "called"
    assert [e["name"] for e in visit.wait_for(2)] == ["pageview", "Ping"]


def test_outbound_download_and_tagged_clicks(visit: Visit) -> None:
    visit.goto("/links")
    visit.page.click("#buy")
    visit.page.click("#mail")  # not http(s): not an outbound click
    visit.page.click("#pdf")
    visit.page.click("#out")
    events = visit.wait_for(4)
    names = [e["name"] for e in events]
    assert names == ["pageview", "Buy", "File Download", "Outbound Link: Click"]
    assert json.loads(str(events[1]["props"])) == {"plan": "pro"}
    assert json.loads(str(events[2]["props"]))["url"].endswith("/files/report.pdf")
    assert json.loads(str(events[3]["props"]))["url"].startswith("http://elsewhere.test:")


def test_tagged_form_counts_on_submit(visit: Visit) -> None:
    visit.goto("/links")
    visit.page.click("#send")
    events = visit.wait_for(3)  # pageview, Contact, and the pageview of the page the form leads to
    assert [e["name"] for e in events][:2] == ["pageview", "Contact"]


def test_404_pages_send_a_404_event(visit: Visit) -> None:
    visit.goto("/missing")
    events = visit.wait_for(2)
    assert [(e["name"], e["pathname"]) for e in events] == [("pageview", "/missing"), ("404", "/missing")]


def test_excluded_pages_are_not_counted(visit: Visit) -> None:
    visit.goto("/admin/users")
    assert visit.nothing_more_than(0) == []


def test_opt_out_flag_silences_the_tracker(visit: Visit) -> None:
    visit.page.goto(visit.base + "/control")
    visit.wait_for(1)
    visit.page.evaluate("localStorage.analytics_ignore = 'true'")
    visit.goto("/app/a")
    visit.page.evaluate("analytics('Signup')")
    assert [e["pathname"] for e in visit.nothing_more_than(1)] == ["/control"]
    visit.page.evaluate("localStorage.removeItem('analytics_ignore')")
    visit.goto("/app/a")
    assert [e["pathname"] for e in visit.wait_for(3)][-1] == "/app/a"


def test_opt_out_flag_set_or_cleared_on_an_open_page_applies_to_its_next_event(visit: Visit) -> None:
    """The flag is read before every event: set by the opt-out switch (or another tab) while a single-page app
    stays open, it silences the tracker's next navigation, click and call; cleared, the next one counts again."""
    visit.goto("/links")
    visit.wait_for(1)
    visit.page.evaluate("localStorage.analytics_ignore = 'true'")
    visit.page.evaluate("history.pushState({}, '', '/app/b')")
    visit.page.evaluate("analytics('Signup')")
    visit.page.click("#buy")
    assert [e["pathname"] for e in visit.nothing_more_than(1)] == ["/links"]
    visit.page.evaluate("localStorage.removeItem('analytics_ignore')")
    visit.page.evaluate("history.pushState({}, '', '/app/c')")
    assert [e["pathname"] for e in visit.wait_for(3)][-1] == "/app/c"


GPC = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})"


def test_global_privacy_control_is_respected_unless_the_owner_opts_out(visit: Visit) -> None:
    gpc = fresh(visit)
    gpc.context.add_init_script(GPC)
    gpc.goto("/")
    gpc.page.evaluate("analytics('Signup')")
    assert gpc.nothing_more_than(0) == []
    gpc.goto("/signals-ignored")
    assert [e["pathname"] for e in gpc.wait_for(2)][-1] == "/signals-ignored"
    gpc.context.close()


def test_do_not_track_is_respected(visit: Visit) -> None:
    dnt = fresh(visit)
    dnt.context.add_init_script("Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})")
    dnt.goto("/")
    assert dnt.nothing_more_than(0) == []
    dnt.context.close()


def test_a_prerendered_page_counts_only_once_shown(visit: Visit) -> None:
    # Chromium's prerendering API, simulated: document.prerendering is true until 'prerenderingchange'.
    visit.context.add_init_script(
        "Object.defineProperty(Document.prototype, 'prerendering', {get: () => window.__prerendering ?? true})"
    )
    visit.goto("/app/a")
    assert visit.nothing_more_than(0) == []
    visit.page.evaluate("window.__prerendering = false; document.dispatchEvent(new Event('prerenderingchange'))")
    assert [e["pathname"] for e in visit.wait_for(2)] == ["/control", "/app/a"]


def test_data_api_sends_elsewhere(visit: Visit) -> None:
    requests: list[str] = []
    visit.page.on("request", lambda request: requests.append(request.url))
    visit.goto("/custom-api")
    assert visit.wait_for(1)[0]["pathname"] == "/custom-api"
    assert any(url.startswith("http://collect.test:") and url.endswith("/api/event") for url in requests)


def test_nothing_is_sent_from_localhost(visit: Visit) -> None:
    requests: list[str] = []
    visit.page.on("request", lambda request: requests.append(request.url))
    visit.page.goto(visit.base.replace("site.test", "127.0.0.1") + "/")
    visit.page.wait_for_function("typeof window.analytics === 'function'")
    visit.page.evaluate("analytics('Signup')")
    assert visit.nothing_more_than(0) == []
    assert not [url for url in requests if "/api/event" in url]


def test_automated_browsers_are_silent(visit: Visit) -> None:
    for script in ("Object.defineProperty(Navigator.prototype, 'webdriver', {get: () => true})", ""):
        bot = fresh(visit, user_agent=USER_AGENT.replace("Chrome/", "HeadlessChrome/")) if not script else fresh(visit)
        if script:
            bot.context.add_init_script(script)
        bot.goto("/")
        assert bot.nothing_more_than(0) == []
        bot.context.close()
