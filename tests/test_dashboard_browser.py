"""The dashboard in a real browser (Debian's Chromium driven by Playwright) against the real server.

Two weeks of generated traffic are written into the store and rolled up (today stays open, from raw events),
then a few visits carrying script-injection payloads in every field are sent through the ingest endpoint.
The owner logs in and the tests check what the page shows against the Stats API's answers; a Content-Security-
Policy violation listener and a dialog listener stay silent on every view.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from analytics.store import SQLiteStore
from bench.traffic import Profile, generate
from tests.test_server import ANALYTICS, Server, run_cli, start_server

CHROMIUM = "/usr/bin/chromium"
SITE = "shop.example"
EMAIL, PASSWORD = "owner@example.com", "correct horse battery staple"
CHROME_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
PAYLOADS = {
    "path": "/<img src=x onerror=alert(1)>",
    "utm": "<script>alert(3)</script>",
    "event": "<svg onload=alert(4)>",
    "key": "<img src=y onerror=alert(5)>",
    "value": '"><script>alert(6)</script>',
}
WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


COUNTRIES = [
    "FR",
    "US",
    "DE",
    "GB",
    "ES",
    "IT",
    "BE",
    "CH",
    "CA",
    "NL",
    "JP",
    "BR",
    "IN",
    "PL",
    "SE",
    "PT",
    "AU",
    "AT",
    "IE",
    "DK",
    "NO",
    "FI",
    "MA",
    "SN",
    "CI",
    "TN",
    "MX",
    "AR",
    "KR",
    "CN",
    "ZA",
    "NG",
]


def real_country(code: str) -> str:
    """The generator's country codes ("AA", "AB"...) as real ones, so that the map shows them."""
    return COUNTRIES[((ord(code[0]) - 65) * 26 + ord(code[1]) - 65) % len(COUNTRIES)] if len(code) == 2 else code


def populate(workdir: Path, env: dict[str, str], days: int = 14, visits_per_day: int = 120) -> None:
    """A site with `days` days of generated traffic up to now, rolled up, and an owner account."""
    added = run_cli(workdir, env, "site", "add", SITE, "--timezone", "Europe/Paris", "--allow-prop", PAYLOADS["key"])
    assert added.returncode == 0, added.stderr

    async def write() -> None:
        store = SQLiteStore(workdir / "data" / "analytics.db")
        await store.open()
        await store.migrate()
        site = next(s for s in await store.list_sites() if s.domain == SITE)
        now = datetime.now(UTC)
        first = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
        now_ms = int(now.timestamp() * 1000) - 60_000
        generated = generate(site.id, int(first.timestamp() * 1000), days, Profile(visits_per_day))
        events = [e._replace(country=real_country(e.country)) for e in generated if e.ts < now_ms]
        await store.insert_events(events)
        await store.close()

    asyncio.run(write())
    assert run_cli(workdir, env, "rollup").returncode == 0
    added = subprocess.run(
        [*ANALYTICS, "user", "add", EMAIL, "--password-stdin"],
        cwd=workdir,
        env=env,
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr


def send_payloads(server: Server) -> None:
    """Visits whose every visitor-supplied field is a script injection attempt."""
    headers = {"User-Agent": CHROME_UA, "X-Forwarded-For": "81.2.69.160", "Content-Type": "application/json"}
    url = f"https://{SITE}{PAYLOADS['path']}?utm_source={PAYLOADS['utm']}&utm_campaign={PAYLOADS['utm']}"
    bodies = [
        {"name": "pageview", "url": url, "domain": SITE, "referrer": "https://evil.example/<script>alert(2)</script>"},
        {"name": PAYLOADS["event"], "url": url, "domain": SITE, "props": {PAYLOADS["key"]: PAYLOADS["value"]}},
    ]
    for body in bodies:
        response = httpx.post(f"{server.url}/api/event", content=json.dumps(body), headers=headers)
        assert response.status_code == 202, response.text


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    workdir = tmp_path_factory.mktemp("dashboard")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("ANALYTICS_")}
    env["PYTHONPATH"] = str(Path(__file__).parent.parent)
    env["ANALYTICS_INGEST_BATCH_INTERVAL_MS"] = "1"
    env["ANALYTICS_PRIVACY_MIN_VISITORS"] = "1"  # single test visits are checked one by one (k: test_anonymity.py)
    env["ANALYTICS_PRIVACY_PROFILE"] = "standard"  # custom events and properties carry the payloads
    populate(workdir, env)
    created = run_cli(workdir, env, "apikey", "create", "--site", SITE)
    assert created.returncode == 0
    server = start_server(workdir, env)
    send_payloads(server)
    stack = (server, created.stdout.strip())
    deadline = time.monotonic() + 60
    while PAYLOADS["event"] not in [r["dimensions"][0] for r in goals_today(stack)]:
        assert time.monotonic() < deadline, "the payload events never showed"
        time.sleep(0.5)
    yield stack
    server.process.terminate()
    server.process.wait(timeout=30)


