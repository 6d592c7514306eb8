"""The `analytics` command: serve, migrate, and manage sites. Errors are one line on stderr and exit status 1."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from analytics import __version__, cli_privacy, profile
from analytics.config import Config, load, local_url
from analytics.errors import AnalyticsError, ConfigError
from analytics.sites import Site, SiteSettings, check_prop_keys, check_settings
from analytics.store import Store, open_store

DEFAULT_CONFIG = Path("config.toml")


def _config(args: argparse.Namespace) -> Config:
    path = args.config or os.environ.get("ANALYTICS_CONFIG")
    if path:
        return load(Path(path))
    return load(DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)


async def _with_store(config: Config, work: Callable[[Store], Awaitable[Any]]) -> Any:
    store = open_store(config.database)
    await store.open()
    try:
        await store.migrate()
        return await work(store)
    finally:
        await store.close()


def cmd_serve(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.host is not None:
        config = config.replace("server", host=args.host)
    if args.port is not None:
        config = config.replace("server", port=args.port)

    applied = asyncio.run(_migrate(config))  # a database problem is reported here, in one line
    from analytics.server import serve  # uvicorn is imported only when serving

    serve(config, applied)
    return 0


async def _migrate(config: Config) -> list[str]:
    store = open_store(config.database)
    await store.open()
    try:
        return [f"{m.version:04d} {m.name}" for m in await store.migrate()]
    finally:
        await store.close()


def cmd_health(args: argparse.Namespace) -> int:
    config = _config(args)
    url = f"{local_url(config.server)}/api/health"
    # No proxy, whatever the environment says: the server is on this machine.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=args.timeout) as response:
            waiting = json.loads(response.read()).get("waiting_events", 0)
    except urllib.error.HTTPError as exc:
        raise AnalyticsError(f"{url} answered {exc.code} {exc.reason}: the server is up but unhealthy") from None
    except (OSError, ValueError) as exc:  # URLError, a refused connection, a time-out, an answer that is not JSON
        reason = getattr(exc, "reason", exc)
        raise AnalyticsError(f"no answer from {url} ({reason}): is the server running on that port?") from None
    print(f"healthy: {url} answered 200 ({waiting} events waiting to be written)")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    config = _config(args)
    copies = asyncio.run(_with_store(config, lambda s: s.backup(Path(args.folder))))
    sizes = ", ".join(f"{c.name} ({c.stat().st_size / 1e6:.1f} MB)" for c in copies)
    print(f"backed up into {Path(args.folder).resolve()}: {sizes}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    applied = asyncio.run(_migrate(_config(args)))
    print("\n".join(f"applied {m}" for m in applied) if applied else "the database is up to date")
    return 0


def cmd_site_add(args: argparse.Namespace) -> int:
    config = _config(args)
    try:
        settings = check_settings(
            SiteSettings(
                args.domain,
                args.timezone,
                tuple(args.allow_host),
                tuple(args.exclude_ip),
                tuple(args.exclude_path),
                tuple(args.allow_prop),
            )
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    site = asyncio.run(_with_store(config, lambda s: s.add_site(settings, int(time.time() * 1000))))
    hosts = ", ".join(site.allowed_hostnames) or f"{site.domain} and its subdomains"
    props = ", ".join(site.allowed_props) or "none"
    print(f"added {site.domain} (time zone {site.timezone}; events accepted from {hosts}; custom properties: {props})")
    return 0


def cmd_site_props(args: argparse.Namespace) -> int:
    config = _config(args)
    domain = args.domain.strip().lower()

    async def work(store: Store) -> tuple[str, ...]:
        site = next((s for s in await store.list_sites() if s.domain == domain), None)
        if site is None:
            raise AnalyticsError(f"no site {domain}; `analytics site list` shows the registered ones")
        removed = {k.strip() for k in args.remove}
        unknown = sorted(removed - set(site.allowed_props))
        if unknown:
            raise AnalyticsError(f"{domain} does not store the property {unknown[0]!r}; nothing was changed")
        keys = [k for k in site.allowed_props if k not in removed] + list(args.allow)
        try:
            checked = check_prop_keys(keys)
        except ValueError as exc:
            raise AnalyticsError(str(exc)) from None
        if args.allow or args.remove:
            await store.set_allowed_props(site.id, checked)
        return checked

    keys = asyncio.run(_with_store(config, work))
    print(
        f"{domain} stores the custom properties: {', '.join(keys)}" if keys else f"{domain} stores no custom property"
    )
    if args.allow or args.remove:
        print(f"(running servers apply the change within {config.ingest.site_refresh_seconds:g} seconds)")
    return 0


def _run_with_store(config: Config, work: Callable[[Store], Awaitable[Any]]) -> Any:
    return asyncio.run(_with_store(config, work))


def cmd_site_collect(args: argparse.Namespace) -> int:
    return cli_privacy.site_collect(_config(args), _run_with_store, args)


def cmd_privacy_report(args: argparse.Namespace) -> int:
    config = _config(args)
    base_url = (args.url or config.server.public_url or local_url(config.server)).rstrip("/")
    return cli_privacy.privacy_report(config, _run_with_store, args, base_url)


def cmd_site_list(args: argparse.Namespace) -> int:
    config = _config(args)
    sites = asyncio.run(_with_store(config, lambda s: s.list_sites()))
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "domain": s.domain,
                        "timezone": s.timezone,
                        "allowed_hostnames": list(s.allowed_hostnames),
                        "excluded_ips": list(s.excluded_ips),
                        "excluded_paths": list(s.excluded_paths),
                        "allowed_props": list(s.allowed_props),
                    }
                    for s in sites
                ],
                indent=2,
            )
        )
        return 0
    if not sites:
        print("no sites yet; add one with: analytics site add example.com")
        return 0
    width = max(len(s.domain) for s in sites)
    for s in sites:
        extra = []
        if s.allowed_hostnames:
            extra.append("hosts " + ",".join(s.allowed_hostnames))
        if s.excluded_ips:
            extra.append("excluding IPs " + ",".join(s.excluded_ips))
        if s.excluded_paths:
            extra.append("excluding paths " + ",".join(s.excluded_paths))
        if s.allowed_props:
            extra.append("properties " + ",".join(s.allowed_props))
        print(f"{s.domain:<{width}}  {s.timezone}" + ("  " + "; ".join(extra) if extra else ""))
    return 0


def _confirmed(args: argparse.Namespace, question: str, refusal: str) -> bool:
    """--yes, or a yes typed at the terminal; without a terminal, an error naming --yes."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        raise AnalyticsError(f"{refusal}; add --yes to confirm")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def cmd_site_remove(args: argparse.Namespace) -> int:
    config = _config(args)
    if not _confirmed(
        args, f"Remove {args.domain} and delete all its data?", f"removing {args.domain} deletes all its data"
    ):
        print("nothing removed")
        return 1

    async def work(store: Store) -> tuple[Site, int]:
        removed = await store.remove_site(args.domain.strip().lower())
        await store.wipe()  # its raw events, zeroed in their pages, leave the WAL too (or at the next upkeep)
        return removed

    site, events = asyncio.run(_with_store(config, work))
    print(f"removed {site.domain} and {events} stored events")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    from analytics.query import value_dimension

    config = _config(args)
    domain, value = args.site.strip().lower(), args.value
    if not value_dimension(args.dimension):
        raise AnalyticsError(
            f"unknown dimension {args.dimension!r}: use a Stats API name such as event:page, visit:source, "
            "visit:city, event:goal or event:props:<key>"
        )
    what = f"{args.dimension} = {value!r}"
    if not _confirmed(
        args, f"Forget {what} from {domain}'s figures and raw events?", f"forgetting {what} cannot be undone"
    ):
        print("nothing forgotten")
        return 1

    async def work(store: Store) -> Any:
        site = next((s for s in await store.list_sites() if s.domain == domain), None)
        if site is None:
            raise AnalyticsError(f"no site {domain}; `analytics site list` shows the registered ones")
        forgotten = await store.forget_value(site, args.dimension, value)
        await store.wipe()  # the rows as they were leave the WAL too (or at a running server's next upkeep)
        return forgotten

    print(asyncio.run(_with_store(config, work)))
    return 0


