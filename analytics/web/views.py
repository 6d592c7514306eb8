"""The dashboard's pages: login, the list of sites, a site's dashboard, its settings, and shared links.

Pages are rendered on the server (Jinja2, every value escaped); the figures are drawn by small ES modules
(analytics/static/dashboard/) that call the same Stats API as integrations, so a page renders at once and
fills itself in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from analytics import accounts, apikeys, profile
from analytics.accounts import SharedLink, User
from analytics.sites import Site
from analytics.store.base import Store
from analytics.tracker import SiteScript
from analytics.web.auth import LOGIN_COOKIE, Sessions, read_form, same

ASSETS = "/assets"
SHARE_COOKIE = "analytics_share"


def _asset_versions() -> dict[str, str]:
    """Each static file's content hash, appended to its URL so browsers may cache it for good."""
    folder = resources.files("analytics") / "static" / "dashboard"
    return {
        entry.name: hashlib.sha256(entry.read_bytes()).hexdigest()[:10]
        for entry in folder.iterdir()
        if entry.name.endswith((".js", ".css", ".svg"))
    }


@dataclass
class Viewer:
    """Who is looking: a logged-in user (with their CSRF token), or a shared link's visitor."""

    user: User | None
    csrf: str
    link: SharedLink | None = None
    token: str = ""


