from __future__ import annotations

import pytest

from analytics.devices import Device, DeviceDetector, screen_class
from tests.conftest import CHROME_UA, IPHONE_UA

DETECTOR = DeviceDetector(cache_size=100)

CASES = [
    (CHROME_UA, Device("Chrome", "120", "Windows", "10", "desktop", False)),
    (IPHONE_UA, Device("Safari", "17", "iOS", "17", "mobile", False)),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
        "Safari/605.1.15",
        Device("Safari", "17", "macOS", "10.15", "desktop", False),
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        Device("Firefox", "121", "Linux", "", "desktop", False),
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 "
        "Mobile Safari/537.36",
        Device("Chrome", "120", "Android", "14", "mobile", False),
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
        "Mobile/15E148 Safari/604.1",
        Device("Safari", "17", "iOS", "17", "tablet", False),
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 "
        "Safari/537.36",
        Device("Chrome", "119", "Android", "13", "tablet", False),
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        "Safari/537.36 Edg/120.0.2210.91",
        Device("Edge", "120", "Windows", "10", "desktop", False),
    ),
]


@pytest.mark.parametrize(("ua", "expected"), CASES)
def test_browser_os_and_device_class(ua: str, expected: Device) -> None:
    assert DETECTOR.detect(ua) == expected


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
        "curl/8.5.0",
        "python-requests/2.31.0",
        "Go-http-client/1.1",
        CHROME_UA.replace("Chrome/", "HeadlessChrome/"),
        CHROME_UA + " Chrome-Lighthouse",
        "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
        "",
        "   ",
    ],
)
def test_bots_crawlers_and_headless_browsers_are_recognised(ua: str) -> None:
    assert DETECTOR.detect(ua).bot


def test_unknown_user_agent_is_a_desktop_with_no_names() -> None:
    assert DETECTOR.detect("Mozilla/5.0 ...") == Device("", "", "", "", "desktop", False)


def test_cache_serves_repeated_user_agents() -> None:
    detector = DeviceDetector(cache_size=10)
    for _ in range(5):
        detector.detect(CHROME_UA)
    info = detector.detect.cache_info()  # type: ignore[attr-defined]
    assert (info.hits, info.misses) == (4, 1)


@pytest.mark.parametrize(
    ("width", "expected"), [(None, ""), (0, ""), (390, "mobile"), (800, "tablet"), (1280, "laptop"), (1920, "desktop")]
)
def test_screen_class(width: int | None, expected: str) -> None:
    assert screen_class(width) == expected
