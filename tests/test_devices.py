from __future__ import annotations

import re

import pytest

from analytics.bots import BROKEN_PATTERNS
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
        "Mozilla/5.0 ...",  # names no platform, engine or browser
    ],
)
def test_bots_crawlers_and_headless_browsers_are_recognised(ua: str) -> None:
    assert DETECTOR.detect(ua).bot


def test_unknown_browser_is_a_desktop_with_no_names() -> None:
    unknown = "Mozilla/5.0 (X11; Unknown) Gecko/20100101 Unknown/1.0"
    assert DETECTOR.detect(unknown) == Device("", "", "", "", "desktop", False)


def test_cache_serves_repeated_user_agents() -> None:
    detector = DeviceDetector(cache_size=10)
    for _ in range(5):
        detector.detect(CHROME_UA)
    info = detector.detect.cache_info()  # type: ignore[attr-defined]
    assert (info.hits, info.misses) == (4, 1)


# Real browsers that a crawler-user-agents pattern flagged, with the pattern (analytics.bots.BROKEN_PATTERNS).
MISFLAGGED_BY_THE_LIST = [
    (
        r"AP3A\.240617\.008",
        "Mozilla/5.0 (Linux; Android 15; RMX5101 Build/AP3A.240617.008; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Version/4.0 Chrome/141.0.7390.97 Mobile Safari/537.36",
    ),
    (
        "Sogou",
        "Mozilla/5.0 (Linux; Android 7.1.2; Neolix X9-JD; Build/N2G47H; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/46.0.2490.92 Mobile Safari/537.36 SogouMSE,SogouMobileBrowser/5.22.8",
    ),
    (
        "coccoc",
        "Mozilla/5.0 (Windows NT 6.1) AppleWebKit/537.36 (KHTML like Gecko) coccocbrowser/47.0 "
        "Chrome/41.0.2272.119coccoc Safari/537.36",
    ),
    (
        "Viber",
        "Mozilla/5.0 (Linux; Android 7.1.2; G011A Build/N2G48H; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Version/4.0 Chrome/66.0.3359.158 Safari/537.36 Viber/11.9.5.8",
    ),
    (
        r"008\/",
        "DESAY TS1008/1.0 Release/07.12.2013 Mozilla/5.0 (Linux; U; Android 4.0.3; zh-cn) AppleWebKit/534.30 "
        "(KHTML, like Gecko) Version/4.0 Mobile Safari/534.30",
    ),
    (
        "Sonic",
        "Mozilla/5.0 (Windows NT 10.0.18362; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Slack/4.4.2 "
        "Chrome/78.0.3904.130 Electron/7.2.1 Safari/537.36 WindowsStore/10.0.18362 Sonic Slack_SSB/4.4.2",
    ),
    (
        "MetaIAB Facebook",
        "Mozilla/5.0 (Linux; Android 16; Pixel 10 Pro XL Build/CP1A.260305.018; wv) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Version/4.0 Chrome/146.0.7680.174 Mobile Safari/537.36 MetaIAB Facebook",
    ),
    (
        r"Code\/1\.",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Code/1.61.2 "
        "Chrome/91.0.4472.164 Electron/13.5.1 Safari/537.36",
    ),
    (
        r"Trae\/",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Trae/1.107.1 "
        "Chrome/142.0.7444.235 Electron/39.2.7 Safari/537.36",
    ),
    (
        r"Notion\/",
        # Notion's desktop app (Electron), as ua-parser-js documents it among in-app browsers
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Notion/2.0.23 "
        "Chrome/91.0.4472.164 Electron/13.6.9 Safari/537.36",
    ),
    (
        "Fluid",
        "Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10_5_6; en-us) AppleWebKit/528.16 (KHTML, like Gecko) "
        "Fluid/0.9.6 Safari/528.16",
    ),
    (
        "Butterfly",
        "Mozilla/5.0 (Linux; Android 4.2.2; HTC Butterfly Build/JDQ39) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/31.0.1650.59 Mobile Safari/537.36",
    ),
    (
        "Expanse",
        "Mozilla/5.0 (Linux; Android 8.0.0; Expanse) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/86.0.4240.99 "
        "Mobile Safari/537.36",
    ),
    (
        "Fever",
        "Mozilla/5.0 (Linux; Android 8.1.0; Fever_Plus_J) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/95.0.4638.50 Safari/537.36",
    ),
    (
        "Blackboard",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 14_7_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 Safari/605.1 Blackboard/6.9",
    ),
    (
        r"Freespoke\/",
        "Mozilla/5.0 (Android 13; Mobile; rv:109.0) Gecko/112.0 Firefox/112.0 Freespoke/2.0.0",
    ),
]


