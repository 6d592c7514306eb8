"""The first run over HTTP: a server without accounts offers /setup, guarded by the one-time code it prints in its
log; the code is refused when wrong, expired or used, guessing it is throttled, and once an account exists the
page is gone, even when two setups race. The same in Chromium: tests/test_setup_browser.py."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from analytics import accounts
from analytics.config import Config, sqlite_path
from analytics.store import SQLiteStore
from analytics.web.setup import SetupCode, Verdict
from tests.conftest import Clock, Harness, start
from tests.test_dashboard import FAST, PASSWORD, field

CODE = re.compile(r"setup code ([A-Z2-9]{4}(?:-[A-Z2-9]{4}){3})")


def codes(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The setup codes the server printed (at start, in the fixture, then during the test), oldest first."""
    records = [*caplog.get_records("setup"), *caplog.records]
    return [m.group(1) for r in records if r.name == "analytics.setup" for m in CODE.finditer(r.getMessage())]


@pytest.fixture
async def fresh(config: Config, clock: Clock, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Harness]:
    """A server that has never had an account."""
    async with start(config, clock) as h:
        yield h


def every_byte(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


async def setup(client: httpx.AsyncClient, code: str, **fields: str) -> httpx.Response:
    form = await client.get("/setup")
    assert form.status_code == 200, form.text
    data = {"csrf": field(form.text, "csrf"), "code": code, "email": "owner@example.com"}
    data |= {"password": PASSWORD, "repeat": PASSWORD} | fields
    return await client.post("/setup", data=data)


async def test_a_new_server_prints_a_setup_code_and_sends_visitors_to_the_setup_page(
    fresh: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    [code] = codes(caplog)
    line = next(r.getMessage() for r in caplog.get_records("setup") if code in r.getMessage())
    assert "http://127.0.0.1:8000/setup" in line and "60 minutes" in line and "analytics user add" in line
    home = await fresh.client.get("/")
    assert home.status_code == 303 and home.headers["location"] == "/setup"
    page = await fresh.client.get("/setup")
    assert page.status_code == 200 and "Create the first administrator" in page.text and code not in page.text
    login = await fresh.client.get("/login")
    assert login.status_code == 200 and 'href="/setup"' in login.text
    assert codes(caplog) == [code]  # showing the page does not replace a live code


async def test_the_setup_code_creates_an_administrator_logs_them_in_and_the_page_is_gone(
    fresh: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    [code] = codes(caplog)
    done = await setup(fresh.client, code.lower().replace("-", " "))  # pasted as it came, or typed loosely
    assert done.status_code == 303 and done.headers["location"] == "/"
    sites = await fresh.client.get("/")
    assert sites.status_code == 200 and "owner@example.com" in sites.text and "Add a site" in sites.text
    [user] = await fresh.store.list_users()
    assert user.email == "owner@example.com" and user.admin
    assert (await fresh.client.get("/setup")).headers["location"] == "/login"
    fresh.client.cookies.clear()
    again = await fresh.client.post("/setup", data={"code": code, "email": "b@example.com", "password": PASSWORD})
    assert again.status_code == 404 and "Already set up" in again.text
    assert (await fresh.client.get("/")).headers["location"].startswith("/login")
    assert 'href="/setup"' not in (await fresh.client.get("/login")).text
    assert len(await fresh.store.list_users()) == 1


async def test_wrong_expired_and_used_codes_are_refused_with_a_message(
    fresh: Harness, caplog: pytest.LogCaptureFixture, clock: Clock
) -> None:
    [first] = codes(caplog)
    wrong = await setup(fresh.client, "AAAA-BBBB-CCCC-DDDD")
    assert wrong.status_code == 401 and "Wrong setup code" in wrong.text
    form = await fresh.client.get("/setup")  # opened in time, sent after an hour
    clock.advance(minutes=61)
    expired = await fresh.client.post(
        "/setup",
        data={"csrf": field(form.text, "csrf"), "code": first, "email": "owner@example.com"}
        | {"password": PASSWORD, "repeat": PASSWORD},
    )
    assert expired.status_code == 400 and "expired" in expired.text
    second = codes(caplog)[-1]
    assert second != first
    assert (await setup(fresh.client, first)).status_code == 401  # the old code no longer works at all
    clock.advance(minutes=59)
    assert codes(caplog)[-1] == second  # reloading the page keeps a live code
    assert (await setup(fresh.client, second)).status_code == 303


def test_a_code_works_once_and_not_after_its_time() -> None:
    clock = Clock(datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC))
    setup_code = SetupCode(clock, minutes=60)
    code = setup_code.issue()
    assert setup_code.redeem("nonsense") is Verdict.WRONG
    assert setup_code.redeem(code) is Verdict.ACCEPTED
    assert setup_code.redeem(code) is Verdict.USED
    later = setup_code.issue()
    clock.advance(minutes=60)
    assert setup_code.redeem(later) is Verdict.EXPIRED
    assert code not in repr(vars(setup_code)) and later.replace("-", "") not in repr(vars(setup_code))


async def test_bad_fields_are_refused_with_a_message_and_leave_the_code_usable(
    fresh: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    [code] = codes(caplog)
    for fields, message in (
        ({"email": "not an address"}, "is not an email address"),
        ({"password": "short", "repeat": "short"}, "at least 10 characters"),
        ({"repeat": PASSWORD + "!"}, "The two passwords differ"),
        ({"password": "x" * 1025, "repeat": "x" * 1025}, "at most 1024 characters"),
    ):
        refused = await setup(fresh.client, code, **fields)
        assert refused.status_code == 400 and message in refused.text, fields
    forged = await fresh.client.post("/setup", data={"code": code, "email": "owner@example.com", "password": PASSWORD})
    assert forged.status_code == 400 and "expired" in forged.text  # no form token: a cross-site post
    garbage = await fresh.client.post("/setup", content=b"\xff\xfe", headers={"Content-Type": "text/plain"})
    assert garbage.status_code == 400
    assert (await setup(fresh.client, code)).status_code == 303


async def test_guessing_the_code_is_throttled_like_logins(fresh: Harness, caplog: pytest.LogCaptureFixture) -> None:
    [code] = codes(caplog)
    for guess in range(5):
        assert (await setup(fresh.client, f"AAAA-AAAA-AAAA-AAA{guess + 2}")).status_code == 401
    blocked = await setup(fresh.client, code)  # even the right code waits
    assert blocked.status_code == 429 and "Too many attempts" in blocked.text
    assert int(blocked.headers["retry-after"]) > 0
    assert await fresh.store.list_users() == []


async def test_two_setups_at_once_make_one_account(fresh: Harness, caplog: pytest.LogCaptureFixture) -> None:
    [code] = codes(caplog)
    browsers = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=fresh.app, client=(f"127.0.0.{i}", 40000)), base_url="http://t"
        )
        for i in (1, 2)
    ]
    try:
        answers = await asyncio.gather(*[setup(b, code, email=f"owner{i}@example.com") for i, b in enumerate(browsers)])
    finally:
        for browser in browsers:
            await browser.aclose()
    assert sorted(a.status_code for a in answers) in ([303, 400], [303, 404])
    assert len(await fresh.store.list_users()) == 1


