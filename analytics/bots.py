"""Is this User-Agent a bot? Declared crawlers, monitors, previewers, HTTP libraries and automated browsers.

Three kinds of evidence, all matched in ua-parser's Rust regex engine (one pass over a set, ~2.7 us):

1. the ~1,500 patterns of `crawler-user-agents`, less the few that match real browsers (BROKEN_PATTERNS);
2. generic rules (GENERIC_RULES): the words bots call themselves by (bot, crawler, spider...), a URL in the
   string (a bot points to its documentation; a browser only to its own site, after its name, which is let
   through), HTTP-library and tool names, monitoring services and AI agents by name, automation;
3. a string that is not shaped like a browser at all: no `Mozilla/` (nor Opera's own prefix) and nothing
   ua-parser recognises as an OS or device, e.g. `SomeTool/1.0` (see `shapeless`).

Measured with `python bench/bots.py` on the public corpora of bench/data, and on three held-out ones kept apart
(figures in the README).
"""

from __future__ import annotations

import re

import ua_parser_rs
from crawleruseragents import CRAWLER_USER_AGENTS_DATA

# crawler-user-agents patterns that match real people's browsers, and what replaces them (None: dropped, the
# generic rules catch the bots they meant). Each has a test in tests/test_devices.py with the browser it hit.
BROKEN_PATTERNS: dict[str, str | None] = {
    # An Android build id: every phone on that firmware (Oppo, Realme, OnePlus Android 15) was a "bot".
    r"AP3A\.240617\.008": None,
    # Sogou's mobile browser and search app (SogouMSE, SogouMobileBrowser, SogouSearch); its crawlers all say
    # "spider", which the generic rules catch.
    "Sogou": None,
    # Cốc Cốc's browser says `coccocbrowser/` and `...coccoc`; its crawlers say `coccocbot` or `coccoc/1.0`.
    "coccoc": "coccocbot|coccoc/",
    # The Viber app's own in-app browser and HTTP client; Viber's link previewer sends just "Viber".
    "Viber": "^Viber$",
    # 80legs and Advanced Web Ranking send `008/0.83`; the bare pattern hit model names such as `TS1008/1.0`.
    r"008\/": r"(?:^|[^0-9A-Za-z])008/",
    # Slack's desktop app says "Sonic Slack_SSB"; the crawlers are `Sonic/1.0` and `RankSonicSiteAuditor`.
    "Sonic": "Sonic/|RankSonic",
    # Meta's in-app browser (an Android WebView, `; wv)`) that Facebook opens links in: people, not a fetcher.
    "MetaIAB Facebook": None,
    # Desktop apps whose web views people browse in: VS Code (Electron), ByteDance's Trae IDE, Fluid (a Mac
    # site-specific browser), Notion's desktop app (its link fetcher, `Notion/1.0 (https://notion.so; ...)`, gives
    # a URL). An agent fetching a page does not run the tracker; a person in the web view does.
    r"Code\/1\.": None,
    r"Trae\/": None,
    "Fluid": None,
    r"Notion\/": None,
    # Phone models: HTC Butterfly, Expanse and Fever_Plus (Android); the bots send `Butterfly/1.0`, start with
    # "Expanse, a Palo Alto Networks company" and send `Fever/1.38`.
    "Butterfly": "Butterfly/",
    "Expanse": "^Expanse",
    "Fever": "Fever/",
    # The Blackboard app's web view (`... Safari/605.1 Blackboard/6.9`); the crawler is "Blackboard Safeassign".
    "Blackboard": "Blackboard Safeassign",
    # Freespoke's browser ends with `Freespoke/2.0.0`; its crawler gives a URL, which the generic rules catch.
    r"Freespoke\/": None,
}