@pytest.mark.parametrize(("pattern", "ua"), MISFLAGGED_BY_THE_LIST, ids=[p for p, _ in MISFLAGGED_BY_THE_LIST])
def test_real_browsers_that_a_listed_pattern_matched_are_not_bots(pattern: str, ua: str) -> None:
    assert re.search(pattern, ua), "the pattern matches this browser (else the case proves nothing)"
    assert not DETECTOR.detect(ua).bot


def test_every_replaced_pattern_has_its_browser_above() -> None:
    assert set(BROKEN_PATTERNS) == {pattern for pattern, _ in MISFLAGGED_BY_THE_LIST}


# The bots those patterns were meant for are still recognised (by the narrower pattern or a generic rule).
@pytest.mark.parametrize(
    "ua",
    [
        "Sogou web spider/4.0(+http://www.sogou.com/docs/help/webmasters.htm#07)",
        "Sogou Pic Spider/3.0",
        "Mozilla/5.0 (compatible; coccocbot-web/1.0; +http://help.coccoc.com/searchengine)",
        "Mozilla/5.0 (compatible; coccoc/1.0)",
        "Viber",
        "008/0.83 (http://www.advancedwebranking.com)",
        "Mozilla/5.0 (compatible; 008/0.83; http://www.80legs.com/webcrawler.html) Gecko/2008032620",
        "Mozzila/5.0 (compatible; Sonic/1.0; http://www.yama.info.waseda.ac.jp/~crawler/info.html)",
        "Mozilla/5.0 (compatible; Butterfly/1.0; +http://labs.topsy.com/butterfly/) Gecko/2009032608 Firefox/3.0.8",
        "Expanse, a Palo Alto Networks company, searches across the global IPv4 space multiple times per day",
        "Fever/1.38 (Feed Parser; http://feedafever.com; Allow like Gecko)",
        "Blackboard Safeassign",
        "Notion/1.0 (https://notion.so; team@makenotion.com)",
        "Mozilla/5.0 (compatible; Freespoke/2.0; +https://crawler.freespoke.com)",
    ],
)
def test_the_bots_behind_the_replaced_patterns_are_still_recognised(ua: str) -> None:
    assert DETECTOR.detect(ua).bot


DECLARED_BOTS = [
    # HTTP libraries and tools
    "curl/8.5.0",
    "Wget/1.21.4",
    "python-requests/2.31.0",
    "Python-urllib/3.11",
    "python-httpx/0.27.0",
    "aiohttp/3.9.1",
    "Go-http-client/2.0",
    "okhttp/4.12.0",
    "axios/1.6.2",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "node",
    "undici",
    "Java/17.0.9",
    "Apache-HttpClient/4.5.14 (Java/17.0.9)",
    "libwww-perl/6.72",
    "Ruby",
    "GuzzleHttp/7",
    "PostmanRuntime/7.36.0",
    "Scrapy/2.11.0 (+https://scrapy.org)",
    "HTTPie/3.2.2",
    "Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.19041.3803",
    # monitors
    "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
    "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
    "Mozilla/5.0 (compatible; StatusCake)",
    "Better Uptime Bot Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/91.0.4472.124 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 "
    "DatadogSynthetics",
    "Uptime-Kuma/1.23.11",
    "Mozilla/5.0 (compatible; Site24x7)",
    "NewRelicPinger/1.0 (1234567)",
    "Zabbix",
    "check_http/v2.3.3 (monitoring-plugins 2.3.3)",
    "Blackbox Exporter/0.24.0",
    "Prometheus/2.45.0",
    # more HTTP libraries
    "Dart/3.2 (dart:io)",
    "Faraday v2.7.10",
    "reqwest/0.11.22",
    "insomnia/8.4.5",
    "rest-client/2.1.0 (linux-gnu x86_64) ruby/3.2.2p53",
    "Deno/1.40.2",
    # link previewers
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "TelegramBot (like TwitterBot)",
    "WhatsApp/2.2337.7 i",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Twitterbot/1.0",
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "Mozilla/5.0 (compatible; redditbot/1.0; +http://www.reddit.com/feedback)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_1) AppleWebKit/600.2.4 (KHTML, like Gecko) Version/8.0.2 "
    "Safari/600.2.4 (Applebot/0.1; +http://www.apple.com/go/applebot)",
    # SEO tools
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)",
    "Screaming Frog SEO Spider/19.4",
    "Mozilla/5.0 (compatible; DotBot/1.2; +https://opensiteexplorer.org/dotbot; help@moz.com)",
    # AI crawlers and assistants
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; +https://openai.com/bot",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; PerplexityBot/1.0; "
    "+https://perplexity.ai/perplexitybot)",
    "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 "
    "(compatible; Bytespider; spider-feedback@bytedance.com)",
    "CCBot/2.0 (https://commoncrawl.org/faq/)",
    "Mozilla/5.0 (compatible; Google-Extended)",
    "meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)",
    # search engines
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.129 Mobile Safari/537.36 (compatible; Google-InspectionTool/1.0;)",
    # not shaped like a browser at all
    "SomeInternalTool/1.0",
    "Mozilla/5.0 (compatible; Dormouse/1.0)",
]