def cmd_site_snippet(args: argparse.Namespace) -> int:
    config = _config(args)
    sites = asyncio.run(_with_store(config, lambda s: s.list_sites()))
    domain = args.domain.strip().lower()
    if not any(s.domain == domain for s in sites):
        raise AnalyticsError(f"no site {domain}; add it first with: analytics site add {domain}")
    if args.url:
        config = config.replace("server", public_url=args.url)
    base = config.server.public_url or local_url(config.server, "localhost")
    from analytics.tracker import SiteScript

    if args.optout:
        print(SiteScript.load("optout").tag(base))
    else:
        print(SiteScript.load().snippet(domain, base))
    return 0


def _jobs(args: argparse.Namespace, rollup: bool, purge: bool) -> int:
    config = _config(args)
    from analytics.jobs import run_jobs, utc_now

    domain = args.site.strip().lower() if getattr(args, "site", None) else None

    async def work(store: Store) -> list[str]:
        if domain and domain not in {s.domain for s in await store.list_sites()}:
            raise AnalyticsError(f"no site {domain}; `analytics site list` shows the registered ones")
        reports, cleaned = await run_jobs(
            store,
            utc_now(),
            f"cli-{os.getpid()}",
            config.privacy.raw_retention_hours,
            config.privacy.aggregate_retention_months,
            sites=domain,
            again=getattr(args, "again", False),
            do_rollup=rollup,
            do_purge=purge,
            min_visitors=config.privacy.min_visitors,
            collect=profile.defaults(config),
        )
        lines = [
            f"{r.site}: rolled up {len(r.days)} day(s), {r.days[0]} to {r.days[-1]}: {r.visits} visits, "
            f"{r.rows} aggregate rows"
            if r.days
            else f"{r.site}: nothing to roll up"
            for r in reports
        ]
        if cleaned is not None:
            logging.getLogger("analytics.purge").info("%s", cleaned)
            lines.append(str(cleaned))
        return lines

    print("\n".join(asyncio.run(_with_store(config, work))) or "no sites")
    return 0


