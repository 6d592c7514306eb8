"""optout.js, the opt-out switch, in Chromium on a test site, with tracker.js and the real server
(tests/test_browser.py has the set-up: site.test is the site, stats.test the server, cross-origin as in
production). Keyboard alone, both languages, the status announced, reversible; what reaches the server is read
from its database, what leaves the browser from Playwright's record of its requests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests import test_browser
from tests.test_browser import USER_AGENT, Visit, serving
from tests.test_server import Server

browser = test_browser.browser  # the same Chromium set-up, launched for this module
visit = test_browser.visit  # a fresh browser context, on this module's stack

OPTOUT = '<script src="http://stats.test:{stats}/optout.js"{attributes}></script>'
TRACKER = '<script defer data-domain="site.test" data-outbound {attributes}src="http://stats.test:{stats}/tracker.js">'


def page(lang: str = "en", widget: str = "", tracker: str | None = "", head: str = "", body: str = "") -> str:
    """A privacy page: a link before the switch (so that Tab has somewhere else to go first), the switch where
    its tag is, then a tagged button and an outbound link. `tracker=None`: the switch alone."""
    tracker_tag = "" if tracker is None else TRACKER.replace("{attributes}", tracker) + "</script>"
    return (
        f"<!doctype html><html{f' lang={lang!r}' if lang else ''}><head><title>Privacy</title>{head}{tracker_tag}"
        f'</head><body><a id="home" href="/privacy">Home</a><h1>Privacy</h1>{body}'
        + OPTOUT.replace("{attributes}", widget)
        + '<button id="buy" data-analytics-event="Buy">buy</button>'
        '<a id="out" href="http://elsewhere.test:{site}/landing">out</a></body></html>'
    )


PAGES = {
    "/control": page(),  # Visit.nothing_more_than's control pageview
    "/privacy": page(),
    "/fr/privacy": page(lang="fr-FR"),
    "/lang-attribute-fr": page(widget=' data-lang="fr"'),
    "/lang-attribute-en": page(lang="fr", widget=' data-lang="en"'),
    "/no-lang": page(lang=""),
    "/de": page(lang="de"),
    "/alone": page(tracker=None),
    "/signals-ignored": page(tracker='data-respect-signals="false" '),
    "/sandboxed": '<!doctype html><html lang="en"><body><iframe sandbox="allow-scripts" src="/alone"></iframe>',
    "/app/a": test_browser.page_html(),  # the tracker alone
    "/landing": "<!doctype html><title>Elsewhere</title>",  # where the outbound link leads (elsewhere.test)
    # The switch's tag in the <head>, rendered into an element further down; the page's own style applies.
    "/styled": (
        '<!doctype html><html lang="en"><head><style>body { font: 17px Georgia, serif } '
        ".analytics-optout-status { color: rgb(1, 2, 3) }</style>"
        + OPTOUT.replace("{attributes}", ' data-target="choice"')
        + '</head><body><p>Before</p><div id="choice"></div><p>After</p></body></html>'
    ),
    # A bilingual page: an English switch in the <head> into a target further down, a French one in the body.
    "/two": (
        '<!doctype html><html lang="en"><head>'
        + OPTOUT.replace("{attributes}", ' data-target="en-choice"')
        + '</head><body><div id="en-choice"></div>'
        + OPTOUT.replace("{attributes}", ' data-lang="fr"')
        + "</body></html>"
    ),
    # A host page with a strict policy: scripts from the server only, no style at all, no request anywhere.
    "/csp": (
        '<!doctype html><html lang="en"><head><meta http-equiv="Content-Security-Policy" content="default-src '
        "'none'; script-src http://stats.test:{stats}\"></head><body>"
        + OPTOUT.replace("{attributes}", "")
        + "</body></html>"
    ),
}

EN = {
    "label": "Count my visits in the statistics of this site",
    "on": "Your visits are counted.",
    "off": "Your visits are not counted: this browser keeps your choice for this site.",
}
FR = {
    "label": "Compter mes visites dans les statistiques de ce site",
    "on": "Vos visites sont comptées.",
    "off": "Vos visites ne sont pas comptées\u00a0: ce navigateur garde votre choix pour ce site.",
}
SIGNAL = (
    "Your visits are not counted: your browser asks sites not to track you (Global Privacy Control or Do Not Track)."
)
UNSAVED = (
    "This browser does not let this site save your choice (private browsing or blocked site data): this switch "
    "cannot change anything here."
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, int]]:
    with serving(tmp_path_factory.mktemp("optout"), PAGES) as stack:
        yield stack


def switch(page: Page, label: str = EN["label"]) -> Locator:
    return page.get_by_role("switch", name=label, exact=True)


def flag(page: Page) -> object:
    return page.evaluate("localStorage.getItem('analytics_ignore')")


def test_keyboard_alone_switches_counting_off_and_on_again(visit: Visit) -> None:
    visit.goto("/privacy")
    toggle, status = switch(visit.page), visit.page.get_by_role("status")
    expect(toggle).to_be_checked()
    expect(status).to_have_text(EN["on"])
    visit.page.keyboard.press("Tab")
    expect(visit.page.locator("#home")).to_be_focused()
    visit.page.keyboard.press("Tab")
    expect(toggle).to_be_focused()
    expect(toggle).to_have_accessible_description(EN["on"])
    visit.page.keyboard.press("Space")
    expect(toggle).not_to_be_checked()
    expect(status).to_have_text(EN["off"])
    assert flag(visit.page) == "true"
    visit.page.keyboard.press("Enter")
    expect(toggle).to_be_checked()
    expect(status).to_have_text(EN["on"])
    assert flag(visit.page) is None  # removed, not set to something else
    visit.page.keyboard.press("Enter")
    expect(toggle).not_to_be_checked()
    visit.page.reload()  # the choice is kept, and shown as kept
    expect(switch(visit.page)).not_to_be_checked()
    expect(visit.page.get_by_role("status")).to_have_text(EN["off"])


def test_after_switching_off_nothing_is_sent_and_switching_on_counts_the_next_pageview(visit: Visit) -> None:
    requests: list[str] = []
    visit.page.on("request", lambda request: requests.append(request.url))
    visit.goto("/privacy")
    assert [e["pathname"] for e in visit.wait_for(1)] == ["/privacy"]
    switch(visit.page).press("Space")
    expect(switch(visit.page)).not_to_be_checked()
    sent = len(requests)
    visit.page.evaluate("history.pushState({}, '', '/app/b')")  # a single-page app's navigation
    visit.page.evaluate("analytics('Signup', {props: {plan: 'pro'}})")  # a custom event
    visit.page.click("#buy")  # a tagged element
    visit.goto("/privacy")  # a page load
    visit.page.click("#out")  # an outbound link (data-outbound)
    visit.page.wait_for_url("http://elsewhere.test:*/landing")
    assert [e["pathname"] for e in visit.nothing_more_than(1)] == ["/privacy"]
    stats = [url for url in requests[sent:] if url.startswith("http://stats.test:")]
    assert stats and all(url.endswith(("/tracker.js", "/optout.js")) for url in stats), stats  # scripts only
    visit.goto("/privacy")
    switch(visit.page).press("Space")
    expect(switch(visit.page)).to_be_checked()
    visit.page.evaluate("history.pushState({}, '', '/app/c')")
    assert [e["pathname"] for e in visit.wait_for(3)] == ["/privacy", "/control", "/app/c"]
    assert visit.storage() == ["", "[]", "[]"] and visit.context.cookies() == []


def test_the_switch_sends_nothing_of_its_own_and_stores_only_the_flag(visit: Visit) -> None:
    requests: list[str] = []
    visit.page.on("request", lambda request: requests.append(request.url))
    visit.page.goto(visit.base + "/alone")
    switch(visit.page).click()
    switch(visit.page).click()
    switch(visit.page).click()
    expect(switch(visit.page)).not_to_be_checked()
    assert [url.split("/", 3)[-1] for url in requests] == ["alone", "optout.js"]
    assert visit.storage() == ["", '[["analytics_ignore","true"]]', "[]"] and visit.context.cookies() == []


@pytest.mark.parametrize(
    ("path", "locale", "texts", "lang"),
    [
        ("/privacy", "fr-FR", EN, "en"),  # <html lang="en">, whatever the browser's language
        ("/fr/privacy", "en-US", FR, "fr"),  # <html lang="fr-FR">
        ("/lang-attribute-fr", "en-US", FR, "fr"),  # data-lang before the page's language
        ("/lang-attribute-en", "fr-FR", EN, "en"),
        ("/no-lang", "fr-CA", FR, "fr"),  # no lang anywhere: the browser's
        ("/no-lang", "en-GB", EN, "en"),
        ("/de", "fr-FR", EN, "en"),  # a language it does not speak: English
    ],
)
def test_the_language_is_data_lang_then_the_page_then_the_browser_else_english(
    visit: Visit, path: str, locale: str, texts: dict[str, str], lang: str
) -> None:
    context = visit.context.browser.new_context(user_agent=USER_AGENT, locale=locale)  # type: ignore[union-attr]
    page = context.new_page()
    page.goto(visit.base + path)
    toggle, status = switch(page, texts["label"]), page.get_by_role("status")
    expect(status).to_have_text(texts["on"])
    assert page.locator(".analytics-optout").get_attribute("lang") == lang  # read aloud in its own language
    toggle.focus()
    page.keyboard.press("Space")
    expect(toggle).not_to_be_checked()
    expect(status).to_have_text(texts["off"])
    page.keyboard.press("Enter")
    expect(status).to_have_text(texts["on"])
    context.close()


def test_its_markup_is_the_one_the_readme_documents(visit: Visit) -> None:
    visit.page.goto(visit.base + "/privacy")
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    documented = "<div" + readme.split('```html\n<div class="analytics-optout"', 1)[1].split("```", 1)[0]
    documented = re.sub(r">\s+<", "><", documented.strip()).replace("<div", '<div class="analytics-optout"', 1)
    assert visit.page.locator(".analytics-optout").evaluate("(e) => e.outerHTML") == documented


def test_another_tab_changing_the_choice_updates_the_switch(visit: Visit) -> None:
    visit.page.goto(visit.base + "/alone")
    other = visit.context.new_page()
    other.goto(visit.base + "/alone")
    switch(other).click()
    expect(switch(visit.page)).not_to_be_checked()
    expect(visit.page.get_by_role("status")).to_have_text(EN["off"])


GPC = test_browser.GPC


def test_with_global_privacy_control_it_says_visits_are_not_counted_anyway(visit: Visit) -> None:
    visit.context.add_init_script(GPC)
    visit.page.goto(visit.base + "/privacy")
    expect(visit.page.get_by_role("status")).to_have_text(SIGNAL)
    expect(switch(visit.page)).to_be_checked()  # the flag is not set: it would count once the signal is off
    switch(visit.page).click()
    expect(visit.page.get_by_role("status")).to_have_text(SIGNAL)
    assert flag(visit.page) == "true"
    # Where the tracker counts such visitors (data-respect-signals="false"), the switch says what it does.
    switch(visit.page).click()
    visit.goto("/signals-ignored")
    expect(visit.page.get_by_role("status")).to_have_text(EN["on"])
    assert [e["pathname"] for e in visit.wait_for(1)] == ["/signals-ignored"]


def test_where_storage_is_unavailable_it_says_the_choice_cannot_be_saved(visit: Visit) -> None:
    # A sandboxed frame has an opaque origin: Chromium throws a SecurityError on any use of localStorage, as
    # where the visitor blocks the site's data.
    visit.page.goto(visit.base + "/sandboxed")
    frame = visit.page.frame_locator("iframe")
    expect(frame.get_by_role("status")).to_have_text(EN["on"] + " " + UNSAVED)
    toggle = frame.get_by_role("switch", name=EN["label"])
    expect(toggle).to_be_disabled()
    [child] = [f for f in visit.page.frames if f.url.endswith("/alone")]
    assert "SecurityError" in child.evaluate("(() => { try { localStorage.length } catch (e) { return e.name } })()")


def test_a_choice_the_browser_refuses_to_store_is_not_shown_as_saved(visit: Visit) -> None:
    visit.context.add_init_script(
        "Storage.prototype.setItem = function () { throw new DOMException('full', 'QuotaExceededError') }"
    )
    visit.goto("/privacy")
    switch(visit.page).press("Space")
    expect(visit.page.get_by_role("status")).to_have_text(EN["on"] + " " + UNSAVED)
    expect(switch(visit.page)).to_be_checked()  # back on: the tracker does count this visitor
    visit.page.evaluate("history.pushState({}, '', '/app/b')")
    assert [e["pathname"] for e in visit.wait_for(2)] == ["/privacy", "/app/b"]


def test_it_renders_into_data_target_unstyled_so_the_page_style_applies(visit: Visit) -> None:
    visit.page.goto(visit.base + "/styled")
    expect(switch(visit.page)).to_be_visible()
    assert visit.page.locator("#choice > .analytics-optout").count() == 1
    assert visit.page.evaluate("document.querySelectorAll('style, [style], link').length") == 1  # the page's own
    status = visit.page.locator(".analytics-optout-status")
    assert status.evaluate("(e) => getComputedStyle(e).color") == "rgb(1, 2, 3)"
    label = visit.page.locator(".analytics-optout label")
    assert label.evaluate("(e) => [getComputedStyle(e).fontSize, getComputedStyle(e).fontFamily]") == [
        "17px",
        "Georgia, serif",
    ]


def test_it_works_under_a_strict_content_security_policy(visit: Visit) -> None:
    # An init script runs whatever the page's policy (Playwright injects it), and sees every violation.
    visit.context.add_init_script(
        "window.__violations = []; document.addEventListener('securitypolicyviolation', "
        "(e) => __violations.push(e.violatedDirective + ' ' + e.blockedURI))"
    )
    visit.page.goto(visit.base + "/csp")
    switch(visit.page).press("Space")
    expect(visit.page.get_by_role("status")).to_have_text(EN["off"])
    assert flag(visit.page) == "true"
    assert visit.page.evaluate("window.__violations") == []


# Records every use of the device's storage and cookies by the page's scripts.
WATCH_STORAGE = """
(() => {
  const touched = window.__touched = []
  for (const name of ['localStorage', 'sessionStorage']) {
    const real = window[name]
    const watched = new Proxy(real, {
      get(target, key) {
        touched.push(name + ' get ' + String(key))
        const value = Reflect.get(target, key)
        return typeof value == 'function' ? value.bind(target) : value
      },
      set(target, key, value) {
        touched.push(name + ' set ' + String(key))
        return Reflect.set(target, key, value)
      },
      deleteProperty(target, key) {
        touched.push(name + ' delete ' + String(key))
        return Reflect.deleteProperty(target, key)
      },
    })
    Object.defineProperty(window, name, { get: () => watched, configurable: true })
  }
  const cookie = Object.getOwnPropertyDescriptor(Document.prototype, 'cookie')
  Object.defineProperty(Document.prototype, 'cookie', {
    get() { touched.push('cookie get'); return cookie.get.call(this) },
    set(value) { touched.push('cookie set'); cookie.set.call(this, value) },
    configurable: true,
  })
  const open = IDBFactory.prototype.open
  IDBFactory.prototype.open = function (...args) { touched.push('indexedDB open'); return open.apply(this, args) }
})()
"""


def test_the_tracker_only_reads_the_flag_once_per_event_and_writes_nothing(visit: Visit) -> None:
    visit.context.add_init_script(WATCH_STORAGE)
    for change in ("localStorage.setItem('analytics_ignore', 'true')", "localStorage.clear()"):
        visit.goto("/app/a")
        visit.page.evaluate(change)
        visit.goto("/app/a")  # a fresh page: the record holds the tracker's uses only
        visit.page.evaluate("history.pushState({}, '', '/app/b')")
        visit.page.evaluate("analytics('Signup')")
        # Three events (pageview, navigation, call), three reads of the flag: nothing else, opted out or not.
        assert visit.page.evaluate("window.__touched") == ["localStorage get analytics_ignore"] * 3
    assert [e["pathname"] for e in visit.wait_for(4)] == ["/app/a", "/app/a", "/app/b", "/app/b"]


def test_two_switches_on_one_page_each_read_their_own_status(visit: Visit) -> None:
    """Found by the outside review: the one waiting for its target took the other's id, so the English switch
    was described by the French status."""
    visit.page.goto(visit.base + "/two")
    english, french = switch(visit.page), switch(visit.page, FR["label"])
    expect(english).to_be_visible()
    expect(french).to_be_visible()
    ids = visit.page.evaluate("[...document.querySelectorAll('.analytics-optout-status')].map((e) => e.id)")
    assert len(set(ids)) == 2
    expect(english).to_have_accessible_description(EN["on"])
    expect(french).to_have_accessible_description(FR["on"])
