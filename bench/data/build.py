"""Rebuilds bots.tsv and browsers.tsv from checkouts of the cited projects (see README.md beside this file).

    python bench/data/build.py SRC   # SRC holds one folder per project, named owner+repo (needs PyYAML)

Rows are `source<TAB>hint<TAB>weight<TAB>user-agent`: the hint is the source's own label (a bot category, a
device type, a client name), the weight is the intoli traffic share (empty elsewhere). Every User-Agent appears
once across both files, with the first source that lists it, in the order below. Only the strings are taken.
"""

from __future__ import annotations

import glob
import hashlib
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


def _write(path: Path, rows: Iterator[Row], seen: set[str]) -> int:
    count = 0
    with path.open("w") as out:
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
    src = Path(sys.argv[1])
    intoli = src / "intoli+user-agents" / "user-agents.json"
    seen: set[str] = set()
    print("bots", _write(HERE / "bots.tsv", bots(src), seen))
    print("browsers", _write(HERE / "browsers.tsv", browsers(src, intoli), seen))


if __name__ == "__main__":
    main()
