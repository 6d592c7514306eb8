"""Bot detection, measured: recall per kind of bot, false positives on real browsers, and the cost per User-Agent.

    python bench/bots.py [--show [N]] [--bots FILE] [--browsers FILE] [--against BOTS_PY]

Reads the labelled public corpora of bench/data (sources and licences in bench/data/README.md): every string of
bots.tsv is a bot by its source's label, every string of browsers.tsv a real browser, in-app browser or web view;
heldout_bots.tsv and heldout_browsers.tsv.gz are the same from three other projects (CrawlerDetect, woothee,
top-user-agents), less the strings of the main files, reported apart.
Prints, for the detector of analytics/devices.py and for the one before issue 10 (the whole crawler list, a few
headless markers and ua-parser's spider family), recall per category and per source, the share of browsers
flagged (per source, per device type, and weighted by intoli's traffic shares), and the cost of one unseen
User-Agent (no cache). --show lists the misclassified strings; --bots/--browsers score more files (one
User-Agent a line, or a JSON list) as extra held-out sources. --against adds a column for another version of
analytics/bots.py (`git show REV:analytics/bots.py > /tmp/bots_rev.py`), in the same run.

Categories come from the sources' own labels (device-detector's bot category and `library` client type,
crawler-user-agents' tags); strings without one (isbot, uap-core) are grouped by the name they carry, only to
report them under a heading: all of them count as bots whatever the group.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib.util
import io
import json
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ua_parser_rs
from crawleruseragents import CRAWLER_USER_AGENTS_DATA
from ua_parser import Domain, load_lazy_builtins
from ua_parser.regex import Resolver

from analytics.devices import DeviceDetector, _classify

DATA = Path(__file__).parent / "data"
# The categories the issue asks for first, then the rest.
HEADLINE = ("search", "seo", "ai", "monitor", "previewer", "library")
CATEGORIES = (*HEADLINE, "security", "feed", "automation", "advertising", "crawler")

# device-detector's bot categories and crawler-user-agents' tags -> the categories above.
SOURCE_LABELS = {
    "Search bot": "search",
    "Search tools": "search",
    "Security search bot": "security",
    "search-engine": "search",
    "seo": "seo",
    "AI Agent": "ai",
    "AI Assistant": "ai",
    "AI Data Scraper": "ai",
    "AI Search Crawler": "ai",
    "ai-crawler": "ai",
    "Site Monitor": "monitor",
    "Network Monitor": "monitor",
    "Benchmark": "monitor",
    "monitoring": "monitor",
    "Social Media Agent": "previewer",
    "social-preview": "previewer",
    "library": "library",
    "http-library": "library",
    "Security Checker": "security",
    "scanner": "security",
    "Feed Fetcher": "feed",
    "Feed Parser": "feed",
    "Feed Reader": "feed",
    "feed-reader": "feed",
    "browser-automation": "automation",
    "advertising": "advertising",
}
# For strings whose source gives no category: the name they carry (first match wins).
NAMED = [
    ("automation", r"(?i)headless|phantomjs|puppeteer|playwright|selenium|webdriver|lighthouse|cypress"),
    (
        "ai",
        r"(?i)gptbot|chatgpt|oai-searchbot|claude|anthropic|perplexity|bytespider|ccbot|cohere|diffbot|"
        r"meta-external|ai2bot|youbot|timpibot|omgili|imagesift|google-extended|amazonbot|duckassist|mistral",
    ),
    (
        "previewer",
        r"(?i)slack|discord|telegram|whatsapp|facebookexternal|facebookcatalog|twitterbot|linkedinbot|pinterest|"
        r"redditbot|skypeuripreview|vkshare|embedly|iframely|bitlybot|tumblr|snapchat|viber|mastodon|bluesky|"
        r"link ?preview|xing-contenttabreceiver|google-pagerenderer|flipboard|outbrain|nuzzel|quora",
    ),
    (
        "library",
        r"(?i)^(?:curl|wget|python|go-http-client|okhttp|axios|node|undici|java|apache-httpclient|libwww|lwp|"
        r"php|guzzle|ruby|faraday|httpie|postman|insomnia|dart|scrapy|powershell|reqwest|aiohttp|httpx)|"
        r"python-requests|python-urllib|go-http-client|node-fetch|libcurl",
    ),
    (
        "monitor",
        r"(?i)uptime|monitor|pingdom|statuscake|site24x7|newrelic|datadog|checkly|freshping|hetrix|nodeping|"
        r"gtmetrix|catchpoint|dynatrace|health.?check|synthetic",
    ),
    (
        "seo",
        r"(?i)ahrefs|semrush|mj12|dotbot|rogerbot|screaming ?frog|seokicks|serpstat|blexbot|dataforseo|sistrix|"
        r"majestic|seobility|barkrowler|siteaudit|megaindex|seolyt|woorank|spyfu|linkpad|netpeak|oncrawl",
    ),
    (
        "search",
        r"(?i)googlebot|bingbot|msnbot|yandex|baiduspider|duckduckbot|applebot|sogou|360spider|naver|yeti|"
        r"seznambot|qwant|petalbot|mojeek|coccoc|exabot|daum|slurp",
    ),
    ("feed", r"(?i)feed|rss|atom"),
    ("security", r"(?i)scan|nmap|nikto|sqlmap|zgrab|masscan|nuclei|censys|shodan|expanse|l9|gobuster|wpscan"),
]
_NAMED = [(category, re.compile(pattern)) for category, pattern in NAMED]
_NAMED_ONLY = {"isbot/crawlers.yml", "uap-core/test_device.yaml", "crawlerdetect/crawlers.txt"}
# CrawlerDetect's "devices" are whatever it does not call a crawler: besides browsers, test strings, attack payloads
# and bare words ("NULL", "1", "() { :;}; /bin/bash ..."). Its strings that do not start like a browser (Mozilla/,
# Opera/) are shown apart, and the held-out total is also given without them.
_JUNK = ("crawlerdetect/devices.txt", "other")


@dataclass(frozen=True, slots=True)
class Sample:
    source: str
    hint: str
    weight: float
    ua: str


def load(path: Path) -> list[Sample]:
    with (
        gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as raw,
        io.TextIOWrapper(raw, encoding="utf-8", newline="") as f,
    ):
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(rows)
        return [Sample(s, h, float(w) if w else 0.0, ua) for s, h, w, ua in rows]


def extra(path: Path) -> list[Sample]:
    text = path.read_text()
    lines = json.loads(text) if text.lstrip().startswith("[") else text.splitlines()
    return [Sample(path.name, "", 0.0, str(ua).strip()) for ua in lines if str(ua).strip()]


def category(sample: Sample) -> str:
    if sample.source not in _NAMED_ONLY:
        for label in sample.hint.split(","):
            if label in SOURCE_LABELS:
                return SOURCE_LABELS[label]
    for name, rx in _NAMED:
        if rx.search(sample.ua):
            return name
    return "crawler"


def browser_group(sample: Sample) -> str:
    """A coarse group of the browser corpus: device type, in-app browsers, Android web views."""
    if sample.source == _JUNK[0]:
        kind = "other strings" if sample.hint == _JUNK[1] else "Mozilla/, Opera/"
        return f"crawlerdetect devices, {kind}"
    if sample.hint.startswith("app:"):
        return "in-app browsers (device-detector)"
    if "; wv)" in sample.ua:
        return "Android web views"
    if sample.source.startswith("device-detector/"):
        return f"device-detector {sample.hint}"
    return sample.source


class Before:
    """The detector before issue 10: every crawler-user-agents pattern, 11 headless markers, ua-parser's spiders."""

    MARKERS = (
        "HeadlessChrome",
        "PhantomJS",
        "Headless",
        "Lighthouse",
        "Puppeteer",
        "Playwright",
        "Selenium",
        "webdriver",
        "Cypress",
        "SlimerJS",
        "HtmlUnit",
    )

    def __init__(self) -> None:
        self._resolver = Resolver(load_lazy_builtins())
        self._crawlers = ua_parser_rs.UserAgentExtractor(
            [(entry["pattern"], "bot", None, None, None, None) for entry in CRAWLER_USER_AGENTS_DATA]
        )

    def bot(self, ua: str) -> bool:
        parsed = self._resolver(ua, Domain.ALL).complete().with_defaults()
        if _classify(ua, parsed) == "bot" or not ua.strip():
            return True
        return self._crawlers.extract(ua) is not None or any(m in ua for m in self.MARKERS)