class Pages:
    def __init__(
        self,
        store: Store,
        sessions: Sessions,
        clock: Callable[[], datetime],
        tracker: SiteScript,
        public_url: str,
        places: tuple[bool, bool] = (False, False),
        min_visitors: int = 1,
        collect: profile.Collect = profile.EVERYTHING,
    ) -> None:
        self.store, self.sessions, self.clock, self.tracker = store, sessions, clock, tracker
        self.collect = collect  # the global switches, under each site's own (analytics.profile)
        self.min_visitors = min_visitors  # privacy.min_visitors, for the dashboard's footnote
        self.public_url = public_url.rstrip("/")
        self.regions, self.cities = places  # recorded only when geoip.regions / geoip.cities are on
        folder = str(resources.files("analytics") / "templates")
        self.env = Environment(
            loader=FileSystemLoader(folder), autoescape=select_autoescape(default=True), auto_reload=False
        )
        versions = _asset_versions()
        self.env.globals["asset"] = lambda name: f"{ASSETS}/{name}?v={versions.get(name, '0')}"

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(request=request, **context)
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    def origin(self, request: Request) -> str:
        """This server's address in snippets and shared links: server.public_url, else the one the browser used
        (not the address it listens on, which in a container is 0.0.0.0)."""
        return self.public_url or f"{request.url.scheme}://{request.url.netloc}"

    def _now_ms(self) -> int:
        return int(self.clock().timestamp() * 1000)

    async def _viewer(self, request: Request) -> Viewer | None:
        found = await self.sessions.current(request)
        return Viewer(found[0], found[1]) if found else None

    @staticmethod
    def _to_login(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    async def _site(self, viewer: Viewer, domain: str) -> Site | None:
        site = next((s for s in await self.store.list_sites() if s.domain == domain), None)
        if site is None or viewer.user is None or not viewer.user.allows(site.id):
            return None
        return site

    def _not_found(self, request: Request, viewer: Viewer | None) -> HTMLResponse:
        return self.render(
            request, "message.html", 404, viewer=viewer, title="Not found", message="There is no such page or site."
        )

    # Login

    async def login_form(self, request: Request) -> Response:
        if await self._viewer(request):
            return RedirectResponse(_next(request.query_params.get("next")), status_code=303)
        return self._login_page(request, "", 200, "", first_run=not await self.store.has_users())

    def _login_page(self, request: Request, error: str, status: int, email: str, first_run: bool = False) -> Response:
        token = accounts.new_token(128)
        response = self.render(
            request,
            "login.html",
            status,
            viewer=None,
            error=error,
            email=email,
            csrf=token,
            next=_next(request.query_params.get("next")),
            first_run=first_run,
        )
        self.sessions.set_form_cookie(response, request, LOGIN_COOKIE, token, "/login")
        return response

    async def login(self, request: Request) -> Response:
        form = await read_form(request)
        email, password = str(form.get("email", "")), str(form.get("password", ""))
        if not same(str(form.get("csrf", "")), request.cookies.get(LOGIN_COOKIE)):
            return self._login_page(request, "The login form expired; please try again.", 400, email)
        if not email or not password:
            return self._login_page(request, "Enter your email address and your password.", 400, email)
        result = await self.sessions.login(request, email, password)
        if isinstance(result, int):
            minutes = max(1, round(result / 60))
            page = self._login_page(request, f"Too many failed attempts: try again in {minutes} minute(s).", 429, email)
            page.headers["Retry-After"] = str(result)
            return page
        if result is None:
            return self._login_page(request, "Wrong email address or password.", 401, email)
        response = RedirectResponse(_next(str(form.get("next", ""))), status_code=303)
        self.sessions.set_cookie(response, request, result[0])
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    async def logout(self, request: Request) -> Response:
        viewer = await self._viewer(request)
        form = await read_form(request)
        if viewer is None or not same(str(form.get("csrf", "")), viewer.csrf):
            return RedirectResponse("/login", status_code=303)
        response = RedirectResponse("/login", status_code=303)
        await self.sessions.logout(request, response)
        return response

    # Sites

    async def sites(self, request: Request) -> Response:
        viewer = await self._viewer(request)
        if viewer is None or viewer.user is None:
            if not await self.store.has_users():  # a new server: its first account is made on the setup page
                return RedirectResponse("/setup", status_code=303)
            return self._to_login(request)
        return await self.sites_page(request, viewer.user, viewer)

    async def sites_page(self, request: Request, user: User, viewer: Viewer, error: str = "") -> HTMLResponse:
        """The list of the user's sites (with the error of a failed "add a site", 400)."""
        sites = [s for s in await self.store.list_sites() if user.allows(s.id)]
        return self.render(
            request,
            "sites.html",
            400 if error else 200,
            viewer=viewer,
            sites=sites,
            admin=user.admin,
            hours=self._last_hours(sites),
            error=error,
        )

    def _last_hours(self, sites: list[Site]) -> dict[str, tuple[str, str, str]]:
        """Per site: yesterday and today (local), and the current local hour as the Stats API labels it; the
        sparkline asks for both days by hour (from aggregates and the cached open day) and keeps the last 24."""
        found = {}
        for site in sites:
            now = self.clock().astimezone(ZoneInfo(site.timezone))
            today = now.date()
            found[site.domain] = (
                (today - timedelta(days=1)).isoformat(),
                today.isoformat(),
                now.strftime("%Y-%m-%d %H:00:00"),
            )
        return found

    async def dashboard(self, request: Request) -> Response:
        viewer = await self._viewer(request)
        if viewer is None:
            return self._to_login(request)
        site = await self._site(viewer, request.path_params["domain"])
        if site is None:
            return self._not_found(request, viewer)
        return await self._dashboard(request, viewer, site, "/api/v2/query", "/api/v1/stats/realtime/visitors")

    async def _dashboard(self, request: Request, viewer: Viewer, site: Site, api: str, realtime: str) -> HTMLResponse:
        today = self.clock().astimezone(ZoneInfo(site.timezone)).date()
        return self.render(
            request,
            "dashboard.html",
            viewer=viewer,
            site=site,
            api=api,
            realtime=realtime,
            today=today.isoformat(),
            shared=viewer.link is not None,
            goals=[g.label for g in await self.store.list_goals(site.id)],
            properties=await self.store.property_keys(site.id, self._now_ms() - 2 * 86_400_000),
            regions=self.regions,
            cities=self.cities,
            min_visitors=self.min_visitors,
            on=profile.collect(self.collect, dict(site.collect)),
        )

    # Shared links

    async def _link(self, token: str) -> tuple[SharedLink, Site] | None:
        if not token or len(token) > 100:
            return None
        link = await self.store.find_shared_link(apikeys.digest(token))
        if link is None or not link.usable(self._now_ms()):
            return None
        site = next((s for s in await self.store.list_sites() if s.id == link.site_id), None)
        return (link, site) if site else None

    @staticmethod
    def share_proof(link: SharedLink, token: str) -> str:
        """What the cookie of a password-protected link holds once the password was given: derived from the
        stored password hash (never sent) and the link's token."""
        return hashlib.sha256(f"{link.password_hash}|{token}".encode()).hexdigest()

    async def shared_site(self, request: Request, token: str) -> Site | None:
        """The site a shared link opens, if the link is live and (when it has a password) unlocked."""
        found = await self._link(token)
        if found is None or not self.share_unlocked(request, found[0], token):
            return None
        return found[1]

    def share_unlocked(self, request: Request, link: SharedLink, token: str) -> bool:
        return link.password_hash is None or same(request.cookies.get(SHARE_COOKIE), self.share_proof(link, token))

    async def shared(self, request: Request) -> Response:
        token = request.path_params["token"]
        found = await self._link(token)
        if found is None:
            return self.render(
                request,
                "message.html",
                404,
                viewer=None,
                title="Link not available",
                message="This shared link does not exist, has expired or was revoked.",
            )
        link, site = found
        if not self.share_unlocked(request, link, token):
            return self._share_password(request, link, "", 200)
        viewer = Viewer(None, "", link, token)
        response = await self._dashboard(
            request, viewer, site, f"/share/{token}/api/v2/query", f"/share/{token}/api/v1/stats/realtime/visitors"
        )
        if link.embeddable:
            response.headers["X-Frame-Policy"] = "embeddable"  # read by the security headers middleware
        return response

    def _share_password(self, request: Request, link: SharedLink, error: str, status: int) -> Response:
        return self.render(request, "share_password.html", status, viewer=None, error=error, link=link)

    async def shared_password(self, request: Request) -> Response:
        token = request.path_params["token"]
        found = await self._link(token)
        if found is None:
            return RedirectResponse(f"/share/{quote(token)}", status_code=303)
        link, _ = found
        form = await read_form(request)
        password = str(form.get("password", ""))
        keys = (f"link:{link.id}", self.sessions.client_key(request))
        ok = await self.sessions.verify(keys, password, link.password_hash or accounts.dummy_hash())
        if isinstance(ok, int) and not isinstance(ok, bool):
            return self._share_password(
                request, link, f"Too many attempts: try again in {ok // 60 + 1} minute(s).", 429
            )
        if link.password_hash is None or not ok:
            return self._share_password(request, link, "Wrong password.", 401)
        response = RedirectResponse(f"/share/{quote(token)}", status_code=303)
        response.set_cookie(
            SHARE_COOKIE,
            self.share_proof(link, token),
            path=f"/share/{token}",
            httponly=True,
            secure=self.sessions.secure(request),
            samesite="lax",
        )
        return response


def _next(value: str | None) -> str:
    """Only a local path: never redirect a login to another site."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"
