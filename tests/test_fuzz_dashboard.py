"""The dashboard's forms and cookies, fuzzed over HTTP: the login and setup forms and their cookies, the settings
forms with right and wrong CSRF tokens, the X-CSRF-Token header of the dashboard's API calls, the session cookie,
and a shared link's cookie and password form. Any text (non-ASCII, control characters, raw bytes in headers) gets
a page or a 4xx, never a 5xx, within a second (password checks excepted: scrypt is slow on purpose)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics import accounts, apikeys
from analytics.config import Config
from analytics.web import setup
from analytics.web.auth import COOKIE, LOGIN_COOKIE
from analytics.web.views import SHARE_COOKIE
from tests.conftest import Clock, Harness, start
from tests.test_dashboard import FAST, PASSWORD, csrf_of, login, make_user

# Text a browser, a proxy or an attacker could send: any character, and the shapes the code looks for.
hostile = st.text(st.characters(codec="utf-8"), max_size=30) | st.sampled_from(
    ["", "é", "ü" * 40, "\u0000", "a" * 101, "\U0001d518\U0001d52b", "%ff", "=", ";", "//evil.example", "1"]
)
# Header and cookie values travel as bytes (Starlette reads them as Latin-1): any byte but line breaks.
header_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")) | hostile.map(
    lambda t: t.replace("\r", "").replace("\n", "").encode("utf-8")
)
ACTIONS = ["general", "props", "goal-add", "goal-remove", "key-create", "key-revoke", "link-revoke", "remove",
           "nothing"]  # fmt: skip
FIELDS = ["csrf", "email", "password", "next", "timezone", "allowed_hostnames", "excluded_ips", "excluded_paths",
          "allowed_props", "kind", "value", "name", "id", "days", "embeddable", "confirm", "domain", "code",
          "repeat"]  # fmt: skip
forms = st.dictionaries(st.sampled_from(FIELDS) | hostile, hostile, max_size=6)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
LONG = settings(FUZZ, max_examples=1500)
SECOND = 1.0
HASHING = 5.0  # a request that checks a password (scrypt, 128 MiB at the default cost)


@dataclass
class Dash:
    h: Harness
    csrf: str
    link: str
    """A shared link with a password."""


@pytest.fixture
async def dash(harness: Harness) -> AsyncIterator[Dash]:
    await make_user(harness)
    assert (await login(harness.client)).status_code == 303
    site = (await harness.store.list_sites())[0]
    link = accounts.new_token(256)
    password_hash = accounts.hash_password(PASSWORD, n=FAST)
    await harness.store.add_shared_link(site, "fuzz", apikeys.digest(link), password_hash, None, False, 0)
    yield Dash(harness, await csrf_of(harness.client), link)


async def send(
    h: Harness, method: str, path: str, *, limit: float = SECOND, cookie: bytes | None = None, **kwargs: object
) -> httpx.Response:
    request = h.client.build_request(method, path, **kwargs)  # type: ignore[arg-type]
    if cookie is not None:  # these bytes instead of the client's cookies
        raw = [(k, v) for k, v in request.headers.raw if k.lower() != b"cookie"]
        request.headers = httpx.Headers([*raw, (b"Cookie", cookie)])
    started = time.perf_counter()
    response = await h.client.send(request)
    elapsed = time.perf_counter() - started
    assert response.status_code < 500, f"{method} {path} {kwargs}: {response.status_code} {response.text[:300]}"
    assert elapsed < limit, f"{method} {path} {kwargs} took {elapsed:.2f} s"
    return response


def encoded(form: dict[str, str]) -> bytes:
    return urlencode(form).encode()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def form_attempt(
    h: Harness, path: str, token_cookie: str, form: dict[str, str], cookie: bytes, real_token: bool
) -> httpx.Response:
    """A form shown before any session exists (login, setup), posted with its own token or with any cookie."""
    page = await send(h, "GET", path, cookie=b"")
    if real_token:  # the form's own token, so that the fields behind it are reached too
        found = re.search(r'name="csrf" value="([^"]*)"', page.text)
        assert found
        form = {**form, "csrf": found.group(1)}
        cookie = f"{token_cookie}={found.group(1)}".encode()
    else:
        cookie = token_cookie.encode() + b"=" + cookie
    return await send(h, "POST", path, content=encoded(form), headers=FORM, cookie=cookie, limit=HASHING)


async def login_attempt(dash: Dash, form: dict[str, str], cookie: bytes, real_token: bool) -> None:
    response = await form_attempt(dash.h, "/login", LOGIN_COOKIE, form, cookie, real_token)
    assert response.status_code in (303, 400, 401, 429), response.text[:300]


async def settings_change(dash: Dash, action: str, form: dict[str, str], real_csrf: bool, content_type: str) -> None:
    if real_csrf:
        form = {**form, "csrf": dash.csrf}
    form.pop("confirm", None)  # never the one value that removes the site
    response = await send(
        dash.h,
        "POST",
        f"/sites/example.com/settings/{action}",
        content=encoded(form),
        headers={"Content-Type": content_type},
    )
    assert response.status_code in (200, 303, 400, 403, 404), response.text[:300]


async def api_call(dash: Dash, header: bytes, session: bytes | None) -> None:
    body = {"site_id": "example.com", "metrics": ["visitors"], "date_range": "day"}
    cookie = None if session is None else COOKIE.encode() + b"=" + session
    response = await send(
        dash.h,
        "POST",
        "/api/v2/query",
        json=body,
        headers={"X-CSRF-Token": header},
        cookie=cookie,  # type: ignore[dict-item]
    )
    assert response.status_code in (200, 401, 403), response.text[:300]
    if response.status_code != 200:
        assert response.json()["error"]


async def shared_link(dash: Dash, cookie: bytes, password: str, real_link: bool, path_token: str) -> None:
    token = dash.link if real_link else path_token
    path = "/share/" + quote(token, safe="")
    shared_cookie = SHARE_COOKIE.encode() + b"=" + cookie
    # A token ending in a slash is the path /share/x/: redirected to /share/x, as every path with a trailing slash.
    slash = (307,) if token.endswith("/") else ()
    page = await send(dash.h, "GET", path, cookie=shared_cookie)
    assert page.status_code in (200, 404, *slash)
    answer = await send(
        dash.h, "POST", path, content=encoded({"password": password}), headers=FORM, cookie=shared_cookie, limit=HASHING
    )
    assert answer.status_code in (303, 401, 404, 429, *slash)
    query = await send(dash.h, "POST", f"{path}/api/v2/query", json={"metrics": ["visitors"]}, cookie=shared_cookie)
    assert query.status_code in (400, 404)


async def pages(dash: Dash, session: bytes, path: str) -> None:
    for target in ("/", "/sites/example.com", "/sites/example.com/settings", f"/login?next={quote(path, safe='')}"):
        response = await send(dash.h, "GET", target, cookie=COOKIE.encode() + b"=" + session)
        assert response.status_code in (200, 303, 404)


@FUZZ
@given(form=forms, cookie=header_bytes, real_token=st.booleans())
async def test_the_login_form_and_its_cookie(dash: Dash, form: dict[str, str], cookie: bytes, real_token: bool) -> None:
    await login_attempt(dash, form, cookie, real_token)


@pytest.fixture
async def new_server(config: Config, clock: Clock) -> AsyncIterator[Harness]:
    """A server without any account: its setup page is open."""
    async with start(config, clock) as h:
        yield h


@FUZZ
@given(form=forms, cookie=header_bytes, real_token=st.booleans(), code=hostile, valid=st.booleans())
async def test_the_setup_form_and_its_cookie(
    new_server: Harness, form: dict[str, str], cookie: bytes, real_token: bool, code: str, valid: bool
) -> None:
    if valid:  # fields that pass, so that the code itself is checked
        form = {**form, "email": "owner@example.com", "password": PASSWORD, "repeat": PASSWORD, "code": code}
    response = await form_attempt(new_server, "/setup", setup.COOKIE, form, cookie, real_token)
    assert response.status_code in (400, 401, 429), response.text[:300]  # the code is never guessed
    assert await new_server.store.list_users() == []


@FUZZ
@given(
    action=st.sampled_from(ACTIONS),
    form=forms,
    real_csrf=st.booleans(),
    content_type=st.sampled_from(["application/x-www-form-urlencoded", "text/plain", "multipart/form-data", ""]),
)
async def test_the_settings_forms(
    dash: Dash, action: str, form: dict[str, str], real_csrf: bool, content_type: str
) -> None:
    await settings_change(dash, action, form, real_csrf, content_type)


@FUZZ
@given(header=header_bytes, session=st.none() | header_bytes)
async def test_the_csrf_header_and_the_session_cookie_of_api_calls(
    dash: Dash, header: bytes, session: bytes | None
) -> None:
    await api_call(dash, header, session)


@FUZZ
@given(cookie=header_bytes, password=hostile, real_link=st.booleans(), path_token=hostile.filter(bool))
async def test_a_shared_links_cookie_and_password_form(
    dash: Dash, cookie: bytes, password: str, real_link: bool, path_token: str
) -> None:
    await shared_link(dash, cookie, password, real_link, path_token)


@FUZZ
@given(session=header_bytes, path=hostile)
async def test_pages_with_any_session_cookie(dash: Dash, session: bytes, path: str) -> None:
    await pages(dash, session, path)


@pytest.mark.slow
@LONG
@given(
    action=st.sampled_from(ACTIONS),
    form=forms,
    cookie=header_bytes,
    header=header_bytes,
    flag=st.booleans(),
    text=hostile.filter(bool),
)
async def test_long_run_dashboard(
    dash: Dash, action: str, form: dict[str, str], cookie: bytes, header: bytes, flag: bool, text: str
) -> None:
    await login_attempt(dash, form, cookie, flag)
    await settings_change(dash, action, dict(form), flag, "application/x-www-form-urlencoded")
    await api_call(dash, header, cookie if flag else None)
    await shared_link(dash, cookie, text, flag, text)
    await pages(dash, cookie, text)