def cmd_rollup(args: argparse.Namespace) -> int:
    return _jobs(args, rollup=True, purge=False)


def cmd_purge(args: argparse.Namespace) -> int:
    return _jobs(args, rollup=False, purge=True)


def cmd_apikey_create(args: argparse.Namespace) -> int:
    config = _config(args)
    from analytics import apikeys

    key = apikeys.new_key()

    async def work(store: Store) -> str:
        sites = {s.domain: s.id for s in await store.list_sites()}
        wanted = [d.strip().lower() for d in args.site]
        missing = [d for d in wanted if d not in sites]
        if missing:
            raise AnalyticsError(f"no site {missing[0]}; `analytics site list` shows the registered ones")
        created = await store.add_api_key(
            args.name or ", ".join(wanted),
            apikeys.digest(key),
            apikeys.display_prefix(key),
            [sites[d] for d in wanted],
            int(time.time() * 1000),
        )
        return f"{created.id}"

    key_id = asyncio.run(_with_store(config, work))
    print(key)
    print(
        f"(key {key_id} for {', '.join(args.site)}; shown only now: store it in your secrets manager)", file=sys.stderr
    )
    return 0


def cmd_apikey_list(args: argparse.Namespace) -> int:
    config = _config(args)

    async def work(store: Store) -> list[str]:
        domains = {s.id: s.domain for s in await store.list_sites()}
        return [
            f"{k.id:>4}  {k.prefix}…  {k.name}  sites: {', '.join(domains.get(i, '?') for i in k.site_ids)}"
            + ("  (revoked)" if k.revoked_at else "")
            for k in await store.list_api_keys()
        ]

    print(
        "\n".join(asyncio.run(_with_store(config, work)))
        or "no API keys; create one with: analytics apikey create --site example.com"
    )
    return 0