async def test_an_account_made_on_the_command_line_closes_the_setup_page(
    fresh: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    [code] = codes(caplog)
    form = await fresh.client.get("/setup")
    await fresh.store.add_user("cli@example.com", accounts.hash_password(PASSWORD, n=FAST), None, 0)
    late = await fresh.client.post(
        "/setup", data={"csrf": field(form.text, "csrf"), "code": code, "email": "web@example.com"}
    )
    assert late.status_code == 404
    assert (await fresh.client.get("/setup")).headers["location"] == "/login"
    assert [u.email for u in await fresh.store.list_users()] == ["cli@example.com"]


async def test_the_first_administrator_is_added_once_when_processes_race(config: Config) -> None:
    path = sqlite_path(config.database.url)
    stores = [SQLiteStore(path) for _ in range(4)]
    for store in stores:
        await store.open()
    await stores[0].migrate()
    try:
        made = await asyncio.gather(
            *[s.add_first_user(f"admin{i}@example.com", "scrypt$x", 0) for i, s in enumerate(stores * 5)]
        )
        assert len([u for u in made if u is not None]) == 1
        assert len(await stores[1].list_users()) == 1
        assert await stores[2].add_first_user("late@example.com", "scrypt$x", 0) is None
    finally:
        for store in stores:
            await store.close()


async def test_the_setup_code_is_written_nowhere_but_the_log(
    fresh: Harness, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    [code] = codes(caplog)
    await setup(fresh.client, "AAAA-AAAA-AAAA-AAAA")
    await setup(fresh.client, code)
    written = every_byte(tmp_path)
    assert written and code.encode() not in written and code.replace("-", "").encode() not in written