class Against:
    """The detector with the rules of another analytics/bots.py (its crawler list, generic rules and `shapeless`)."""

    def __init__(self, path: Path) -> None:
        spec = importlib.util.spec_from_file_location("bots_against", path)
        assert spec is not None and spec.loader is not None
        self.module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.module)
        self.matcher = self.module.BotMatcher()
        self._resolver = Resolver(load_lazy_builtins())

    def bot(self, ua: str) -> bool:
        parsed = self._resolver(ua, Domain.ALL).complete().with_defaults()
        if _classify(ua, parsed) == "bot" or not ua.strip() or self.matcher.declared(ua):
            return True
        return bool(self.module.shapeless(ua, parsed.os.family, parsed.device.family))


def per_ua_cost(detect: Callable[[str], object], uas: list[str], rounds: int = 3) -> float:
    """Microseconds per unseen User-Agent (no cache), the best of a few rounds over the whole corpus."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for ua in uas:
            detect(ua)
        best = min(best, (time.perf_counter() - start) / len(uas))
    return best * 1e6


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:6.2f} %" if whole else "     -  "


def report_bots(name: str, samples: list[Sample], flags: dict[str, list[bool]], show: int) -> None:
    print(f"\n{name}: recall (bots detected / bots)")
    by_cat: dict[str, list[int]] = defaultdict(list)
    by_src: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        by_cat[category(s)].append(i)
        by_src[s.source].append(i)
    header = "".join(f"{d:>16}" for d in flags)
    print(f"  {'category':34}{'n':>6}{header}")
    groups = [(c, by_cat[c]) for c in CATEGORIES if c in by_cat]
    headline = [i for c in HEADLINE for i in by_cat.get(c, [])]
    totals = [("= search+seo+ai+monitor+previewer+library", headline), ("= all", list(range(len(samples))))]
    for label, idx in [*groups, *totals]:
        cells = "".join(f"{_pct(sum(f[i] for i in idx), len(idx)):>16}" for f in flags.values())
        print(f"  {label:34}{len(idx):>6}{cells}")
    print(f"  {'by source':34}")
    for src, idx in sorted(by_src.items()):
        cells = "".join(f"{_pct(sum(f[i] for i in idx), len(idx)):>16}" for f in flags.values())
        print(f"    {src:32}{len(idx):>6}{cells}")
    if show:
        now = flags["now"]
        missed = [s for s, hit in zip(samples, now, strict=True) if not hit]
        print(f"  missed now ({len(missed)}):")
        for s in missed[:show]:
            print(f"    [{category(s)}] {s.source}: {s.ua[:200]}")


def report_browsers(name: str, samples: list[Sample], flags: dict[str, list[bool]], show: int) -> None:
    print(f"\n{name}: false positives (browsers flagged as bots / browsers)")
    header = "".join(f"{d:>16}" for d in flags)
    print(f"  {'group':42}{'n':>6}{header}")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        groups[browser_group(s)].append(i)
    for label, idx in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        cells = "".join(f"{_pct(sum(f[i] for i in idx), len(idx)):>16}" for f in flags.values())
        print(f"    {label:40}{len(idx):>6}{cells}")
    cells = "".join(f"{_pct(sum(f), len(f)):>16}" for f in flags.values())
    print(f"  {'= all':42}{len(samples):>6}{cells}")
    shaped = [i for i, s in enumerate(samples) if (s.source, s.hint) != _JUNK]
    if len(shaped) < len(samples):
        cells = "".join(f"{_pct(sum(f[i] for i in shaped), len(shaped)):>16}" for f in flags.values())
        print(f"  {'= all but crawlerdetect other strings':42}{len(shaped):>6}{cells}")
    weighted = [i for i, s in enumerate(samples) if s.weight]
    if weighted:
        total = sum(samples[i].weight for i in weighted)
        cells = "".join(f"{_pct(sum(samples[i].weight for i in weighted if f[i]), total):>16}" for f in flags.values())
        print(f"  {'= intoli, weighted by traffic share':42}{len(weighted):>6}{cells}")
    if show:
        wrong = [s for s, hit in zip(samples, flags["now"], strict=True) if hit]
        print(f"  flagged now ({len(wrong)}):")
        for s in wrong[:show]:
            print(f"    {s.source} [{s.hint[:30]}]: {s.ua[:200]}")


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--show", nargs="?", type=int, const=200, default=0, help="list misclassified strings")
    parser.add_argument("--bots", type=Path, action="append", default=[], help="extra held-out bot list")
    parser.add_argument("--browsers", type=Path, action="append", default=[], help="extra held-out browser list")
    parser.add_argument("--against", type=Path, help="another version of analytics/bots.py, as a column")
    args = parser.parse_args(list(argv) if argv is not None else None)

    bots = load(DATA / "bots.tsv")
    browsers = load(DATA / "browsers.tsv")
    extra_bots = [s for path in args.bots for s in extra(path)]
    extra_browsers = [s for path in args.browsers for s in extra(path)]
    now = DeviceDetector(cache_size=0)
    before = Before()
    detectors: dict[str, Callable[[str], bool]] = {"before": before.bot}
    against = Against(args.against) if args.against else None
    if against:
        detectors["against"] = against.bot
    detectors["now"] = lambda ua: now.detect(ua).bot

    def flags(samples: list[Sample]) -> dict[str, list[bool]]:
        return {name: [detect(s.ua) for s in samples] for name, detect in detectors.items()}

    heldout_bots = load(DATA / "heldout_bots.tsv")
    heldout_browsers = load(DATA / "heldout_browsers.tsv.gz")
    print(f"corpora: {len(bots)} bots, {len(browsers)} browsers (bench/data; sources in bench/data/README.md)")
    report_bots("bots", bots, flags(bots), args.show)
    report_browsers("browsers", browsers, flags(browsers), args.show)
    print(f"\nheld out (three other projects, kept apart): {len(heldout_bots)} bots, {len(heldout_browsers)} browsers")
    report_bots("held-out bots", heldout_bots, flags(heldout_bots), args.show)
    report_browsers("held-out browsers", heldout_browsers, flags(heldout_browsers), args.show)
    if extra_bots:
        report_bots("extra bots", extra_bots, flags(extra_bots), args.show)
    if extra_browsers:
        report_browsers("extra browsers", extra_browsers, flags(extra_browsers), args.show)

    uas = [s.ua for s in browsers] + [s.ua for s in bots]
    costs = {"before": per_ua_cost(before.bot, uas), "now": per_ua_cost(now.detect, uas)}
    print(
        f"\ncost of an unseen User-Agent (no cache, best of 3 over {len(uas)} strings): "
        f"before {costs['before']:.1f} us (bot flag only), now {costs['now']:.1f} us (the whole Device)"
    )
    if against:
        rules = {"against": against.matcher.declared, "now": now._bots.declared}
        times = {name: min(per_ua_cost(f, uas, 1) for _ in range(5)) for name, f in rules.items()}
        print(f"the bot rules alone (best of 5): against {times['against']:.2f} us, now {times['now']:.2f} us")
    sources = Counter(s.source.split("/")[0] for s in bots + browsers + heldout_bots + heldout_browsers)
    print("sources:", ", ".join(f"{k} {v}" for k, v in sorted(sources.items())))


if __name__ == "__main__":
    main()
