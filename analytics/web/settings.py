"""Site settings in the dashboard: general settings, goals, API keys, the tracking snippet, shared links, and
adding or removing a site. Every change is a POST carrying the session's CSRF token."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, available_timezones

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from analytics import accounts, apikeys, profile
from analytics.errors import Conflict
from analytics.ingest import PROPERTY_NOT_ALLOWED
from analytics.query import value_dimension
from analytics.rollup import day_number
from analytics.sites import MAX_ALLOWED_PROPS, Site, SiteSettings, check_goal, check_prop_keys, check_settings
from analytics.tracker import SiteScript
from analytics.web.auth import read_form, same
from analytics.web.views import Pages, Viewer

MAX_LINK_DAYS = 3650
FORGETTABLE = {
    "event:page": "Page (also as entry and exit page)",
    "event:goal": "Custom event name",
    "visit:source": "Source",
    "visit:referrer": "Referrer",
    "visit:utm_source": "UTM source",
    "visit:utm_medium": "UTM medium",
    "visit:utm_campaign": "UTM campaign",
    "visit:utm_content": "UTM content",
    "visit:utm_term": "UTM term",
    "visit:city": "City",
    "visit:region": "Region",
}
"""What the settings page offers to forget (the CLI takes every dimension); property values by `event:props:<key>`."""
DROPS_DAYS = 30
"""The settings page says how many properties were left out over this many days."""


def _lines(form: dict[str, str], name: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in str(form.get(name, "")).splitlines() if line.strip())


def _manages(viewer: Viewer, key: apikeys.ApiKey) -> bool:
    """A key may cover several sites (the CLI makes such keys): a user limited to some sites may see and
    revoke it only if they may see every one of them, or they could cut off (or learn of) another site's
    integration. An administrator manages all keys."""
    user = viewer.user
    return user is not None and all(user.allows(site_id) for site_id in key.site_ids)


LABELS = {
    "referrers": "Referring sites",
    "utm": "Campaign tags (UTM)",
    "locations": "Region and city",
    "browser_versions": "Browser versions",
    "os_versions": "Operating system versions",
    "screens": "Screen classes",
    "properties": "Custom properties",
    "events": "Custom events and goals",
    "revenue": "Revenue",
}
"""How the settings page names each minimisation switch (analytics.profile)."""


class SettingsPages:
    def __init__(
        self,
        pages: Pages,
        forgotten: Callable[[int], Awaitable[None]] | None = None,
        collect: profile.Collect = profile.EVERYTHING,
        optout: SiteScript | None = None,
    ) -> None:
        self.pages = pages
        self.collect = collect
        """The global switches (config.toml and the profile), under each site's own."""
        self.optout = optout or SiteScript.load("optout")  # the one the server serves, when given
        self.forgotten = forgotten
        """Called with the site's id once a value was forgotten (the open days' cached rows go)."""
        self.store = pages.store
        self.zones = sorted(available_timezones())

    async def _allowed(self, request: Request) -> tuple[Viewer, Site] | Response:
        viewer = await self.pages._viewer(request)
        if viewer is None:
            return self.pages._to_login(request)
        site = await self.pages._site(viewer, request.path_params["domain"])
        if site is None:
            return self.pages._not_found(request, viewer)
        return viewer, site

    async def show(self, request: Request, **extra: Any) -> Response:
        found = await self._allowed(request)
        if isinstance(found, Response):
            return found
        viewer, site = found
        return await self._page(request, viewer, site, 200, **extra)

    async def _page(self, request: Request, viewer: Viewer, site: Site, status: int, **extra: Any) -> Response:
        keys = [
            k
            for k in await self.store.list_api_keys()
            if site.id in k.site_ids and k.revoked_at is None and _manages(viewer, k)
        ]
        links = [link for link in await self.store.list_shared_links(site.id) if link.revoked_at is None]
        now_ms = self.pages._now_ms()
        today = day_number(self.pages.clock().astimezone(ZoneInfo(site.timezone)).date())
        counts = await self.store.drop_counts(site.id, today - DROPS_DAYS + 1, today)
        return self.pages.render(
            request,
            "settings.html",
            status,
            viewer=viewer,
            site=site,
            goals=await self.store.list_goals(site.id),
            props_left_out=sum(c for _, _, reason, c in counts if reason == PROPERTY_NOT_ALLOWED),
            drops_days=DROPS_DAYS,
            max_props=MAX_ALLOWED_PROPS,
            keys=keys,
            links=links,
            now_ms=now_ms,
            snippet=self.pages.tracker.snippet(site.domain, self.pages.origin(request)),
            optout_snippet=self.optout.tag(self.pages.origin(request)),
            zones=self.zones,
            forgettable=FORGETTABLE,
            switches=[
                (name, LABELS[name], dict(site.collect).get(name), self.collect.on(name)) for name in profile.NAMES
            ],
            saved=request.query_params.get("saved", ""),
            when=lambda ms: datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC"),
            **extra,
        )

    async def change(self, request: Request) -> Response:
        found = await self._allowed(request)
        if isinstance(found, Response):
            return found
        viewer, site = found
        form = await read_form(request)
        if not same(str(form.get("csrf", "")), viewer.csrf):
            return await self._page(
                request, viewer, site, 403, error="The form expired: reload the page and try again."
            )
        action = request.path_params["action"]
        handler = {
            "general": self._general,
            "props": self._props,
            "collect": self._collect,
            "goal-add": self._goal_add,
            "goal-remove": self._goal_remove,
            "key-create": self._key_create,
            "key-revoke": self._key_revoke,
            "link-create": self._link_create,
            "link-revoke": self._link_revoke,
            "remove": self._remove,
            "forget": self._forget,
        }.get(action)
        if handler is None:
            return self.pages._not_found(request, viewer)
        try:
            result = await handler(request, viewer, site, form)
        except (ValueError, Conflict) as exc:
            return await self._page(request, viewer, site, 400, error=str(exc))
        if isinstance(result, Response):
            return result
        if isinstance(result, dict):
            return await self._page(request, viewer, site, 200, **result)
        return RedirectResponse(f"/sites/{quote(site.domain)}/settings?saved={quote(action)}", status_code=303)

    async def _general(self, request: Request, viewer: Viewer, site: Site, form: dict[str, str]) -> None:
        settings = check_settings(
            SiteSettings(
                site.domain,
                str(form.get("timezone", site.timezone)).strip(),
                _lines(form, "allowed_hostnames"),
                _lines(form, "excluded_ips"),
                _lines(form, "excluded_paths"),
            )
        )
        await self.store.update_site(site.id, settings)

    async def _forget(self, request: Request, viewer: Viewer, site: Site, form: dict[str, str]) -> dict[str, Any]:
        dimension, value = str(form.get("dimension", "")), str(form.get("value", ""))
        if dimension not in FORGETTABLE and not (dimension.startswith("event:props:") and value_dimension(dimension)):
            raise ValueError("choose what the value is (a page, a source, a property...)")
        if not value:
            raise ValueError("enter the value to forget, exactly as the dashboard lists it")
        if form.get("confirm") != "1":
            raise ValueError("tick the box to confirm: a forgotten value cannot be brought back")
        report = await self.store.forget_value(site, dimension, value)
        if self.forgotten is not None:
            await self.forgotten(site.id)
        return {"forgotten": str(report)}

    async def _collect(self, request: Request, viewer: Viewer, site: Site, form: dict[str, str]) -> None:
        overrides = {}
        for name in profile.NAMES:
            said = str(form.get(name, "default"))
            if said not in ("default", "on", "off"):
                raise ValueError(f"{LABELS[name]}: choose the default, on or off")
            if said != "default":
                overrides[name] = said == "on"
        await self.store.set_collect(site.id, overrides)

    async def _props(self, request: Request, viewer: Viewer, site: Site, form: dict[str, str]) -> None:
        await self.store.set_allowed_props(site.id, check_prop_keys(_lines(form, "allowed_props")))

    async def _goal_add(self, request: Request, viewer: Viewer, site: Site, form: dict[str, str]) -> None:
        goal = check_goal(str(form.get("kind", "")), str(form.get("value", "")))
        await self.store.add_goal(site.id, goal, self.pages._now_ms())

    async def _goal_remove(self, request: Request, viewer: Viewer, site: Site, form: dict[str, str]) -> None:
        goal = check_goal(str(form.get("kind", "")), str(form.get("value", "")), new=False)
        if not await self.store.remove_goal(site.id, goal):
            raise ValueError(f"there is no goal {goal.label}")

    async def _key_create(self, request: Request, viewer: Viewer, site: Site, form: dict[str, str]) -> dict[str, Any]:
        name = str(form.get("name", "")).strip()[:100] or f"{site.domain} (dashboard)"
        key = apikeys.new_key()
        await self.store.add_api_key(
            name, apikeys.digest(key), apikeys.display_prefix(key), [site.id], self.pages._now_ms()
        )
        return {"secret": key, "secret_label": f"API key “{name}”: copy it now, it is shown only once."}

    async def _key_revoke(self, request: Request, viewer: Viewer, site: Site, form: dict[str, str]) -> None:
        key_id = str(form.get("id", ""))
        keys = {k.id: k for k in await self.store.list_api_keys()}
        key = keys.get(int(key_id)) if key_id.isdigit() else None
        if key is None or site.id not in key.site_ids or not _manages(viewer, key):
            raise ValueError("there is no such API key for this site")
        await self.store.revoke_api_key(key.id, self.pages._now_ms())

    async def _link_create(self, request: Request, viewer: Viewer, site: Site, form: dict[str, str]) -> dict[str, Any]:
        name = str(form.get("name", "")).strip()[:100] or "Shared link"
        password = str(form.get("password", ""))
        password_hash = None
        if password:
            password_hash = await asyncio.to_thread(accounts.hash_password, accounts.check_password(password))
        expires_ms = None
        days = str(form.get("days", "")).strip()
        if days:
            if not days.isdigit() or not 1 <= int(days) <= MAX_LINK_DAYS:
                raise ValueError(f"the link's lifetime is a number of days from 1 to {MAX_LINK_DAYS} (or empty)")
            expires_ms = int((self.pages.clock() + timedelta(days=int(days))).timestamp() * 1000)
        token = accounts.new_token(256)  # 256 random bits: the link cannot be guessed
        await self.store.add_shared_link(
            site,
            name,
            apikeys.digest(token),
            password_hash,
            expires_ms,
            form.get("embeddable") == "1",
            self.pages._now_ms(),
        )
        url = f"{self.pages.origin(request)}/share/{token}"
        return {"secret": url, "secret_label": f"Shared link “{name}”: copy it now, it is shown only once."}

    async def _link_revoke(self, request: Request, viewer: Viewer, site: Site, form: dict[str, str]) -> None:
        link_id = str(form.get("id", ""))
        if not link_id.isdigit() or not await self.store.revoke_shared_link(
            site.id, int(link_id), self.pages._now_ms()
        ):
            raise ValueError("there is no such shared link for this site")

    async def _remove(self, request: Request, viewer: Viewer, site: Site, form: dict[str, str]) -> Response:
        if viewer.user is None or not viewer.user.admin:
            raise ValueError("only an administrator may remove a site")
        if str(form.get("confirm", "")).strip().lower() != site.domain:
            raise ValueError(f"type {site.domain} to confirm: the site and all its figures will be deleted")
        await self.store.remove_site(site.domain)
        return RedirectResponse("/", status_code=303)

    async def add_site(self, request: Request) -> Response:
        viewer = await self.pages._viewer(request)
        if viewer is None or viewer.user is None:
            return self.pages._to_login(request)
        form = await read_form(request)
        user = viewer.user
        error = ""
        if not same(str(form.get("csrf", "")), viewer.csrf):
            error = "The form expired: reload the page and try again."
        elif not user.admin:
            error = "Only an administrator may add sites."
        else:
            try:
                settings = check_settings(
                    SiteSettings(str(form.get("domain", "")), str(form.get("timezone", "UTC")).strip() or "UTC")
                )
                site = await self.store.add_site(settings, self.pages._now_ms())
                return RedirectResponse(f"/sites/{quote(site.domain)}/settings?saved=added", status_code=303)
            except (ValueError, Conflict) as exc:
                error = str(exc)
        return await self.pages.sites_page(request, user, viewer, error)