@pytest.mark.parametrize("ua", DECLARED_BOTS)
def test_declared_crawlers_monitors_previewers_and_libraries_are_bots(ua: str) -> None:
    assert DETECTOR.detect(ua).bot


REAL_BROWSERS = [
    # in-app browsers
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
    "[FBAN/FBIOS;FBAV/442.0.0.50.109;FBBV/541137016;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.1;FBSS/3;"
    "FBID/phone;FBLC/en_US;FBOP/5;FBRV/543870633]",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/446.0.0.33.118;]",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 Instagram 311.0.2.19.119 (iPhone15,3; iOS 17_1_2; en_US; en; scale=3.00; 1290x2796; 545427429)",
    "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36 trill_330504 JsSdk/1.0 NetType/WIFI "
    "Channel/googleplay AppName/musical_ly app_version/33.5.4 ByteLocale/en Region/US BytedanceWebview/d8a21c6",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
    "musical_ly_34.1.0 JsSdk/2.0 NetType/WIFI Channel/App Store ByteLocale/en Region/US WKWebView/1 "
    "BytedanceWebview/d8a21c6",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
    "[LinkedInApp]/9.29.6650",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    # Android web views and browsers
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/UD1A.231105.004; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 "
    "Chrome/115.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; Cubot X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 "
    "Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 8.1.0; XBot_Senior Build/O11019) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/65.0.3325.109 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; Spider 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/150.0.0.0 Mobile "
    "Safari/537.36 (Ecosia android@150.0.0.0)",
    # native apps on phones
    "Dalvik/2.1.0 (Linux; U; Android 9; SM-G965U Build/PPR1.180610.011)",
    "MyApp/1 CFNetwork/1220.1 Darwin/20.3.0",
    # smart TVs, consoles, a feature phone, a text browser
    "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) 76.0.3809.146/6.0 TV "
    "Safari/537.36",
    "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/79.0.3945.79 Safari/537.36 "
    "WebAppManager",
    "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0 "
    "Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Edge/44.18363.8131",
    "Mozilla/5.0 (Nintendo Switch; WifiWebAuthApplet) AppleWebKit/606.4 (KHTML, like Gecko) NF/6.0.1.15.4 "
    "NintendoBrowser/5.1.0.20393",
    "Nokia6300/2.0 (05.00) Profile/MIDP-2.0 Configuration/CLDC-1.1",
    "Lynx/2.9.0dev.6 libwww-FM/2.14 SSL-MM/1.4.1 OpenSSL/1.1.1j-dev",
]


@pytest.mark.parametrize("ua", REAL_BROWSERS)
def test_real_browsers_web_views_and_devices_are_not_bots(ua: str) -> None:
    assert not DETECTOR.detect(ua).bot