def goals_today(stack: tuple[Server, str]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = api(stack, date_range="day", metrics=["visitors"], dimensions=["event:goal"])[
        "results"
    ]
    return results


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
        )
        yield browser
        browser.close()


SETTLED = (  # a function, not a string: the page's CSP forbids eval
    "() => document.querySelectorAll('.panel.loading').length === 0 && "
    "(document.getElementById('overview')?.hidden || document.querySelectorAll('.tile .value').length === 6)"
)


def log_in(page: Page, base_url: str, email: str = EMAIL, password: str = PASSWORD) -> None:
    """Through the login form, as a person would; ends on the list of sites."""
    page.goto(f"{base_url}/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")


class Owner:
    """A browser context logged in as the owner, with listeners for CSP violations, dialogs and page errors."""

    def __init__(self, server: Server, context: BrowserContext) -> None:
        self.server, self.context = server, context
        context.add_init_script(WATCH)
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page: Page = context.new_page()
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def login(self) -> None:
        log_in(self.page, self.server.url)

    def open(self, path: str) -> None:
        self.page.goto(f"{self.server.url}{path}")
        self.settled()

    def settled(self) -> None:
        """Tiles drawn and no panel loading."""
        self.page.wait_for_function(SETTLED)

    def silent(self) -> None:
        assert self.page.evaluate("window.__violations") == []
        assert self.dialogs == [] and self.errors == []


@pytest.fixture
def owner(stack: tuple[Server, str], browser: Browser) -> Iterator[Owner]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    owner = Owner(stack[0], context)
    owner.login()
    yield owner
    context.close()


