"""Configuration: every option declared once, as data, then read from defaults, `config.toml` and the environment.

Each option is a dataclass field whose metadata holds its documentation and its check; the loader, the
environment-variable names (`ANALYTICS_<SECTION>_<KEY>`) and the docs test all read the same declarations.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from analytics.errors import ConfigError

Check = Callable[[Any], str | None]
"""Returns None when the value is fine, else a sentence saying what a valid value looks like."""


def _opt(default: Any, doc: str, check: Check | None = None) -> Any:
    return field(default=default, metadata={"doc": doc, "check": check})


def _between(low: float, high: float) -> Check:
    def check(value: float) -> str | None:
        return None if low <= value <= high else f"must be between {low:g} and {high:g}"

    return check


def _networks(values: tuple[str, ...]) -> str | None:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            return f"{value!r} is not an IP network; write addresses or CIDR networks such as '10.0.0.0/8'"
    return None


def _one_of(*choices: str) -> Check:
    def check(value: str) -> str | None:
        return None if value.upper() in choices else f"must be one of {', '.join(choices)}"

    return check


def _choice(*choices: str) -> Check:
    def check(value: str) -> str | None:
        return None if value in choices else f"must be one of {', '.join(repr(c) for c in choices)}"

    return check


SWITCH = _choice("profile", "on", "off")


def _public_url(value: str) -> str | None:
    if not value or (value.startswith(("http://", "https://")) and "/" not in value.split("://", 1)[1].rstrip("/")):
        return None
    return "must be an origin such as https://stats.example.com (scheme and host, no path)"


def _database_url(value: str) -> str | None:
    if value.startswith("sqlite:///") and len(value) > len("sqlite:///"):
        return None
    if value.startswith(("postgres://", "postgresql://")):
        return "PostgreSQL is not supported yet; use an SQLite URL such as 'sqlite:///data/analytics.db'"
    return "must be an SQLite URL such as 'sqlite:///data/analytics.db' (relative) or 'sqlite:////var/lib/analytics.db'"


def _header_name(value: str) -> str | None:
    if re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]*", value):
        return None
    return "must be an HTTP header name such as X-Datacenter (letters, digits and -), or empty for off"


def _log_level(value: str) -> str | None:
    return None if value.lower() in ("debug", "info", "warning", "error") else "must be debug, info, warning or error"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = _opt(
        "127.0.0.1", "Address to listen on. Use 0.0.0.0 (or ::) to accept connections from other machines."
    )
    port: int = _opt(8000, "TCP port to listen on.", _between(1, 65535))
    trusted_proxies: tuple[str, ...] = _opt(
        ("127.0.0.1/32", "::1/128"),
        "Networks whose X-Forwarded-For header is believed (your reverse proxy). From any other peer the header "
        "is ignored and the connection's address is used, so visitors cannot forge their address.",
        _networks,
    )
    public_url: str = _opt(
        "",
        "The address visitors' browsers reach this server at, e.g. https://stats.example.com; used in the tracking "
        "snippet and shared links, and makes the session cookie Secure when https. Empty: the address the "
        "dashboard was opened at (`analytics site snippet`: http://<host>:<port>, localhost for 0.0.0.0).",
        _public_url,
    )
    access_log: bool = _opt(
        False, "Log one line per request (method, path without query, status, duration). Never logs IPs or User-Agents."
    )
    max_header_bytes: int = _opt(
        32_768,
        "Largest request head (request line and headers) read; a larger one is answered 431 and its connection "
        "closed before the rest is read.",
        _between(4096, 1_048_576),
    )
    header_timeout_seconds: float = _opt(
        10.0,
        "Longest time a request's head (request line and headers) may take to arrive once it has begun; a slower "
        "one is answered 408 and its connection closed, so that slow clients cannot hold connections.",
        _between(1, 300),
    )
    max_connections_per_address: int = _opt(
        256,
        "Open connections accepted from one address at once; beyond, new ones are closed at once (a slowloris "
        "holds thousands). Connections from server.trusted_proxies are not capped: set the limit on the proxy. "
        "Counted in memory only. 0: no cap.",
        _between(0, 1_000_000),
    )
    max_connections: int = _opt(
        0,
        "Open connections accepted at once, from everyone (trusted proxies included); beyond, new ones are closed "
        "at once, so that a flood of connections cannot exhaust the file descriptors the database needs. "
        "0: the process's limit on open files (raised to its hard limit at start) less 256 kept for the database, "
        "logs and worker processes.",
        _between(0, 10_000_000),
    )
    metrics_networks: tuple[str, ...] = _opt(
        (),
        "Networks allowed to read /metrics (Prometheus text format: events accepted, dropped by reason, queue "
        "depth, batch latency, store errors, rate-limited and shed requests). Empty: /metrics is off (404). For a "
        "Prometheus on the same machine: ['127.0.0.1/32', '::1/128']. Behind a proxy, the address is the "
        "client's as X-Forwarded-For gives it from server.trusted_proxies.",
        _networks,
    )


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    url: str = _opt(
        "sqlite:///data/analytics.db",
        "Where data is stored. sqlite:///relative/path.db or sqlite:////absolute/path.db; the folder is created.",
        _database_url,
    )
    sqlite_synchronous: str = _opt(
        "NORMAL",
        "SQLite durability. NORMAL (WAL mode): an acknowledged event survives a crash of the server process. "
        "FULL: it also survives a power loss or kernel crash, at some cost in write throughput.",
        _one_of("NORMAL", "FULL", "EXTRA"),
    )
    sqlite_busy_timeout_ms: int = _opt(
        5000,
        "How long a write waits for another process holding the SQLite write lock before failing.",
        _between(0, 600_000),
    )


@dataclass(frozen=True, slots=True)
class IngestConfig:
    batch_max_events: int = _opt(
        500, "A batch is committed as soon as it holds this many events.", _between(1, 100_000)
    )
    batch_interval_ms: float = _opt(
        4.0,
        "Longest wait before a batch is committed, in milliseconds. Every accepted event is answered only after "
        "its batch is committed, so this bounds the latency it adds.",
        _between(0, 1000),
    )
    queue_max_events: int = _opt(
        20_000,
        "Events waiting for a commit, at most. Beyond this (or while the database fails) ingest answers 503 "
        "with Retry-After instead of buffering without bound.",
        _between(1, 10_000_000),
    )
    retry_after_seconds: int = _opt(2, "Retry-After value sent with a 503.", _between(1, 3600))
    max_body_bytes: int = _opt(
        65_536, "Largest request body accepted; larger ones get 413.", _between(1024, 10_485_760)
    )
    respect_gpc: bool = _opt(True, "Do not count requests carrying Global Privacy Control (Sec-GPC: 1).")
    respect_dnt: bool = _opt(True, "Do not count requests carrying Do Not Track (DNT: 1).")
    spam_referrers: tuple[str, ...] = _opt(
        (),
        "Extra referrer domains whose traffic is dropped as spam, on top of the built-in list. "
        "A domain also matches its subdomains.",
    )
    site_refresh_seconds: float = _opt(
        10.0,
        "How often each worker re-reads the site list (sites added, removed or changed with the CLI). An event "
        "for a domain not yet known triggers a re-read at once, at most once a second.",
        _between(0.5, 3600),
    )
    ua_cache_size: int = _opt(
        20_000,
        "Parsed User-Agents kept in memory (never on disk). Parsing an unseen one costs ~40 us. The cache holds "
        "at most ua_cache_size x max_user_agent_bytes of strings (20 MB by default).",
        _between(0, 1_000_000),
    )
    max_user_agent_bytes: int = _opt(
        1024,
        "Only this many bytes of a User-Agent are looked at (parsed, hashed, cached); real browsers send 100-400.",
        _between(128, 16_384),
    )
    rate_limit_address_per_minute: int = _opt(
        1200,
        "Events accepted per minute from one network (the address truncated as privacy.ipv4_prefix / ipv6_prefix "
        "say), with bursts up to the same number; beyond, 429 with Retry-After. Counted in memory only, per "
        "worker process. 0: no limit.",
        _between(0, 100_000_000),
    )
    rate_limit_site_per_minute: int = _opt(
        180_000,
        "Events accepted per minute for one site (bursts up to the same number); beyond, 429 with Retry-After. "
        "In memory only, per worker process. The default, 3,000 a second, is about half of what one worker stores "
        "on a 2-core machine: a flood on one site leaves room for the others. 0: no limit.",
        _between(0, 100_000_000),
    )
    shed_after_ms: int = _opt(
        1000,
        "Load shedding: an event whose request waited longer than this for the server (saturated), or that would "
        "wait longer than this for its commit, is answered 503 with Retry-After at once, so that latency stays "
        "bounded instead of growing for everyone. Browsers' sendBeacon does not retry, so this is a last resort: "
        "well above the latency of a healthy server (p99 ~15 ms at half its maximum rate).",
        _between(10, 60_000),
    )
    shed_loop_lag_ms: int = _opt(
        100,
        "Load shedding: while the server's event loop runs later than this (a timer's lag, averaged over a few "
        "turns: what a request that just arrived waits before its turn; a few ms when healthy) and the server is "
        "busy (late for its own work, not waiting for a core other programs hold), ingest "
        "admits a shrinking share of requests and answers the others 503 with Retry-After at once; the share "
        "grows back as soon as the loop keeps time.",
        _between(10, 60_000),
    )
    datacenter_header: str = _opt(
        "",
        "Name of a request header that your reverse proxy sets on traffic from data centres and hosting networks "
        "(e.g. X-Datacenter, set from the client's network by a Cloudflare rule or an ASN lookup at the proxy). "
        "When it says 1, true or yes, the event is dropped as `datacenter`. Believed only from "
        "server.trusted_proxies, like X-Forwarded-For. Empty: off.",
        _header_name,
    )


@dataclass(frozen=True, slots=True)
class PrivacyConfig:
    profile: str = _opt(
        "cnil",
        "cnil: the defaults and limits of the CNIL's exemption from consent for audience measurement (France); "
        "settings that would break it are refused, or marked as not met in the privacy report (README, Privacy "
        "profile). standard: every field collected by default, nothing refused; the report still gives each "
        "criterion's verdict.",
        _choice("cnil", "standard"),
    )
    identity_scope: str = _opt(
        "profile",
        "What a visitor hash is unique to: hostname (a visitor of blog.example.com and of example.com is two "
        "people, so no identifier spans two sites), site (one hash across every hostname of a site, so a visit "
        "that moves between them stays one), or profile (cnil: hostname; standard: site).",
        _choice("profile", "hostname", "site"),
    )
    public_page: bool = _opt(
        True,
        "Serve each site's privacy notice for its visitors at /privacy/DOMAIN (in French or English, from the "
        "configuration): the information the CNIL asks for. Off: the report marks visitors as not informed.",
    )
    ipv4_prefix: int = _opt(
        24,
        "Bits of an IPv4 address kept before it is used at all (for the visitor hash and the country). 24 turns "
        "203.0.113.7 into 203.0.113.0; 32 keeps it whole; 0 ignores it.",
        _between(0, 32),
    )
    ipv6_prefix: int = _opt(
        48, "Bits of an IPv6 address kept before it is used at all; 128 keeps it whole.", _between(0, 128)
    )
    raw_retention_hours: int = _opt(
        48,
        "Raw (hashed) events are deleted by `analytics purge` once they are this old and their day has been rolled "
        "up; never before. At least 48, so that `24h` reports and their comparison come from raw events.",
        _between(48, 24 * 31),
    )
    min_visitors: int = _opt(
        5,
        "k: no figure kept or shown counts fewer than this many visitors, except a site's totals per hour, day "
        "and month. Rarer values are merged into an `(other)` row when their day is rolled up, and in every "
        "answer (see README, Privacy model). 1: off. Raising it applies to answers at once; lowering it cannot "
        "bring back what was merged.",
        _between(1, 50),
    )
    aggregate_retention_months: int = _opt(
        25,
        "Aggregates older than this many months are deleted by `analytics purge` (25: the CNIL's limit).",
        _between(1, 240),
    )


def _switch(doc: str, cnil: bool) -> Any:
    """A minimisation switch: on, off, or the profile's default (`cnil`: its default under the cnil profile;
    the standard profile collects everything). analytics/profile.py has the same defaults, with their reasons."""
    default = "on" if cnil else "cnil off, standard on"
    return _opt(
        "profile", f"{doc} on, off, or profile (the profile's default: {default}; README, Minimisation).", SWITCH
    )


@dataclass(frozen=True, slots=True)
class CollectConfig:
    """What is collected, for every site (each site may override it: `analytics site collect`, or settings)."""

    referrers: str = _switch("The referrer's host (news.example.org), and the source named after it.", True)
    utm: str = _switch("UTM values (utm_source, medium, campaign, content, term): campaign measurement.", False)
    locations: str = _switch("Region and city (the country is always kept when a GeoIP database is set).", True)
    browser_versions: str = _switch("The browser's major version (the browser's name is always kept).", True)
    os_versions: str = _switch("The operating system's version (its name is always kept).", True)
    screens: str = _switch("The screen class (mobile, tablet, laptop, desktop).", True)
    properties: str = _switch("Custom properties (only the keys a site allows are ever stored).", False)
    events: str = _switch("Custom events (the tracker's outbound-link and download events included) and goals.", False)
    revenue: str = _switch("Revenue sent with events.", False)


@dataclass(frozen=True, slots=True)
class JobsConfig:
    interval_minutes: int = _opt(
        15,
        "How often the server runs the rollup and the purge itself (under a lease in the database, so several "
        "workers and cron never run them twice at once). 0: never; then run `analytics rollup` and "
        "`analytics purge` from cron.",
        _between(0, 1440),
    )


@dataclass(frozen=True, slots=True)
class GeoipConfig:
    database: str = _opt(
        "",
        "Path to a MaxMind-format (.mmdb) country or city database (DB-IP Lite, MaxMind GeoLite2, ip-location-db). "
        "Empty: no location is recorded.",
    )
    regions: bool = _opt(False, "Also record the region (ISO 3166-2 code) when the database has it.")
    cities: bool = _opt(False, "Also record the city (English name) when the database has it.")


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = _opt("info", "debug, info, warning or error.", _log_level)


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    geoip: GeoipConfig = field(default_factory=GeoipConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def replace(self, section: str, **values: Any) -> Config:
        """A copy with some options of one section changed (used for CLI flags and tests), checked like the rest."""
        current = getattr(self, section)
        for key, value in values.items():
            _check(section, _field(section, key), value, f"option {section}.{key}")
        changed = dataclasses.replace(self, **{section: dataclasses.replace(current, **values)})
        check_profile(changed)
        return changed


@dataclass(frozen=True, slots=True)
class OptionDoc:
    section: str
    key: str
    default: Any
    doc: str
    env: str


def sections() -> dict[str, type[Any]]:
    return {f.name: f.default_factory for f in dataclasses.fields(Config)}  # type: ignore[misc]


def env_name(section: str, key: str) -> str:
    return f"ANALYTICS_{section.upper()}_{key.upper()}"


def options() -> list[OptionDoc]:
    """Every option, in declaration order: what `config.toml`, the README and the docs test are checked against."""
    return [
        OptionDoc(name, f.name, f.default, f.metadata["doc"], env_name(name, f.name))
        for name, cls in sections().items()
        for f in dataclasses.fields(cls)
    ]


def _field(section: str, key: str) -> dataclasses.Field[Any]:
    for f in dataclasses.fields(sections()[section]):
        if f.name == key:
            return f
    raise ConfigError(f"unknown option {section}.{key}")


def _type_of(section: str, key: str) -> Any:
    return get_type_hints(sections()[section])[key]


def _describe(kind: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(kind, "a list of strings")


def _coerce(kind: Any, value: Any, from_env: bool) -> Any:
    """Turns a TOML value (or an environment string) into the declared type; raises ValueError when it can't."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if from_env and value.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.strip().lower() in ("1", "true", "yes", "on")
        raise ValueError
    if kind is int:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int):
            return value
        if from_env:
            return int(value.strip())
        raise ValueError
    if kind is float:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int | float):
            return float(value)
        if from_env:
            return float(value.strip())
        raise ValueError
    if kind is str:
        if isinstance(value, str):
            return value
        raise ValueError
    # tuple[str, ...]: a TOML array of strings, or a comma-separated environment value.
    if from_env and isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError


def _check(section: str, f: dataclasses.Field[Any], value: Any, where: str) -> None:
    check: Check | None = f.metadata["check"]
    problem = check(value) if check else None
    if problem:
        raise ConfigError(f"{section}.{f.name} = {value!r} ({where}) {problem}.")


def load(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Defaults, overridden by the TOML file at `path` (if any), overridden by `ANALYTICS_*` variables."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist; create it or point --config elsewhere") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    known = sections()
    for section, table in raw.items():
        if section not in known:
            raise ConfigError(f"unknown section [{section}] in {path}; known sections: {', '.join(known)}")
        if not isinstance(table, dict):
            raise ConfigError(f"[{section}] in {path} must be a table of options")
        for key in table:
            if key not in {f.name for f in dataclasses.fields(known[section])}:
                names = ", ".join(f.name for f in dataclasses.fields(known[section]))
                raise ConfigError(f"unknown option {section}.{key} in {path}; [{section}] has: {names}")
    for name in environ:
        if name.startswith("ANALYTICS_") and name != "ANALYTICS_CONFIG" and name not in {o.env for o in options()}:
            raise ConfigError(f"unknown environment variable {name}; see config.toml for the options")

    built: dict[str, Any] = {}
    for section, cls in known.items():
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            kind = _type_of(section, f.name)
            env = env_name(section, f.name)
            if env in environ:
                source, value, from_env = f"environment variable {env}", environ[env], True
            elif f.name in raw.get(section, {}):
                source, value, from_env = f"[{section}] {f.name} in {path}", raw[section][f.name], False
            else:
                continue
            try:
                values[f.name] = _coerce(kind, value, from_env)
            except ValueError:
                raise ConfigError(
                    f"{section}.{f.name} = {value!r} ({source}) must be {_describe(kind)}; the default is {f.default!r}"
                ) from None
            _check(section, f, values[f.name], source)
        built[section] = cls(**values)
    config = Config(**built)
    check_profile(config)
    return config