@pytest.mark.parametrize(
    ("width", "expected"), [(None, ""), (0, ""), (390, "mobile"), (800, "tablet"), (1280, "laptop"), (1920, "desktop")]
)
def test_screen_class(width: int | None, expected: str) -> None:
    assert screen_class(width) == expected


# Each generic rule added for monitors and HTTP libraries: a bot it catches (from the corpora of bench/data), and a
# browser of the same shape that it must not catch.
NEW_RULES = [
    (
        "library token with its version, anywhere",
        "grpc-node/1.24.2 grpc-c/8.0.0 (linux; chttp2; ganges)",
        # QtWebKit browsers and TVs say `Qt/4.8`: not an HTTP library
        "Mozilla/5.0 (QtEmbedded; Linux) AppleWebKit/537.4 (KHTML, like Gecko) Qt/4.8.2 Safari/537.4, HbbTV/1.2.1 "
        "(Sharp_UMC_LCDTV, LC-43CFF6452K, wired)",
    ),
    (
        "library token with its version, anywhere",
        "Needle/1.4.2 (Node.js v6.9.2; linux x64)",
        # an iOS browser app built on Alamofire: people browse in it
        "SafeBrowser/6.5 (com.browser.privatebrowser; build:6.5.1; iOS 26.4.2) Alamofire/5.6.4",
    ),
    (
        "library token with its version, anywhere",
        "Mozilla/5.0 (pc-x86_64-linux-gnu) Siege/4.0.4",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    ),
    (
        "monitoring services by name",
        "mozilla/5.0 (windows nt 6.1; wow64; rv:101.0) gecko/20100101 firefox/101.0 site24x7",
        "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:101.0) Gecko/20100101 Firefox/101.0",
    ),
    (
        "monitoring services by name",
        "Mozilla/5.0 (compatible; MSIE 7.0; Windows NT 5.1; .NET CLR 1.1.4322) 360JK yunjiankong 427691",
        "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 5.1; .NET CLR 1.1.4322)",
    ),
    (
        "monitoring services by name",
        "Uptime-Kuma/1.23.11",
        # `uptime ?kuma`, not `kuma`: a phone model
        "Mozilla/5.0 (Linux; U; Android 2.3.5; zh-cn; KM-Kumai 290/Kumai_290_V1.4; 320*480;  CTC/2.0) "
        "AppleWebKit/533.1 (KHTML, like Gecko) Version/4.0 Mobile Safari/533.1",
    ),
    (
        "WebPageTest's PTST token",
        "Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0; PTST 2.386) like Gecko",
        "Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko",
    ),
    (
        "installers and updaters",
        "Cygwin-Setup/2.932 (Windows NT 10.0.20348;x86_64;0409;SymLinkPriv)",
        # Android's own "update" in its version is no updater
        "Mozilla/5.0 (Linux; U; Android 2.1-update1; de-de; HTC Desire 1.19.161.5 Build/ERE27) AppleWebKit/530.17 "
        "(KHTML, like Gecko) Version/4.0 Mobile Safari/530.17",
    ),
    (
        "a string that starts with Apple's bare Darwin token",
        "Darwin/24.5.0 (Watch7,9; watchOS 11.4) MatomoTrackerSDK/7.7.0",
        "MyApp/1 CFNetwork/1220.1 Darwin/20.3.0",
    ),
    (
        "link checkers",
        "Mozilla/4.0 (compatible; MSIE 7.0; Windows; Windows NT 5.1) BrokenLinkCheck.com/1.1",
        "Mozilla/4.0 (compatible; MSIE 7.0; Windows; Windows NT 5.1)",
    ),
    (
        "screenshot and thumbnail services",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/534.34 (KHTML, like Gecko) wkhtmltoimage Safari/534.34",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    ),
    (
        "feed readers that name RSS after a word",
        "Mozilla/5.0 (Windows NT 6.1) AppleWebKit/602.1 (KHTML, like Gecko) QuiteRSS/0.18.12 Safari/602.1",
        # a Motorola build id with RSS inside
        "Mozilla/5.0 (Linux; Android 12; moto g(50) 5G Build/S1RSS32.38-20-9-13; wv) AppleWebKit/537.36 (KHTML,like "
        "Gecko) Version/4.0 Chrome/124.0.6367.180 Mobile Safari/537.36",
    ),
    (
        "Yandex's robots that start with its name",
        "Yandex/1.01.001 (compatible; Win16; I)",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        "YaBrowser/24.1.0.0 Safari/537.36",
    ),
    (
        "short library names only at the start",
        "got/11.8.2 (https://github.com/sindresorhus/got)",
        # made up, of the shape of an app that names itself with a short library name: not at the start, so kept
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
        "Hey/1.0",
    ),
    (
        "AI agents by name",
        "Mozilla/5.0 (Linux; arm_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36 claude-web",
        # Anthropic's desktop app, an Electron web view a person reads in (the shape Electron apps send)
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Claude/0.7.1 "
        "Chrome/128.0.6613.36 Electron/32.0.1 Safari/537.36",
    ),
    (
        "`web` alone is no browser word in `shapeless`",
        "WebMon/2.0.0",
        "UCWEB8.4.0.150/28/352",
    ),
    (
        "`web` alone is no browser word in `shapeless`",
        "webchk v1.2.0",
        "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/79.0.3945.79 Safari/537.36",
    ),
    (
        "`links` only as a word in the browser words of `shapeless`",
        "BCKLINKS 1.0",
        "Elinks 0.10.6",
    ),
]


@pytest.mark.parametrize(("rule", "bot", "browser"), NEW_RULES, ids=[f"{r}: {b[:30]}" for r, b, _ in NEW_RULES])
def test_each_new_rule_catches_its_bot_and_not_a_browser_of_its_shape(rule: str, bot: str, browser: str) -> None:
    assert DETECTOR.detect(bot).bot, rule
    assert not DETECTOR.detect(browser).bot, rule


# Real browsers that a rule flagged, and what overrides it.
OVERRIDDEN = [
    # The URL rule (a bot points to its page): a browser that gives its own site after its name.
    "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 5.1; i-NavFourF; TuneUp HTML Client Embedded Web Browser from: "
    "http://bsalsa.com/; .NET CLR 1.1.4322; .NET CLR 2.0.50727; .NET CLR 3.0.4506.2152; .NET CLR 3.5.30729)",
    "Mozilla/5.0 (Windows; U; Windows NT 5.1; es-CO) AppleWebKit/527+ (KHTML, like Gecko) QtWeb Internet Browser/1.7 "
    "http://www.QtWeb.net",
    "Avant Browser (http://www.avantbrowser.com)",
    # Not shaped like a browser (no OS or device that ua-parser knows): X11 and old Unixes, Japan's carriers.
    "Mozilla/4.76 [en] (X11; U; HP-UX B.10.20 9000/782)",
    "Mozilla/4.77C-SGI [en] (X11; U; IRIX 6.5 IP32)",
    "Mozilla/4.61 [de] (OS/2; I)",
    "SoftBank/1.0/821SC/SCJ001/SN000000000000000 Flash/Flash-Lite/2.0",
    # `ios` ends other systems' names too (Vizio's TVs), so it counts inside a word
    "VIZIO V506-J09 ViziOS/1.4.512.847.1 WatchFree/24.06.13.2 FancyPlayer/1.1.30-qa",
    "Mozilla/3.0(DDIPOCKET;JRC/AH-J3001V,AH-J3002V/1.0/0100/c50)CNF/2.0",
]


@pytest.mark.parametrize("ua", OVERRIDDEN)
def test_real_browsers_a_generic_rule_flagged_are_not_bots(ua: str) -> None:
    assert not DETECTOR.detect(ua).bot


@pytest.mark.parametrize(
    "ua",
    [
        # a URL elsewhere in the string still counts, and so does any other rule after the browser's own URL
        "Mozilla/5.0 (compatible; Yeti/1.1; +http://help.naver.com/support/robots.html)",
        "Mozilla/5.0 (compatible; MSIE 7.0; Windows NT 5.1) Sample Browser (http://example.com/) spider",
        # still not shaped like a browser
        "Mozilla/4.0 (compatible; Clever Internet Suite)",
    ],
)
def test_the_overrides_leave_bots_of_the_same_shape_flagged(ua: str) -> None:
    assert DETECTOR.detect(ua).bot
