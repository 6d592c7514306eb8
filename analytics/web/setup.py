"""First run without a shell: while no account exists, `/setup` creates the first administrator, protected by a
one-time setup code that the server prints in its log (as Jupyter and Grafana do), so that starting the server
and opening a browser is enough.

The code is 80 random bits, written as 16 characters of an alphabet without look-alikes. Only its SHA-256 is
kept, in this process's memory (never in the database), and an entered code is compared with it in constant
time. A code creates one account and lasts CODE_MINUTES: long enough to start the server, read its log and open
the page; short enough that a code found later in an old log or a shared bug report is worthless. Each start
prints a new code, and so does the page when the last one has expired. Attempts are throttled by the login
throttle (5 per address per 15 minutes). Once any account exists the page is gone.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from analytics import accounts
from analytics.errors import StoreError
from analytics.web.auth import read_form, same
from analytics.web.views import Pages

log = logging.getLogger("analytics.setup")

PATH = "/setup"
COOKIE = "analytics_setup"  # double-submit token of the setup form (there is no session yet)
CODE_MINUTES = 60
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # 32 symbols (5 bits each): no 0/O, no 1/I
LENGTH = 16  # 80 bits: out of reach of guessing, even at the throttle's rate from a million addresses
MAX_INPUT = 100


class Verdict(enum.Enum):
    ACCEPTED = "accepted"
    WRONG = "wrong"
    EXPIRED = "expired"
    USED = "used"


def _digest(code: str) -> bytes:
    return hashlib.sha256(code.encode()).digest()


def normalize(entered: str) -> str:
    """What a person types or pastes: any case, with or without the dashes, spaces around."""
    return "".join(c for c in entered.upper() if c not in "- \t\r\n")


class SetupCode:
    """The current code of this process: its digest, its expiry, and whether it was used."""

    def __init__(self, clock: Callable[[], datetime], minutes: int = CODE_MINUTES) -> None:
        self.clock, self.lifetime = clock, timedelta(minutes=minutes)
        self._digest: bytes | None = None
        self._expires: datetime | None = None
        self._used = False

    def issue(self) -> str:
        """A new code, replacing the previous one; the caller shows it to the operator (the log)."""
        code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        self._digest, self._expires, self._used = _digest(code), self.clock() + self.lifetime, False
        return "-".join(code[i : i + 4] for i in range(0, LENGTH, 4))

    @property
    def live(self) -> bool:
        return self._expires is not None and not self._used and self.clock() < self._expires

    def redeem(self, entered: str) -> Verdict:
        """Checks an entered code and, when it is accepted, uses it up: of two requests with the same code, only
        the first is accepted (no await between the check and the use)."""
        candidate = normalize(entered)[:MAX_INPUT]
        expected = self._digest or secrets.token_bytes(32)
        if not hmac.compare_digest(_digest(candidate), expected):
            return Verdict.WRONG
        if self._used:
            return Verdict.USED
        if self._expires is None or self.clock() >= self._expires:
            return Verdict.EXPIRED
        self._used = True
        return Verdict.ACCEPTED


class SetupPages:
    def __init__(self, pages: Pages, setup_url: str) -> None:
        self.pages, self.store, self.sessions = pages, pages.store, pages.sessions
        self.setup_url = setup_url
        self.code = SetupCode(pages.clock)

    def announce(self) -> None:
        """A new code, printed in the log; the previous one stops working."""
        code = self.code.issue()
        # At least WARNING, and never below the configured level: with log.level = "error" the code was never
        # shown, and nobody could set the server up from a browser.
        log.log(
            max(logging.WARNING, log.getEffectiveLevel()),
            "No account exists yet. To create the first administrator, open %s and enter the setup code %s "
            "(it works once, for %d minutes; after that, reloading the page prints a new one here). "
            "Or create an account with: analytics user add EMAIL",
            self.setup_url,
            code,
            CODE_MINUTES,
        )

    async def start(self) -> None:
        """At start: a code when the server has no account."""
        if not await self.store.has_users():
            self.announce()

    def _form(self, request: Request, status: int, error: str = "", email: str = "") -> Response:
        token = accounts.new_token(128)
        response = self.pages.render(
            request, "setup.html", status, viewer=None, error=error, email=email, csrf=token, minutes=CODE_MINUTES
        )
        self.sessions.set_form_cookie(response, request, COOKIE, token, PATH)
        return response

    def _gone(self, request: Request) -> Response:
        return self.pages.render(
            request,
            "message.html",
            404,
            viewer=None,
            title="Already set up",
            message="This server has an account already, so there is no setup page any more. Log in at /login; "
            "more accounts are created with `analytics user add EMAIL`.",
        )

    async def show(self, request: Request) -> Response:
        if await self.store.has_users():
            return RedirectResponse("/login", status_code=303)
        if not self.code.live:  # expired (or used by a setup that then failed): the log gets a new one
            self.announce()
        return self._form(request, 200)

    async def create(self, request: Request) -> Response:
        if await self.store.has_users():
            return self._gone(request)
        form = await read_form(request)
        email = str(form.get("email", ""))
        password, repeat = str(form.get("password", "")), str(form.get("repeat", ""))
        if not same(str(form.get("csrf", "")), request.cookies.get(COOKIE)):
            return self._form(request, 400, "The setup form expired; please try again.", email)
        try:
            email = accounts.check_email(email)
            accounts.check_password(password)
        except ValueError as exc:
            return self._form(request, 400, f"{str(exc)[:1].upper()}{str(exc)[1:]}.", email[:254])
        if password != repeat:
            return self._form(request, 400, "The two passwords differ.", email)

        key = self.sessions.client_key(request)
        wait, stamp = self.sessions.throttle.begin(key)
        if wait:
            page = self._form(request, 429, f"Too many attempts: try again in {max(1, round(wait / 60))} minute(s).")
            page.headers["Retry-After"] = str(wait)
            return page
        verdict = self.code.redeem(str(form.get("code", "")))
        if verdict is Verdict.WRONG:
            return self._form(request, 401, "Wrong setup code: copy it from the server's log.", email)
        if verdict is Verdict.USED:
            return self._form(request, 400, "This setup code was used already.", email)
        if verdict is Verdict.EXPIRED:
            self.announce()
            return self._form(request, 400, "This setup code has expired; the server's log now shows a new one.", email)
        self.sessions.throttle.succeed(key, stamp)

        password_hash = await asyncio.to_thread(accounts.hash_password, password)
        try:
            user = await self.store.add_first_user(email, password_hash, int(self.pages.clock().timestamp() * 1000))
        except StoreError as exc:
            log.error("the first administrator could not be stored: %s", exc)
            self.announce()  # the code is spent, the account not made: a new code, so that setup can be retried
            return self._form(
                request,
                503,
                "The database could not store the account; the server's log says why, and shows a "
                "new setup code to try again with.",
                email,
            )
        if user is None:  # another setup (or `analytics user add`) made an account meanwhile
            return self._gone(request)
        log.info("the first administrator was created on the setup page; the setup code is no longer valid")
        token, _ = await self.sessions.start(user)
        response = RedirectResponse("/", status_code=303)
        self.sessions.set_cookie(response, request, token)
        response.delete_cookie(COOKIE, path=PATH)
        return response