# Each rule is one regex; together they are one set in the Rust engine. Case-sensitive unless (?i): `Bot|bot`
# but not `BOT`, because CUBOT is a phone brand; `bot` followed by a non-letter, because "Banca Caboto" and
# "turbotabbee" are browser toolbars.
GENERIC_RULES: tuple[str, ...] = (
    # `...bot` after a letter and before a version, separator or the end (Googlebot/, AhrefsBot;, Discordbot-):
    # not phone models (CUBOT, `Cubot X9`, `XBot_Senior`, `M bot 54`, `IDbot553PLUS`) nor "Banca Caboto" (an IE
    # toolbar).
    r"[A-Za-z](?:bot|Bot)(?:[/;)\-,+:@.]|$| \()",
    r"(?:^|[ (;])(?:bot|Bot)(?:[/;)]|$)",
    r"(?i)crawl|spider(?:[^ ]| [^0-9]|$)|scrap(?:er|y|ing)|slurp|harvest|indexer|archiver",  # not `Spider 8`, a tablet
    r"(?i)(?:^|[^a-z])(?:fetch(?:er)?|scan(?:ner)?|monitor(?:ing)?|uptime|checker|validator|probe)(?:[^a-z]|$)",
    r"(?i)(?:link|url|uri|page|snippet|web) ?preview",
    # CamelCase names of tools: `YaDirectFetcher`, `ShopifyChecker`, `YottaaMonitor`, `CloudflareObservatory`
    # (not `...Scanner`: CamScanner is an app with a web view).
    r"[a-z](?:Fetcher|Checker|Crawler|Monitor|Validator|Detector|Extractor|Inspector|Verifier|Classifier|"
    r"Diagnostics|Observatory|Synthetics?)(?:[/; )]|$)",
    r"(?i)synthetic|transcoder|[a-z]-extended(?:[/;)]|$)",  # Datadog, Splunk synthetics; AI opt-out tokens
    # Google's many fetchers: `Google-Site-Verification`, `(compatible; Google-AMPHTML)`, `DuplexWeb-Google`.
    r"(?:^|[ (;,])Google-[A-Z]|[A-Za-z]-Google(?:[^a-z]|$)",
    r"(?i)google ?(?:page ?speed|search console|adsense|weblight)",
    # A URL or an e-mail address: bots point to the page or person that answers for them; browsers do not.
    r"https?://|mailto:|[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    # HTTP libraries and command-line tools, by the names they send first (`curl/8.5.0`, `python-requests/2.31`).
    r"(?i)^(?:curl|wget|python[a-z-]*|go-http-client|go|okhttp|axios|node|node-fetch|undici|got|java|"
    r"apache-httpclient|jakarta commons-httpclient|libwww-perl|lwp-[a-z]+|php|guzzlehttp|ruby|faraday|httpie|"
    r"postmanruntime|insomnia|dart|scrapy|windowspowershell|reqwest|hyper|aiohttp|python-httpx|http\.rb|"
    r"mechanize|typhoeus|restsharp|rest-client|unirest-java|libcurl|pycurl|urllib|wordpress|feed[a-z]*|rss[a-z]*)"
    r"(?:[/ _-]|$)",
    # ... and anywhere in the string, for those that come after an app's own name.
    r"(?i)(?:^|[^a-z])(?:libcurl|python-requests|python-urllib|okhttp|axios|node-fetch|go-http-client|"
    r"apache-httpclient|java/\d|http[-_ ]?client|libwww-perl|aiohttp|httpx|undici|python/\d|go/go\d)",
    r"(?i)curl/\d|powershell/\d",  # also inside a name: `nscurl/3870`, `WindowsPowerShell/5.1`
    # A product token named after HTTP: `scalaj-http/2.4.0`, `akka-http/10`, `HTTP-Tiny/0.076`, `httprs/0.1`
    # (not the PlayStation's `libhttp/1.000`).
    r"(?i)(?:^|[ ;(])(?:[a-z0-9.]+[-_.])?http(?:[-_.][a-z0-9.]+|rs)?/\d",
    # Automated browsers that say so.
    r"(?i)headless|phantomjs|puppeteer|playwright|selenium|webdriver|cypress|slimerjs|htmlunit|lighthouse|jsdom/",
    # HTTP clients, tools and SDKs as a product token with its version anywhere in the string (`grpc-node/1.24.2`,
    # `Needle/1.4.2 (Node.js v6.9.2)`, `Mozilla/5.0 (pc-x86_64-linux-gnu) Siege/4.0.4`, `kubectl/v1.12.0`): the
    # ones above match the start, or a name no browser token contains. Not `Qt/4.8` (QtWebKit browsers, TVs) nor
    # `Alamofire/` (iOS apps that people browse in).
    r"(?i)(?:^|[ ;(,\[+])(?:python-requests|python-urllib3?|python-httpx|httpx|aiohttp|urllib3|httplib2|pycurl|treq|"
    r"scrapy|mechanize|grequests|httpie|pip|axios|node-fetch|undici|superagent|node-superagent|needle|ofetch|node|"
    r"node\.js|nodejs|deno|go-http-client|fasthttp|go-resty|resty|colly|java|apache-httpclient|okhttp|jersey|jetty|"
    r"reactor-netty|reactornetty|async-http-client|apache-cxf|vert\.x-webclient|ktor-client|restsharp|"
    r"windowspowershell|powershell|microsoft-cryptoapi|microsoft bits|microsoft-webdav-miniredir|winhttp|ruby|"
    r"faraday|http\.rb|rest-client|typhoeus|excon|httparty|guzzlehttp|guzzle|php|symfony httpclient|"
    r"laminas_http_client|zend_http_client|php-curl-class|wordpress|libwww-perl|http-tiny|mojolicious|www-mechanize|"
    r"reqwest|hyper|ureq|isahc|curl-rust|attohttpc|libcurl|curl|wget2?|aria2|httrack|lftp|dart|hackney|"
    r"postmanruntime|insomnia|rapidapi|apachebench|jmeter|gatling|locust|vegeta|siege|autocannon|artillery|kubectl|"
    r"prometheus|grpc-[a-z]+|npm|pnpm|yarn|gradle|maven|cpython|zombie\.js|csquery|libsoup|cpp-httplib|cpprest|"
    r"unirest|feign|httpclient|httpurlconnection|bruno|hoppscotch)/v?\d",
    # ... and short names only where the string starts with them (`got/11.8.2`, `Bun/1.0.25`, `k6/0.48.0`).
    r"(?i)^(?:got|ky|bun|hey|dio|paw|awc|ahc|k6|axel)/v?\d",
    # AI agents that fetch a page for a person or a model and say neither "bot" nor a URL (`... Chrome/119.0.0.0
    # Safari/537.36 claude-web`).
    r"(?i)claude-(?:web|user|searchbot)|anthropic-ai|perplexity-user|chatgpt-(?:user|browser)|cohere-(?:ai|training)|"
    r"meta-external(?:agent|fetcher)|mistralai-user|gemini-deep-research|firecrawl|novaact",
    # Uptime, performance and synthetic monitoring services by name, where they say neither "monitor" nor "bot":
    # `... Firefox/101.0 site24x7`, `(...; PTST 2.386)` (WebPageTest), `(...; Neustar WPM)`, `360JK yunjiankong`
    # (jiankong: monitoring, in Chinese; also Jiankongbao).
    r"(?i)uptimerobot|pingdom|statuscake|site24x7|better ?uptime|betterstack|datadog|new ?relic|checkly|freshping|"
    r"hetrix|uptime[- ]?kuma|zabbix|nagios|icinga|monitoring-plugins|check_http|blackbox[- _]?exporter|catchpoint|"
    r"dynatrace|gtmetrix|webpagetest|alertra|neustar wpm|dotcom-monitor|wormly|host-tracker|monitis|uptrends|"
    r"alertsite|sitescope|thousandeyes|speedcurve|debugbear|sematext|cloudwatchsynthetics|stackdriver|ohdear|"
    r"cronitor|hyperping|uptimia|updown\.io|nodeping|montastic|pulsetic|jiankong|appdynamics|elastic-synthetics",
    r"(?:^|[^A-Za-z])PTST[/ ]\d",
    # Link checkers; installers and updaters (`Cygwin-Setup/2.932 (Windows NT 10.0...)`); a string that starts
    # with Apple's bare `Darwin/` kernel token, with no app before it (an SDK's own: `Darwin/24.5.0 (Watch7,9;
    # watchOS 11.4) MatomoTrackerSDK/7.7.0`; an app's URLSession sends `App/1 CFNetwork/... Darwin/...`).
    r"(?i)link ?check|broken ?link|[a-z][-_ ]?(?:setup|installer|updater)/\d|^darwin/\d",
    # Screenshot and thumbnail services and HTML-to-image renderers (`... Safari/537.36 Webthumb/2.0`,
    # `(KHTML, like Gecko) wkhtmltoimage Safari/534.34`); feed readers that name RSS after a word of theirs
    # (`QuiteRSS/0.18.12`, `Windows-RSS-Platform/2.0`; not Motorola's build ids such as `S1RSS32.38`).
    r"(?i)screen ?shot|thumbnail|webthumb|wkhtmlto|webkit2png|[a-z-]rss[/ -]",
    # Yandex's older robots start with its name (`Yandex/1.01.001 (compatible; Win16; I)`); its browser says
    # `YaBrowser/`, its apps `YaApp_Android/`.
    r"^Yandex/\d",
)


