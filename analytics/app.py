"""The application, composed in one place: routes, lifespan (store, writer, background upkeep) and access log."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from analytics import drops as drop_counts
from analytics import jobs, metrics, midnight, openapi, openday, privacy, profile, report
from analytics.buffer import BatchWriter, Insert
from analytics.config import Config, local_url
from analytics.devices import DeviceDetector
from analytics.endpoint import INGEST_PATH, PIXEL_PATH, IngestEndpoint
from analytics.errors import AnalyticsError, StoreError
from analytics.events import Event
from analytics.geo import GeoLocator
from analytics.ingest import Pipeline, Signals
from analytics.midnight import OpenVisits
from analytics.privacy import Anonymizer, Network, SaltBook
from analytics.referrers import normalize_spam_domains
from analytics.sites import SiteRegistry
from analytics.stats_api import StatsApi
from analytics.store import Store, open_store
from analytics.tracker import SiteScript
from analytics.web.auth import Sessions
from analytics.web.security import SecurityHeaders
from analytics.web.settings import SettingsPages
from analytics.web.setup import PATH as SETUP_PATH
from analytics.web.setup import SetupPages
from analytics.web.views import ASSETS, Pages

log = logging.getLogger("analytics")

Clock = Callable[[], datetime]
HEALTH_TIMEOUT_S = 2.0
"""A read of the database takes well under a millisecond; one that takes seconds is a stuck disk or store."""
UPKEEP_EVERY_S = 60.0
"""The upkeep runs at least this often (more often with a shorter ingest.site_refresh_seconds): an expired salt
is destroyed at most this long after its privacy.salt_deadline."""


@dataclass
class Services:
    """What the lifespan opens and the endpoints use; closed in reverse order at shutdown."""

    config: Config
    store: Store
    registry: SiteRegistry
    salts: SaltBook
    open_visits: OpenVisits
    writer: BatchWriter
    pipeline: Pipeline
    geo: GeoLocator | None
    drops: drop_counts.DropCounts


def build_pipeline(config: Config, salts: SaltBook, open_visits: OpenVisits) -> tuple[Pipeline, GeoLocator | None]:
    geo = None
    if config.geoip.database:
        geo = GeoLocator(Path(config.geoip.database), config.geoip.regions, config.geoip.cities)
    anonymizer = Anonymizer(config.privacy.ipv4_prefix, config.privacy.ipv6_prefix, salts, open_visits.continues)
    signals = Signals.of(
        config.ingest.respect_gpc, config.ingest.respect_dnt, normalize_spam_domains(config.ingest.spam_referrers)
    )
    devices = DeviceDetector(config.ingest.ua_cache_size)
    return Pipeline(devices, geo, anonymizer, signals, profile.per_hostname(config)), geo


async def upkeep(services: Services, now: datetime) -> None:
    """Re-reads the sites, destroys the salts that no open visit can need any more, and tries again a wipe that
    readers held up."""
    await services.registry.refresh()
    if services.drops.pending:  # a quiet server: the counts would otherwise wait for the next event
        await flush_drops(services)
    await _expire_salts(services, now)
    metrics.trim_memory()


async def _expire_salts(services: Services, now: datetime) -> date:
    """Deletes the salts past their privacy.salt_deadline: once deleted they are in no file (Store.
    delete_salts_before), so a salt lasts on disk until its deadline plus one upkeep period (a minute at most;
    README, Privacy model). Then wipes what else was deleted and may still be in a WAL (Store.wipe: purged raw
    events whose wipe readers held up, tried again at every upkeep; at start, what an earlier process deleted).
    Returns the first day whose salt is kept."""
    cutoff = await midnight.salts_expire_before(services.store, now)
    services.salts.forget_before(cutoff)
    services.open_visits.forget_before(cutoff)
    if await services.store.delete_salts_before(cutoff):
        log.info("deleted the salts of days before %s", cutoff)
    if services.store.wipe_pending:
        await services.store.wipe()
    return cutoff


async def _upkeep_loop(services: Services, clock: Clock) -> None:
    while True:
        await asyncio.sleep(min(services.config.ingest.site_refresh_seconds, UPKEEP_EVERY_S))
        try:
            await upkeep(services, clock())
        except Exception as exc:  # noqa: BLE001 -- upkeep must survive a failing database and try again
            log.warning("background upkeep failed, will retry: %s", exc)


async def _jobs_loop(services: Services, clock: Clock) -> None:
    """Rollup and purge on a timer; with several workers, the lease lets one of them do it."""
    config = services.config
    holder = f"server-{socket.gethostname()}-{os.getpid()}"
    while True:
        await asyncio.sleep(config.jobs.interval_minutes * 60)
        try:
            reports, cleaned = await jobs.run_jobs(
                services.store,
                clock(),
                holder,
                config.privacy.raw_retention_hours,
                config.privacy.aggregate_retention_months,
                min_visitors=config.privacy.min_visitors,
                collect=profile.defaults(config),
            )
            for report in reports:
                if report.days:
                    log.info("rolled up %s: %d day(s), %d visits", report.site, len(report.days), report.visits)
            log.info("purge: %s", cleaned)
        except jobs.Busy:
            log.debug("jobs skipped: another worker holds the lease")
        except Exception as exc:  # noqa: BLE001 -- the scheduler must survive and try again next time
            log.warning("scheduled rollup/purge failed, will retry: %s", exc)


async def flush_drops(services: Services) -> None:
    """Writes the drop counts now, through the batch writer (an empty batch if no event is waiting)."""
    services.drops.request_flush()
    with contextlib.suppress(AnalyticsError):  # the store is failing: the counts go with a later batch
        await services.writer.submit([])


def batch_insert(store: Store, drops: drop_counts.DropCounts, clock: Clock) -> Insert:
    """What the batch writer commits: the events, and the drop counts when they are due, in one transaction."""

    async def insert(events: Sequence[Event]) -> None:
        taken = drops.take() if drops.due() else {}
        try:
            await store.insert_events(events, drop_counts.rows(taken, clock()) if taken else ())
        except BaseException:
            drops.give_back(taken)
            raise

    return insert


def create_app(config: Config, clock: Clock = jobs.utc_now, store: Store | None = None) -> Starlette:
    store = store if store is not None else open_store(config.database)
    salts = SaltBook(lambda day, candidate: store.salt(day, candidate, int(time.time() * 1000)))
    open_visits = OpenVisits()
    pipeline, geo = build_pipeline(config, salts, open_visits)
    collect = profile.defaults(config)  # what every site collects unless it says otherwise
    registry = SiteRegistry(store.list_sites, config.ingest.site_refresh_seconds, collect=collect)
    drops = drop_counts.DropCounts()
    writer = BatchWriter(
        batch_insert(store, drops, clock),
        config.ingest.batch_max_events,
        config.ingest.batch_interval_ms / 1000,
        config.ingest.queue_max_events,
        config.ingest.shed_after_ms / 1000,
        committed=open_visits.record,
    )
    services = Services(config, store, registry, salts, open_visits, writer, pipeline, geo, drops)
    trusted = tuple(Network.parse(n) for n in config.server.trusted_proxies)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.open()
        try:
            applied = await store.migrate()
            for migration in applied:
                log.info("applied migration %04d %s", migration.version, migration.name)
            await registry.refresh()
            now = clock()
            today = now.astimezone(UTC).date()
            await salts.ensure(today)
            # Just after midnight, visits of yesterday may go on: which ones, from the store (they may have begun
            # before a restart); yesterday's salt is kept for them, or deleted now if none can. Salts whose
            # deadline passed while no server ran go now, and the files are wiped of whatever an earlier process
            # deleted (Store.wipe).
            await open_visits.load(store, now)
            if await _expire_salts(services, now) < today:
                await salts.ensure(today - timedelta(days=1))
            if geo is None:
                log.warning("no GeoIP database configured (geoip.database): countries will not be recorded")
            else:
                log.info("locations from %s", geo.description)
            await setup.start()
            writer.start()
            if store.reader_path() is not None:
                openday.warm_up()  # the open-day workers start now, not on the first dashboard view
            # Today's figures of the sites known now are computed at once: after a restart, the first dashboard
            # shows them (seconds old, refreshed like any cached figures) instead of waiting for them.
            prepare = stats.prepare(await store.list_sites(), now)
            tasks = [asyncio.create_task(prepare, name="prepare")]
            tasks.append(asyncio.create_task(_upkeep_loop(services, clock), name="upkeep"))
            tasks.append(asyncio.create_task(ingest.loop_lag.run(), name="loop-lag"))
            if config.jobs.interval_minutes:
                tasks.append(asyncio.create_task(_jobs_loop(services, clock), name="jobs"))
            # Everything made at start (modules, the bot patterns, tables, caches' first entries) lives as long as
            # the process: frozen, the collector no longer walks it. Each full collection walked it all and took
            # 60-140 ms every second or two under load, which was the whole of ingest's p99 at half its maximum
            # rate (75 ms instead of 16; bench/ingest_ab.py --rate 2000).
            gc.collect()
            gc.freeze()
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                await writer.close()
                if drops.pending:  # counted after the last batch
                    try:
                        await store.insert_events([], drop_counts.rows(drops.take(), clock()))
                    except StoreError as exc:
                        log.warning("the drop counters of the last second were not stored: %s", exc)
                log.info("shut down: %d events committed, %d failed", writer.committed, writer.failed)
        finally:
            await store.close()
            if geo is not None:
                geo.close()

    async def health(request: Request) -> JSONResponse:
        """200 once the database has answered a read; 503 when it fails or does not answer in time (a container's
        HEALTHCHECK, a load balancer). The cause goes to the log, not to the anonymous caller."""
        try:
            await asyncio.wait_for(store.ping(), HEALTH_TIMEOUT_S)
        except (StoreError, TimeoutError) as exc:
            cause = str(exc) or f"no answer within {HEALTH_TIMEOUT_S:g} s"
            log.warning("health check: the database does not answer: %s", cause)
            return JSONResponse(
                {"status": "unavailable", "error": "the database does not answer", "waiting_events": writer.waiting},
                status_code=503,
                headers={"Retry-After": str(config.ingest.retry_after_seconds)},
            )
        return JSONResponse({"status": "ok", "waiting_events": writer.waiting})

    ingest = IngestEndpoint(services, trusted, clock)
    readers = tuple(Network.parse(n) for n in config.server.metrics_networks)

    async def metrics_page(request: Request) -> Response:
        peer = request.client.host if request.client else None
        address = privacy.client_ip(peer, request.headers.get("x-forwarded-for"), trusted)
        if not readers or not privacy.is_excluded(address, readers):  # "excluded" = within those networks
            return JSONResponse({"error": "not found"}, status_code=404)
        text = metrics.render(service_metrics(services, ingest))
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    description = openapi.document()

    async def openapi_json(request: Request) -> JSONResponse:
        return JSONResponse(description)

    script = SiteScript.load()
    optout = SiteScript.load("optout")

    async def privacy_notice(request: Request) -> Response:
        """The site's notice for its visitors (privacy.public_page), in French or English by Accept-Language,
        generated from the live configuration like `analytics privacy report`."""
        domain = request.path_params["domain"].strip().lower()
        rules = registry.get(domain) or await registry.lookup(domain)
        lang = report.language(request.headers.get("accept-language", ""))
        if rules is None or not config.privacy.public_page:
            return HTMLResponse(report.not_found(lang, registered=rules is not None), status_code=404)
        base = config.server.public_url.rstrip("/") or str(request.base_url).rstrip("/")
        page = report.html_page(report.build(config, rules.site, {}, lang, base), public=True)
        return HTMLResponse(
            page,
            headers={
                "Content-Language": lang,
                "Vary": "Accept-Language",
                "Cache-Control": "max-age=300",
                "Content-Security-Policy": report.STYLE_CSP,
            },
        )

    https = config.server.public_url.startswith("https://")
    sessions = Sessions(store, clock, trusted, https)
    places = (config.geoip.regions, config.geoip.cities)
    pages = Pages(
        store,
        sessions,
        clock,
        script,
        config.server.public_url,
        places,
        config.privacy.min_visitors,
        collect,
    )
    stats = StatsApi(
        store,
        clock,
        sessions=sessions,
        shared_site=pages.shared_site,
        min_visitors=config.privacy.min_visitors,
        collect=collect,
    )
    settings = SettingsPages(pages, stats.answers.forget, collect, optout)
    # The address the operator is told to open: localhost when the server listens on every address, as in a
    # container whose port is published.
    setup = SetupPages(pages, f"{config.server.public_url or local_url(config.server, 'localhost')}{SETUP_PATH}")
    routes = [
        Route("/api/health", health, methods=["GET"]),
        Route("/metrics", metrics_page, methods=["GET"]),
        Route(openapi.PATH, openapi_json, methods=["GET"]),
        Route("/api/v2/query", stats.query, methods=["POST"]),
        Route("/api/v1/stats/realtime/visitors", stats.realtime, methods=["GET"]),
        Route(script.path, script.latest, methods=["GET", "HEAD"]),
        Route(script.versioned_route, script.versioned, methods=["GET", "HEAD"]),
        Route(optout.path, optout.latest, methods=["GET", "HEAD"]),
        Route(optout.versioned_route, optout.versioned, methods=["GET", "HEAD"]),
        Route("/privacy/{domain}", privacy_notice, methods=["GET"]),
        Route("/", pages.sites, methods=["GET"]),
        Route("/login", pages.login_form, methods=["GET"]),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Route(SETUP_PATH, setup.show, methods=["GET"]),
        Route(SETUP_PATH, setup.create, methods=["POST"]),
        Route("/sites", settings.add_site, methods=["POST"]),
        Route("/sites/{domain}", pages.dashboard, methods=["GET"]),
        Route("/sites/{domain}/settings", settings.show, methods=["GET"]),
        Route("/sites/{domain}/settings/{action}", settings.change, methods=["POST"]),
        Route("/share/{token}", pages.shared, methods=["GET"]),
        Route("/share/{token}", pages.shared_password, methods=["POST"]),
        Route("/share/{token}/api/v2/query", stats.query, methods=["POST"]),
        Route("/share/{token}/api/v1/stats/realtime/visitors", stats.realtime, methods=["GET"]),
        Mount(ASSETS, Assets(directory=str(resources.files("analytics") / "static" / "dashboard"))),
    ]
    app = App(ingest, routes=routes, lifespan=lifespan)
    app.state.services = services
    app.state.stats = stats  # its time budget, for tests
    return app


def service_metrics(services: Services, ingest: IngestEndpoint) -> list[metrics.Metric]:
    """What /metrics reports, each read when asked."""
    writer, counts = services.writer, ingest.counts
    Metric = metrics.Metric
    return [
        Metric(
            "analytics_events_committed_total", "counter", "Events stored (acknowledged).", lambda: writer.committed
        ),
        Metric(
            "analytics_ingest_requests_total",
            "counter",
            "Ingest requests whose events were all stored.",
            lambda: counts.accepted_requests,
        ),
        Metric(
            "analytics_ingest_dropped_total",
            "counter",
            "Ingest requests answered 202 without storing, by reason (X-Analytics-Dropped).",
            lambda: dict(counts.dropped),
            "reason",
        ),
        Metric(
            "analytics_ingest_rejected_total",
            "counter",
            "Ingest requests refused as malformed or too large, by status.",
            lambda: dict(counts.rejected),
            "status",
        ),
        Metric(
            "analytics_ingest_rate_limited_total",
            "counter",
            "Ingest requests answered 429, by the limit that refused them.",
            lambda: dict(ingest.limits.limited),
            "limit",
        ),
        Metric(
            "analytics_ingest_shed_total",
            "counter",
            "Ingest requests answered 503 at once because the server or the write queue was saturated.",
            lambda: counts.shed + writer.shed,
        ),
        Metric(
            "analytics_ingest_unavailable_total",
            "counter",
            "Ingest requests answered 503 (store failing, queue full, saturated, shutting down).",
            lambda: counts.refused.get("503", 0) + counts.shed,
        ),
        Metric(
            "analytics_store_failed_events_total",
            "counter",
            "Events whose batch the store failed to commit (their requests got 503).",
            lambda: writer.failed,
        ),
        Metric(
            "analytics_store_refused_events_total",
            "counter",
            "Events the store refused as they were (their request got 400; the rest of the batch was stored).",
            lambda: writer.rejected,
        ),
        Metric(
            "analytics_queue_events", "gauge", "Events accepted and waiting for their commit.", lambda: writer.waiting
        ),
        Metric(
            "analytics_event_loop_lag_seconds",
            "gauge",
            "How late the event loop runs a timer, averaged over its last turns.",
            lambda: ingest.loop_lag.lag,
        ),
        Metric(
            "analytics_process_busy_share",
            "gauge",
            "Share of one core the server's process used over the loop's last turns, of the time its loop was not "
            "waiting for a core (its lag sheds load only above 0.5: below, the lag is not its own work).",
            lambda: ingest.loop_lag.busy,
        ),
        Metric(
            "analytics_ingest_admitted_share",
            "gauge",
            "Share of ingest requests admitted (below 1 while the loop runs later than shed_loop_lag_ms and the "
            "process is busy).",
            lambda: ingest.loop_lag.share,
        ),
        Metric(
            "analytics_batch_commit_seconds", "histogram", "Time to commit one batch.", lambda: writer.batch_seconds
        ),
        Metric(
            "analytics_store_wal_blocked_total",
            "counter",
            "Times a reader kept the database's WAL from being emptied after raw events were deleted.",
            lambda: services.store.wal_blocked,
        ),
        Metric(
            "analytics_store_wipe_pending",
            "gauge",
            "1 while deleted raw events may still be in a WAL (the wipe is retried at each upkeep round).",
            lambda: int(services.store.wipe_pending),
        ),
        Metric("analytics_resident_memory_bytes", "gauge", "Resident memory of this process.", metrics.rss_bytes),
    ]


class App(Starlette):
    """Starlette, except that `/api/event` goes straight to its endpoint: the router and the two exception
    middlewares cost as much per request as the whole ingest pipeline (measured with bench/ingest.py), and
    the endpoint answers every error itself."""

    def __init__(self, ingest: IngestEndpoint, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ingest = ingest
        self.secured = SecurityHeaders(self._starlette)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in (INGEST_PATH, PIXEL_PATH):
            await self.ingest(scope, receive, send)
            return
        await self.secured(scope, receive, send)

    async def _starlette(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


class Assets(StaticFiles):
    """The dashboard's scripts and styles; URLs carry a content hash (?v=...), so browsers keep them for good."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