def cmd_apikey_revoke(args: argparse.Namespace) -> int:
    config = _config(args)
    if not asyncio.run(_with_store(config, lambda s: s.revoke_api_key(args.id, int(time.time() * 1000)))):
        raise AnalyticsError(f"no active API key {args.id}; `analytics apikey list` shows them")
    print(f"revoked API key {args.id}")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    from analytics import accounts

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        import getpass

        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat the password: ") != password:
            raise AnalyticsError("the two passwords differ; nothing was changed")
    try:
        return accounts.check_password(password)
    except ValueError as exc:
        raise AnalyticsError(str(exc)) from None


def cmd_user_add(args: argparse.Namespace) -> int:
    config = _config(args)
    from analytics import accounts

    try:
        email = accounts.check_email(args.email)
    except ValueError as exc:
        raise AnalyticsError(str(exc)) from None

    async def sites(store: Store) -> dict[str, int]:
        return {s.domain: s.id for s in await store.list_sites()}

    known = asyncio.run(_with_store(config, sites))
    wanted = [d.strip().lower() for d in args.site]
    missing = [d for d in wanted if d not in known]
    if missing:
        raise AnalyticsError(f"no site {missing[0]}; `analytics site list` shows the registered ones")
    password_hash = accounts.hash_password(_read_password(args))

    async def work(store: Store) -> None:
        ids = [known[d] for d in wanted] if wanted else None
        await store.add_user(email, password_hash, ids, int(time.time() * 1000))

    asyncio.run(_with_store(config, work))
    scope = ", ".join(wanted) if wanted else "every site (administrator: may add and remove sites)"
    print(f"added {email}: {scope}")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    config = _config(args)

    async def work(store: Store) -> list[str]:
        domains = {s.id: s.domain for s in await store.list_sites()}
        return [
            f"{u.email}  "
            + (
                "every site (administrator)"
                if u.site_ids is None
                else ", ".join(domains.get(i, "?") for i in u.site_ids)
            )
            for u in await store.list_users()
        ]

    print("\n".join(asyncio.run(_with_store(config, work))) or "no users; add one with: analytics user add EMAIL")
    return 0


def cmd_user_password(args: argparse.Namespace) -> int:
    config = _config(args)
    from analytics import accounts

    password_hash = accounts.hash_password(_read_password(args))
    asyncio.run(_with_store(config, lambda s: s.set_password(args.email.strip().lower(), password_hash)))
    print(f"changed the password of {args.email}")
    return 0