def patterns() -> list[str]:
    """The crawler list with the broken patterns replaced or dropped, then the generic rules."""
    listed = [BROKEN_PATTERNS.get(p, p) for p in (entry["pattern"] for entry in CRAWLER_USER_AGENTS_DATA)]
    return [p for p in listed if p is not None] + list(GENERIC_RULES)


class BotMatcher:
    """One Rust regex set over every pattern; `declared(ua)` says whether any of them matches."""

    def __init__(self, rules: list[str] | None = None) -> None:
        self._set = ua_parser_rs.UserAgentExtractor(
            [(p, "bot", None, None, None, None) for p in (patterns() if rules is None else rules)]
        )

    def declared(self, ua: str) -> bool:
        if self._set.extract(ua) is None:
            return False
        # A browser that gives its own site after its name (`Avant Browser (http://www.avantbrowser.com)`, `QtWeb
        # Internet Browser/3.0 http://www.QtWeb.net`, `Embedded Web Browser from: http://bsalsa.com/`): that URL
        # alone does not make it a bot (the URL rule), so the string is matched again without it.
        unlinked = _BROWSER_URL.sub(r"\1", ua)
        return unlinked == ua or self._set.extract(unlinked) is not None


_BROWSER_URL = re.compile(r"(?i)(browser(?:/[\d.]+)?\)?(?: from:)? \(?\+?)https?://[^\s;)]*")