CNIL_IPV4_PREFIX = 24
CNIL_IPV6_PREFIX = 48
CNIL_RETENTION_MONTHS = 25


def check_profile(config: Config) -> None:
    """Under the cnil profile, the settings that can only break the exemption, and that no measurement needs,
    are refused, naming the criterion (README, Privacy profile); the others are reported, not refused."""
    p = config.privacy
    if p.profile != "cnil":
        return
    keep = 'or set privacy.profile = "standard" (the privacy report then marks the criterion as not met)'
    if p.ipv4_prefix > CNIL_IPV4_PREFIX or p.ipv6_prefix > CNIL_IPV6_PREFIX:
        raise ConfigError(
            f"privacy.ipv4_prefix = {p.ipv4_prefix} / ipv6_prefix = {p.ipv6_prefix} breaks the CNIL criterion "
            f'"IP address anonymised": under the cnil profile at most {CNIL_IPV4_PREFIX} (IPv4) and '
            f"{CNIL_IPV6_PREFIX} (IPv6) bits of an address are used; lower them, {keep}"
        )
    if p.aggregate_retention_months > CNIL_RETENTION_MONTHS:
        raise ConfigError(
            f"privacy.aggregate_retention_months = {p.aggregate_retention_months} breaks the CNIL criterion "
            f'"data kept at most 25 months": under the cnil profile it is at most {CNIL_RETENTION_MONTHS}; '
            f"lower it, {keep}"
        )


def local_url(server: ServerConfig, any_address: str = "127.0.0.1") -> str:
    """`http://host:port` of this server as seen from the machine it runs on; when it listens on every address
    (0.0.0.0 or ::, as in a container) the host is `any_address`."""
    host = any_address if server.host in ("0.0.0.0", "::", "") else server.host  # noqa: S104
    return f"http://{f'[{host}]' if ':' in host else host}:{server.port}"


def sqlite_path(url: str) -> Path:
    """`sqlite:///data/a.db` is relative to the working directory, `sqlite:////var/a.db` absolute."""
    return Path(url.removeprefix("sqlite:///"))