_SEGMENT = re.compile(r"[^/\\]+")
_SECRET_RUN = re.compile(r"[A-Za-z0-9_-]{16,}")
"""A run this long could be a token (a shared link's has 43 characters); one of lowercase letters and dashes only
is a word or a site's domain, and stays."""


def loggable_path(path: str) -> str:
    """The path as the access log writes it (never its query): a shared link's token is a capability (the
    database keeps only its hash), so the segment after `share` is written `…`, whatever the spelling that could
    reach it (any case, `/shares/`, `/./share/`, `/x/../share/`, backslashes), and so is any run of 16 or more
    letters, digits, - and _ that is not lowercase words. No other route carries a secret in its path (the setup
    code, passwords and API keys come in bodies and headers)."""
    after_share = False

    def segment(found: re.Match[str]) -> str:
        nonlocal after_share
        text = found.group()
        if text in (".", ".."):
            return text
        if after_share:
            after_share = False
            return "…"
        after_share = text.lower().startswith("share")
        return _SECRET_RUN.sub(_masked, text)

    return _SEGMENT.sub(segment, path)


def _masked(found: re.Match[str]) -> str:
    text = found.group()
    return text if all(c.islower() or c == "-" for c in text) else "…"


class AccessLog:
    """One log line per request: method, path without query nor secret segment, status, milliseconds. No address,
    no User-Agent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = logging.getLogger("analytics.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.log.info(
                "%s %s %d %.1fms",
                scope["method"],
                loggable_path(scope["path"]),
                status,
                (time.perf_counter() - started) * 1000,
            )