def api(stack: tuple[Server, str], **body: Any) -> Any:
    server, key = stack
    response = httpx.post(
        f"{server.url}/api/v2/query",
        json={"site_id": SITE, "date_range": "30d", **body},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def shown(metric: str, value: float) -> str:
    """A figure as the dashboard prints it."""
    if metric == "views_per_visit":
        return f"{value:.2f}"
    if metric == "bounce_rate":
        return f"{value}%"
    if metric == "visit_duration":
        s = round(value)
        return f"{s}s" if s < 60 else f"{s // 60}m {s % 60}s"
    return f"{value:,}"


METRICS = ["visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration"]


def chips(page: Page) -> str:
    return " ".join(page.inner_text("#chips").split())


def tiles(page: Page) -> list[str]:
    return [t.inner_text() for t in page.query_selector_all(".tile .value")]


def panel_rows(page: Page, panel: str) -> list[tuple[str, str]]:
    rows = page.query_selector_all(f'[data-panel="{panel}"] .rows .row')
    return [(r.query_selector(".name").inner_text(), r.query_selector(".count").inner_text()) for r in rows]


def test_tiles_chart_and_panels_show_the_apis_figures(owner: Owner, stack: tuple[Server, str]) -> None:
    sites = owner.page
    sites.wait_for_selector(f'[data-site="{SITE}"] svg')  # the 24-hour sparkline
    owner.open(f"/sites/{SITE}")
    expected = api(stack, metrics=METRICS)["results"][0]["metrics"]
    assert tiles(owner.page) == [shown(m, v) for m, v in zip(METRICS, expected, strict=True)]
    assert expected[0] > 1000  # two weeks of generated traffic, rolled up, plus today from raw events
    days = owner.page.query_selector_all("#chart path.current")
    assert len(days) == 1
    sources = api(stack, metrics=["visitors"], dimensions=["visit:source"], pagination={"limit": 9})["results"]
    assert panel_rows(owner.page, "sources") == [
        (r["dimensions"][0] or "Direct / none", f"{r['metrics'][0]:,}") for r in sources
    ]
    visited = owner.page.query_selector_all('[data-panel="locations"] .world path.visited')
    assert len(visited) == len(COUNTRIES)
    owner.page.click('[data-panel="devices"] button[data-dim="visit:os"]')
    owner.settled()
    systems = api(stack, metrics=["visitors"], dimensions=["visit:os"], pagination={"limit": 9})["results"]
    assert [name for name, _ in panel_rows(owner.page, "devices")] == [r["dimensions"][0] for r in systems]
    owner.silent()


def test_a_filter_a_range_and_the_back_button(owner: Owner, stack: tuple[Server, str]) -> None:
    owner.open(f"/sites/{SITE}")
    google = owner.page.locator('[data-panel="sources"] .row', has_text="Google")
    google.click()
    owner.page.wait_for_url(re.compile(r"filter=visit%3Asource&value=Google"))
    owner.settled()
    assert "Source is Google" in chips(owner.page)
    filtered = api(stack, metrics=METRICS, filters=[["is", "visit:source", ["Google"]]])["results"][0]["metrics"]
    assert tiles(owner.page) == [shown(m, v) for m, v in zip(METRICS, filtered, strict=True)]
    pages = api(
        stack,
        metrics=["visitors"],
        dimensions=["event:page"],
        filters=[["is", "visit:source", ["Google"]]],
        pagination={"limit": 9},
    )["results"]
    assert [name for name, _ in panel_rows(owner.page, "pages")] == [r["dimensions"][0] for r in pages]
    owner.page.keyboard.press("w")  # last 7 days
    owner.page.wait_for_url(re.compile(r"range=7d"))
    owner.settled()
    week = api(stack, date_range="7d", metrics=METRICS, filters=[["is", "visit:source", ["Google"]]])
    assert tiles(owner.page) == [shown(m, v) for m, v in zip(METRICS, week["results"][0]["metrics"], strict=True)]
    owner.page.click("#chips .remove")
    owner.page.wait_for_url(re.compile(r"^(?!.*filter=).*range=7d"))
    owner.settled()
    assert chips(owner.page) == ""
    owner.page.go_back()  # the filter comes back with the URL
    owner.page.wait_for_url(re.compile(r"filter=visit%3Asource"))
    owner.settled()
    assert "Source is Google" in chips(owner.page)
    owner.page.check("#compare")
    owner.page.wait_for_selector("#chart path.previous")
    assert "compare=1" in owner.page.url
    owner.silent()


def test_payloads_from_visitors_stay_text_on_every_view(owner: Owner, stack: tuple[Server, str]) -> None:
    owner.open(f"/sites/{SITE}?range=day")
    for panel in ("sources", "pages", "locations", "devices", "goals"):
        for tab in owner.page.query_selector_all(f'[data-panel="{panel}"] .tabs button'):
            tab.click()
            owner.settled()
    owner.page.click('[data-panel="sources"] button[data-dim="visit:utm_source"]')
    owner.settled()
    assert PAYLOADS["utm"] in [name for name, _ in panel_rows(owner.page, "sources")]
    owner.page.click('[data-panel="goals"] button[data-dim="event:goal"]')
    owner.settled()
    assert PAYLOADS["event"] in [name for name, _ in panel_rows(owner.page, "goals")]
    key_tab = owner.page.locator('[data-panel="goals"] .tabs button', has_text=PAYLOADS["key"])
    key_tab.click()
    owner.settled()
    assert PAYLOADS["value"] in [name for name, _ in panel_rows(owner.page, "goals")]
    owner.page.click('[data-panel="pages"] button[data-dim="event:page"]')
    owner.settled()
    owner.page.click('[data-panel="pages"] .more')
    owner.page.wait_for_selector("#details tbody button")
    owner.page.fill("#search", "onerror")
    assert PAYLOADS["path"] in owner.page.inner_text("#details tbody")
    owner.page.click("#details .close")
    owner.page.locator('[data-panel="sources"] .row', has_text=PAYLOADS["utm"]).click()  # filter by it
    owner.settled()
    assert PAYLOADS["utm"] in chips(owner.page)
    owner.open(f"/sites/{SITE}?range=realtime")
    for path in ("/", f"/sites/{SITE}/settings"):
        owner.page.goto(f"{owner.server.url}{path}")
        owner.page.wait_for_load_state("networkidle")
    assert owner.page.query_selector("img[src=x], img[src=y]") is None
    owner.silent()


def test_a_shared_link_opens_logged_out_until_revoked(
    owner: Owner, stack: tuple[Server, str], browser: Browser
) -> None:
    owner.page.goto(f"{owner.server.url}/sites/{SITE}/settings")
    owner.page.fill("#link-name", "Marketing")
    owner.page.click("text=Create a shared link")
    link = owner.page.inner_text("#secret").strip()
    assert re.fullmatch(rf"{re.escape(owner.server.url)}/share/[A-Za-z0-9_-]{{43}}", link)
    outsider = Owner(owner.server, browser.new_context())
    outsider.page.goto(link)
    outsider.settled()
    expected = api(stack, metrics=METRICS)["results"][0]["metrics"]
    assert tiles(outsider.page) == [shown(m, v) for m, v in zip(METRICS, expected, strict=True)]
    assert outsider.page.query_selector("form[action='/logout']") is None  # not logged in
    outsider.silent()
    owner.page.goto(f"{owner.server.url}/sites/{SITE}/settings")
    owner.page.locator("tr", has_text="Marketing").locator("text=Revoke").click()
    owner.page.wait_for_url(re.compile(r"saved=link-revoke"))
    outsider.page.goto(link)
    assert "Link not available" in outsider.page.inner_text("h1")
    outsider.context.close()


def test_a_custom_range_and_the_realtime_view(owner: Owner, stack: tuple[Server, str]) -> None:
    owner.open(f"/sites/{SITE}")
    owner.page.select_option("#range", "custom")
    today = owner.page.get_attribute("#dash", "data-today")
    first = (datetime.fromisoformat(today) - timedelta(days=9)).date().isoformat()  # type: ignore[arg-type]
    last = (datetime.fromisoformat(today) - timedelta(days=3)).date().isoformat()  # type: ignore[arg-type]
    owner.page.fill("#from", first)
    owner.page.fill("#to", last)
    owner.page.click("#apply")
    owner.page.wait_for_url(re.compile(rf"range=custom&from={first}&to={last}"))
    owner.settled()
    expected = api(stack, date_range=[first, last], metrics=METRICS)["results"][0]["metrics"]
    assert tiles(owner.page) == [shown(m, v) for m, v in zip(METRICS, expected, strict=True)]
    points = api(stack, date_range=[first, last], metrics=["visitors"], dimensions=["time:day"])["results"]
    assert len(points) == 7 and owner.page.get_attribute("#chart", "aria-label") == "Unique visitors by day"
    owner.page.keyboard.press("r")
    owner.page.wait_for_url(re.compile(r"range=realtime"))
    owner.settled()
    assert owner.page.is_hidden("#tiles") and owner.page.is_visible("#realtime-view")
    server, key = stack
    now = httpx.get(
        f"{server.url}/api/v1/stats/realtime/visitors",
        params={"site_id": SITE},
        headers={"Authorization": f"Bearer {key}"},
    ).json()
    owner.page.wait_for_function(f"() => document.getElementById('rt-count').textContent === '{now:,}'")
    for _ in range(3):  # a visit may leave the 5-minute window between the page's question and ours: ask again
        shown_sources = [name for name, _ in panel_rows(owner.page, "sources")]
        sources = api(stack, date_range="realtime", metrics=["visitors"], dimensions=["visit:source"])["results"]
        if shown_sources == [r["dimensions"][0] or "Direct / none" for r in sources[:9]]:
            break
        owner.page.reload()
        owner.settled()
    else:
        raise AssertionError(f"the realtime sources {shown_sources} are not the API's {sources}")
    owner.silent()


UNNAMED = """() => [...document.querySelectorAll('button, input, select, textarea, a[href]')]
  .filter((e) => e.type !== 'hidden' && e.getClientRects().length > 0)
  .filter((e) => !((e.getAttribute('aria-label') || '').trim() || (e.labels && e.labels.length)
    || (e.textContent || '').trim() || e.getAttribute('title') || e.querySelector('img[alt]:not([alt=""])')))
  .map((e) => e.outerHTML.slice(0, 100))"""

# (text, background) pairs of the palette, each used for text somewhere in the dashboard.
PAIRS = [
    ("--text", "--card"),
    ("--text", "--bg"),
    ("--muted", "--card"),
    ("--muted", "--bg"),
    ("--accent", "--card"),
    ("--up", "--card"),
    ("--down", "--card"),
    ("--text", "--bar"),
]


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours."""

    def luminance(colour: str) -> float:
        channels = [int(colour.strip().lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
        r, g, bl = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * bl

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_controls_are_named_focus_is_visible_and_text_is_legible(
    stack: tuple[Server, str], browser: Browser, scheme: str
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme=scheme)
    owner = Owner(stack[0], context)
    owner.login()
    for path in ("/", f"/sites/{SITE}", f"/sites/{SITE}/settings"):
        owner.page.goto(f"{owner.server.url}{path}")
        if path.endswith(SITE):
            owner.settled()
        assert owner.page.evaluate(UNNAMED) == [], path  # every control has an accessible name
    owner.open(f"/sites/{SITE}")
    for _ in range(6):  # the keyboard reaches the controls, and the focused one is outlined
        owner.page.keyboard.press("Tab")
        style = owner.page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]; }"
        )
        assert style[0] != "none" and style[1] != "0px", style
    colours = owner.page.evaluate(
        "(names) => names.map((n) => getComputedStyle(document.documentElement).getPropertyValue(n))",
        sorted({name for pair in PAIRS for name in pair}),
    )
    palette = dict(zip(sorted({name for pair in PAIRS for name in pair}), colours, strict=True))
    for text, background in PAIRS:
        ratio = contrast(palette[text], palette[background])
        assert ratio >= 4.5, f"{scheme}: {text} on {background} is {ratio:.2f}:1"
    owner.silent()
    context.close()