# Words of browsers and devices that ua-parser does not know by name: text browsers (Lynx, w3m, Dillo), old and
# exotic ones (Amiga's AWeb and Voyager, OmniWeb, Mosaic), set-top boxes, consoles and apps that say their platform
# in lower case (`hulu/3.65 (android 9; ...)`). Without this, 25 of isbot's 537 browsers (5 %) were flagged. Not
# `web` alone (`WebMon/2.0.0`, `webchk v1.2.0`, `webcollage/1.182`, `WebFetch` are tools), and `links` only as a word
# (`BCKLINKS 1.0`). `ios` also ends other systems' names: tvOS, watchOS, ViziOS (Vizio's TVs).
_BROWSER_WORDS = re.compile(
    r"brows|webkit|webview|web0s|webtv|webpositive|ucweb|surf|explor|navigat|mosaic|lynx|(?<![a-z])e?links\b|"
    r"w3m|dillo|midori|omniweb|voyager|aweb|firefox|safari|chrom|"
    r"opera|netscape|konqueror|gecko|khtml|presto|trident|edge|mobile|android|iphone|ipad|ios\b|darwin|"
    r"cfnetwork|dalvik|linux|windows|win\d|macos|mac os|tizen|webos|roku|smart-?tv|hbbtv|playstation|xbox|nintendo|"
    r"midp|cldc|blackberry|nokia|symbian|kindle|silk|nook|amiga|morphos|beos|haiku|risc ?os|openvms|msie|netfront|"
    r"phone|opr/|icab|macintosh|fban|office|"
    # X11 and the Unixes that ua-parser does not name (Netscape on HP-UX, IRIX, OSF1, OS/2); Japan's carriers.
    r"x11|hp-ux|irix|osf1|sunos|solaris|os/2|docomo|softbank|vodafone|j-phone|kddi|willcom|ddipocket|up\.browser",
    re.IGNORECASE,
)


def shapeless(ua: str, os_family: str, device_family: str) -> bool:
    """Not shaped like a browser: no OS or device that ua-parser knows (its "Generic Feature Phone" is a guess
    from a bare `Name/1.0`, so it does not count), and no word of a browser, engine or platform. Catches
    `SomeTool/1.0`, `iTMS`, `collectd/5.5.1`, `Mozilla/5.0 (compatible; Dormouse/1.0)`, `Mozilla/5.0 Keydrop`.
    Native apps on phones (`Dalvik/2.1.0 (Linux; U; Android 9...)`, `App/1 CFNetwork/1220 Darwin/20`) and
    feature phones (`Nokia6300/2.0 ... Profile/MIDP-2.0`) pass."""
    if os_family != "Other" or device_family not in ("Other", "Generic Feature Phone"):
        return False
    return _BROWSER_WORDS.search(ua) is None
