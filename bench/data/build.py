"""Rebuilds bots.tsv and browsers.tsv from checkouts of the cited projects (see README.md beside this file).

    python bench/data/build.py SRC   # SRC holds one folder per project, named owner+repo (needs PyYAML)
    python bench/data/build.py --heldout PKG   # PKG holds the unpacked registry packages named in README.md

Rows are `source<TAB>hint<TAB>weight<TAB>user-agent`: the hint is the source's own label (a bot category, a
device type, a client name), the weight is the intoli traffic share (empty elsewhere). Every User-Agent appears
once across both files, with the first source that lists it, in the order below. Only the strings are taken.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

HERE = Path(__file__).parent
Row = tuple[str, str, str, str]
# 1 in N smartphone and tablet strings of device-detector is kept (hash of the string, so stable): 29,000 of them
# would be 5 MB, and their long tail of models adds little to what 1 in 4 already shows.
PHONE_SAMPLE = 4


def _yaml(path: str) -> list[dict[str, object]]:
    with open(path) as f:
        return yaml.load(f, Loader=yaml.CSafeLoader) or []  # the C build of the safe loader


def _clean(ua: object) -> str | None:
    text = str(ua).strip() if ua is not None else ""
    return text if text and "\t" not in text and "\n" not in text else None


def _kept(ua: str) -> bool:
    return int(hashlib.sha1(ua.encode()).hexdigest(), 16) % PHONE_SAMPLE == 0


def bots(src: Path) -> Iterator[Row]:
    dd = src / "matomo-org+device-detector" / "Tests"
    for entry in _yaml(str(dd / "fixtures" / "bots.yml")):
        bot = entry.get("bot") or {}
        yield (
            "device-detector/bots.yml",
            str(bot.get("category") or "") if isinstance(bot, dict) else "",
            "",
            str(entry["user_agent"]),
        )
    for entry in _yaml(str(dd / "Parser" / "Client" / "fixtures" / "library.yml")):
        yield "device-detector/library.yml", "library", "", str(entry["user_agent"])
    isbot = src / "omrilotan+isbot" / "fixtures"
    for name, uas in (yaml.load((isbot / "crawlers.yml").read_text(), Loader=yaml.CSafeLoader) or {}).items():
        for ua in uas or ():
            yield "isbot/crawlers.yml", str(name), "", str(ua)
    for entry in _yaml(str(src / "ua-parser+uap-core" / "tests" / "test_device.yaml"))["test_cases"]:  # type: ignore[call-overload]
        if entry.get("family") == "Spider":
            yield "uap-core/test_device.yaml", "Spider", "", str(entry["user_agent_string"])
    for entry in json.loads((src / "monperrus+crawler-user-agents" / "crawler-user-agents.json").read_text()):
        for ua in entry.get("instances", ()):
            yield "crawler-user-agents/instances", ",".join(entry.get("tags", ())), "", ua


def browsers(src: Path, intoli: Path) -> Iterator[Row]:
    for entry in sorted(json.loads(intoli.read_text()), key=lambda e: -e["weight"]):
        yield "intoli/user-agents", entry["deviceCategory"], f"{entry['weight']:.3g}", entry["userAgent"]
    isbot = src / "omrilotan+isbot" / "fixtures"
    for name, uas in (yaml.load((isbot / "browsers.yml").read_text(), Loader=yaml.CSafeLoader) or {}).items():
        if str(name).startswith("ZZZ Insignificat bots"):  # isbot's own words: bots not worth listing
            continue
        for ua in uas or ():
            yield "isbot/browsers.yml", str(name), "", str(ua)
    dd = src / "matomo-org+device-detector" / "Tests"
    paths = [str(dd / "Parser" / "Client" / "fixtures" / "browser.yml")]
    # The device fixtures' `library` clients are left out of both files: a device's own media or download
    # framework (AppleCoreMedia on an Apple TV, an SDK on a watch) is no crawler, and no browser either.
    paths += sorted(p for p in glob.glob(str(dd / "fixtures" / "*.yml")) if not p.endswith("bots.yml"))
    for path in paths:
        for entry in _yaml(path):
            client = entry.get("client") or {}
            device = entry.get("device") or {}
            kind = client.get("type") if isinstance(client, dict) else None
            ua = str(entry["user_agent"])
            if "Headless" in ua:  # device-detector calls Headless Chrome a browser; here it is automation
                continue
            webview_app = kind == "mobile app" and ua.startswith("Mozilla/")  # in-app browsers: real people
            if kind != "browser" and not webview_app:
                continue
            dtype = str(device.get("type") or "") if isinstance(device, dict) else ""
            if dtype in ("smartphone", "tablet", "phablet") and not webview_app and not _kept(ua):
                continue
            label = f"app:{client.get('name')}" if webview_app else (dtype or "browser")  # type: ignore[union-attr]
            yield f"device-detector/{Path(path).name}", label, "", ua


def heldout_bots(pkg: Path) -> Iterator[Row]:
    """CrawlerDetect's crawler fixtures (no categories), woothee's crawlers and its HTTP libraries and feed readers."""
    fixtures = pkg / "crawlerdetect-0.4.2" / "tests" / "fixtures" / "user_agent"
    for ua in (fixtures / "crawlers.txt").read_text().splitlines():
        yield "crawlerdetect/crawlers.txt", "", "", ua
    for entry in _woothee(pkg):
        name = str(entry.get("name") or "")
        if entry.get("category") == "crawler":
            yield "woothee/testsets", f"crawler:{name}", "", str(entry["target"])
        elif name == "HTTP Library":
            yield "woothee/testsets", "library", "", str(entry["target"])
        elif "RSSReader" in name:
            yield "woothee/testsets", "feed", "", str(entry["target"])


def heldout_browsers(pkg: Path) -> Iterator[Row]:
    """top-user-agents' most common browsers, woothee's browsers and devices, CrawlerDetect's device fixtures (its
    "not a crawler": hint `Mozilla` for strings that start like a browser, `other` for the rest, among which are
    test strings, attack payloads and bare words)."""
    top = pkg / "top-user-agents-2.1.138" / "package" / "src"
    for name in ("desktop", "mobile"):
        for ua in json.loads((top / f"{name}.json").read_text()):
            yield "top-user-agents", name, "", ua
    for entry in _woothee(pkg):
        if entry.get("category") in ("pc", "smartphone", "mobilephone", "appliance"):
            yield "woothee/testsets", str(entry["category"]), "", str(entry["target"])
    devices = pkg / "crawlerdetect-0.4.2" / "tests" / "fixtures" / "user_agent" / "devices.txt"
    for ua in devices.read_text().splitlines():
        shaped = ua.startswith(("Mozilla/", "Opera/"))
        yield "crawlerdetect/devices.txt", "Mozilla" if shaped else "other", "", ua


def _woothee(pkg: Path) -> Iterator[dict[str, object]]:
    for path in sorted((pkg / "woothee-1.11.1" / "package" / "woothee" / "testsets").glob("*.yaml")):
        yield from _yaml(str(path))


def _seen(*paths: Path) -> set[str]:
    seen: set[str] = set()
    for path in paths:
        with path.open() as f:
            next(f)
            seen.update(line.rstrip("\n").split("\t", 3)[3] for line in f)
    return seen


def _write(path: Path, rows: Iterator[Row], seen: set[str]) -> int:
    count = 0
    opener = gzip.GzipFile(path, "wb", mtime=0) if path.suffix == ".gz" else path.open("wb")
    with opener as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as out:
        out.write("source\thint\tweight\tuser_agent\n")
        for source, hint, weight, raw in rows:
            ua = _clean(raw)
            if ua is None or ua in seen:
                continue
            seen.add(ua)
            out.write(f"{source}\t{hint.replace(chr(9), ' ')}\t{weight}\t{ua}\n")
            count += 1
    return count


def main() -> None:
    if sys.argv[1] == "--heldout":
        # Held out: strings of the main files are left out, so these measure only strings the rules never saw.
        pkg, seen = Path(sys.argv[2]), _seen(HERE / "bots.tsv", HERE / "browsers.tsv")
        print("held-out bots", _write(HERE / "heldout_bots.tsv", heldout_bots(pkg), seen))
        print("held-out browsers", _write(HERE / "heldout_browsers.tsv.gz", heldout_browsers(pkg), seen))
        return
    src = Path(sys.argv[1])
    intoli = src / "intoli+user-agents" / "user-agents.json"
    seen: set[str] = set()
    print("bots", _write(HERE / "bots.tsv", bots(src), seen))
    print("browsers", _write(HERE / "browsers.tsv", browsers(src, intoli), seen))


if __name__ == "__main__":
    main()