def cmd_user_remove(args: argparse.Namespace) -> int:
    config = _config(args)
    asyncio.run(_with_store(config, lambda s: s.remove_user(args.email.strip().lower())))
    print(f"removed {args.email} (and logged them out)")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="analytics",
        description="Privacy-first web analytics server: cookieless, no IPs or User-Agents stored.",
        epilog="Configuration: config.toml in the working directory (or --config / ANALYTICS_CONFIG), "
        "overridden by ANALYTICS_<SECTION>_<KEY> environment variables.",
    )
    top.add_argument("--version", action="version", version=f"analytics {__version__}")
    top.add_argument("--config", metavar="PATH", help="configuration file (default: ./config.toml if present)")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="apply migrations and serve the ingest endpoint",
        description="Apply pending migrations, then serve HTTP until SIGTERM or Ctrl-C; "
        "queued events are committed before exit.",
    )
    serve.add_argument("--host", help="address to listen on (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: server.port, 8000)")
    serve.set_defaults(run=cmd_serve)

    health = commands.add_parser(
        "health",
        help="check that the server on this machine answers (a container's HEALTHCHECK)",
        description="Ask the server on this machine (server.host, server.port) for /api/health: exit 0 when it "
        "answers 200, which needs its database to answer too; else exit 1 with the reason.",
    )
    health.add_argument("--timeout", type=float, default=4.0, help="seconds to wait for the answer (default: 4)")
    health.set_defaults(run=cmd_health)

    backup = commands.add_parser(
        "backup",
        help="copy the database into a folder, while the server runs",
        description="Write a consistent copy of the events' and the aggregates' files into FOLDER (created if "
        "needed; copies of the same names are replaced), without stopping the server: ingest goes on meanwhile. "
        "The copy holds no salt (the salts' file is not copied), and no raw event of a day whose salt still exists "
        "(today's). To restore, stop the server and put the copies in place of the database files (and remove "
        "their -wal and -shm, and the salts' file: the restored server makes a new salt).",
    )
    backup.add_argument("folder", metavar="FOLDER", help="where to write the copies (not the database's own folder)")
    backup.set_defaults(run=cmd_backup)

    migrate = commands.add_parser(
        "migrate",
        help="apply pending database migrations",
        description="Apply the numbered SQL migrations not yet applied, and move what a database of an earlier "
        "version keeps in the events' file into its own file: the aggregates, the salts (then erased from the "
        "events' file). serve does it too.",
    )
    migrate.set_defaults(run=cmd_migrate)

    roll = commands.add_parser(
        "rollup",
        help="aggregate closed days of raw events (run from cron)",
        description="Turn the raw events of every closed day (in each site's time zone) into aggregates. "
        "Idempotent: a day already rolled up is skipped, or redone with --again.",
    )
    roll.add_argument("--site", metavar="DOMAIN", help="only this site")
    roll.add_argument("--again", action="store_true", help="redo days already rolled up")
    roll.set_defaults(run=cmd_rollup)

    purge = commands.add_parser(
        "purge",
        help="delete expired raw events, salts and aggregates (run from cron)",
        description="Delete raw events older than privacy.raw_retention_hours whose day is rolled up (never "
        "before), salts no visit can need, aggregates older than privacy.aggregate_retention_months, and "
        "dimension values nothing refers to. Safe to interrupt and re-run; prints what it removed.",
    )
    purge.set_defaults(run=cmd_purge)

    forget = commands.add_parser(
        "forget",
        help="erase one value (an e-mail in a path, a name...) from a site's figures",
        description="Erase a value from a site: its counts move into the (other) row of every breakdown it was in "
        "(so totals do not change), figures filtered by it are deleted, raw events that carry it get (other) instead, "
        "and the value itself once no site uses it. A page path is forgotten as page, entry and exit page; a source "
        "as source, referrer and UTM source. Prints what it changed, and under which other dimensions the site still "
        "stores the same value. A running server's figures for today drop it within a few minutes.",
    )
    forget.add_argument("--site", metavar="DOMAIN", required=True)
    forget.add_argument(
        "--dimension",
        required=True,
        metavar="NAME",
        help="as in the Stats API: event:page, visit:source, event:props:plan...",
    )
    forget.add_argument("--value", required=True, help="the value exactly as the dashboard lists it")
    forget.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    forget.set_defaults(run=cmd_forget)

    apikey = commands.add_parser(
        "apikey",
        help="create, list or revoke Stats API keys",
        description="Manage keys for the Stats API (POST /api/v2/query).",
    )
    apikey_commands = apikey.add_subparsers(dest="apikey_command", required=True, metavar="ACTION")
    create = apikey_commands.add_parser(
        "create", help="create a key (printed once)", description="Create a key for the given sites and print it, once."
    )
    create.add_argument(
        "--site", action="append", required=True, metavar="DOMAIN", help="a site the key may read; repeat for several"
    )
    create.add_argument("--name", help="a label for the key (default: its sites)")
    create.set_defaults(run=cmd_apikey_create)
    keys = apikey_commands.add_parser("list", help="list keys", description="List keys (never the keys themselves).")
    keys.set_defaults(run=cmd_apikey_list)
    revoke = apikey_commands.add_parser("revoke", help="revoke a key", description="Revoke a key by its id.")
    revoke.add_argument("id", type=int)
    revoke.set_defaults(run=cmd_apikey_revoke)

    user = commands.add_parser(
        "user",
        help="add, list or remove dashboard users; change a password",
        description="Manage the accounts that log into the dashboard.",
    )
    user_commands = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    uadd = user_commands.add_parser(
        "add",
        help="create an account (the password is prompted for)",
        description="Create a dashboard account. Without --site the user sees every site and may add and "
        "remove sites (an administrator); with --site, only those sites.",
    )
    uadd.add_argument("email")
    uadd.add_argument(
        "--site", action="append", default=[], metavar="DOMAIN", help="a site the user may see; repeatable"
    )
    uadd.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    uadd.set_defaults(run=cmd_user_add)
    ulist = user_commands.add_parser("list", help="list accounts", description="List accounts and their sites.")
    ulist.set_defaults(run=cmd_user_list)
    upass = user_commands.add_parser("password", help="change a password", description="Set a new password.")
    upass.add_argument("email")
    upass.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    upass.set_defaults(run=cmd_user_password)
    uremove = user_commands.add_parser(
        "remove", help="remove an account", description="Remove an account and end its sessions."
    )
    uremove.add_argument("email")
    uremove.set_defaults(run=cmd_user_remove)

    site = commands.add_parser(
        "site",
        help="add, list, remove sites; their custom properties; print their tracking snippet",
        description="Manage the tracked sites.",
    )
    site_commands = site.add_subparsers(dest="site_command", required=True, metavar="ACTION")
    add = site_commands.add_parser(
        "add", help="register a site", description="Register a site; events naming this domain are counted from now on."
    )
    add.add_argument("domain", help="the site's domain, e.g. example.com (what the tracker sends as data-domain)")
    add.add_argument("--timezone", default="UTC", help="IANA time zone for days and hours in reports (default: UTC)")
    add.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="PATTERN",
        help="hostname events may come from; * is a wildcard; repeat for several "
        "(default: the domain and its subdomains)",
    )
    add.add_argument(
        "--exclude-ip",
        action="append",
        default=[],
        metavar="NETWORK",
        help="address or CIDR network whose visits are not counted (e.g. your office); repeatable",
    )
    add.add_argument(
        "--exclude-path",
        action="append",
        default=[],
        metavar="GLOB",
        help="page paths not counted, e.g. '/admin/*'; repeatable",
    )
    add.add_argument(
        "--allow-prop",
        action="append",
        default=[],
        metavar="KEY",
        help="a custom property key to store (events' other properties are dropped and counted); repeatable "
        "(default: none)",
    )
    add.set_defaults(run=cmd_site_add)
    props = site_commands.add_parser(
        "props",
        help="show or change the custom properties a site stores",
        description="Show the custom property keys the site stores, or change them: properties with other keys "
        "are dropped before anything is stored, and counted per day (the tracker's url of outbound-link and "
        "download events is always kept, as scheme, host and path).",
    )
    props.add_argument("domain")
    props.add_argument("--allow", action="append", default=[], metavar="KEY", help="store this key; repeatable")
    props.add_argument("--remove", action="append", default=[], metavar="KEY", help="stop storing this key; repeatable")
    props.set_defaults(run=cmd_site_props)
    lst = site_commands.add_parser("list", help="list sites", description="List the registered sites.")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(run=cmd_site_list)
    remove = site_commands.add_parser(
        "remove", help="remove a site and its data", description="Remove a site and delete every event stored for it."
    )
    remove.add_argument("domain")
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    remove.set_defaults(run=cmd_site_remove)
    cli_privacy.add_collect_parser(site_commands, cmd_site_collect)
    cli_privacy.add_privacy_parser(commands, cmd_privacy_report)
    snippet = site_commands.add_parser(
        "snippet",
        help="print the tracking snippet for a site",
        description="Print the <script> tag to paste into the site's pages: a versioned tracker URL that "
        "never changes, with its Subresource Integrity hash. With --optout, the tag of the opt-out switch for "
        "the site's privacy page, pinned the same way.",
    )
    snippet.add_argument("domain")
    snippet.add_argument("--url", help="this server's public origin (default: server.public_url)")
    snippet.add_argument(
        "--optout", action="store_true", help="print the opt-out switch's tag instead (optout.js, README)"
    )
    snippet.set_defaults(run=cmd_site_snippet)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except AnalyticsError as exc:
        print(f"analytics: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
