"""User-Agent → browser and OS (family + major version), device class, and whether it is a bot.

The matching runs in ua-parser's Rust engine (~10 us for an unseen string; the pure-Python matcher that
`user-agents` uses costs ~750 us here), `user-agents` classifies the result as desktop, mobile or tablet, and
analytics.bots decides whether it is a bot (~1,500 crawler patterns and the generic rules in the same Rust
engine, ~2.7 us; measured by bench/bots.py). Results are kept in an
in-memory LRU cache keyed by the UA string, so the common case is a dictionary hit. The UA string itself is
never returned and never leaves memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from ua_parser import DefaultedResult, Domain, load_lazy_builtins
from ua_parser.regex import Resolver
from user_agents import parsers as ua_classes

from analytics.bots import BotMatcher, shapeless

BROWSER_NAMES = {
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Android WebView",
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari (in-app)",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
    "Samsung Internet": "Samsung Internet",
    "Other": "",
}
OS_NAMES = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS", "Other": ""}

DESKTOP, MOBILE, TABLET = "desktop", "mobile", "tablet"


@dataclass(frozen=True, slots=True)
class Device:
    browser: str
    browser_version: str
    os: str
    os_version: str
    device: str
    bot: bool


class DeviceDetector:
    """Parses User-Agents with a bounded cache; one instance per process, built from the config."""

    def __init__(self, cache_size: int) -> None:
        self._resolver = Resolver(load_lazy_builtins())
        self._bots = BotMatcher()
        self.detect: Callable[[str], Device] = (
            lru_cache(maxsize=cache_size)(self._detect) if cache_size else self._detect
        )

    def is_crawler(self, ua: str) -> bool:
        """Declared by its User-Agent alone (crawler list, generic rules), or empty."""
        return not ua.strip() or self._bots.declared(ua)

    def _detect(self, ua: str) -> Device:
        parsed = self._resolver(ua, Domain.ALL).complete().with_defaults()
        kind = _classify(ua, parsed)
        browser = BROWSER_NAMES.get(parsed.user_agent.family, parsed.user_agent.family)
        os_name = OS_NAMES.get(parsed.os.family, parsed.os.family)
        return Device(
            browser=browser,
            browser_version=(parsed.user_agent.major or "") if browser else "",
            os=os_name,
            os_version=_os_version(os_name, parsed) if os_name else "",
            device=kind,
            bot=kind == "bot" or self.is_crawler(ua) or shapeless(ua, parsed.os.family, parsed.device.family),
        )


def _os_version(os_name: str, parsed: DefaultedResult) -> str:
    major = parsed.os.major or ""
    if os_name == "macOS" and major == "10" and parsed.os.minor:
        return f"10.{parsed.os.minor}"  # 10.9 ... 10.15 are distinct releases
    return major


def _classify(ua: str, parsed: DefaultedResult) -> str:
    """desktop, mobile, tablet or bot, with the rules of the `user-agents` package over the fast parse."""
    agent = ua_classes.UserAgent.__new__(ua_classes.UserAgent)
    agent.ua_string = ua
    agent.browser = ua_classes.parse_browser(
        parsed.user_agent.family, parsed.user_agent.major, parsed.user_agent.minor, parsed.user_agent.patch
    )
    agent.os = ua_classes.parse_operating_system(
        parsed.os.family, parsed.os.major, parsed.os.minor, parsed.os.patch, parsed.os.patch_minor
    )
    agent.device = ua_classes.parse_device(parsed.device.family, parsed.device.brand, parsed.device.model)
    if agent.is_bot:
        return "bot"
    if agent.is_tablet:
        return TABLET
    if agent.is_mobile:
        return MOBILE
    return DESKTOP


def screen_class(width: int | None) -> str:
    """Screen size class from the viewport width the tracker sends (Plausible's breakpoints)."""
    if width is None or width <= 0:
        return ""
    if width < 576:
        return "mobile"
    if width < 992:
        return "tablet"
    if width < 1440:
        return "laptop"
    return "desktop"
