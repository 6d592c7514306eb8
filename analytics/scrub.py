"""Scrubbing: what could name a person in a free-text value is replaced by a placeholder before it is stored.

`scrub(text)` is the one function every stored free-text value goes through (page path, event name, UTM values,
property values, source, referrer and hostnames): e-mail addresses become `(email)`, phone numbers `(phone)`,
runs of 7 or more digits `(number)`, UUIDs `(uuid)`, IP addresses `(ip)`, and long random-looking strings (hex,
base64, JWTs, generated keys) `(token)`; session ids in path parameters (`;jsessionid=...`) are removed. Pure and
idempotent: no placeholder matches any rule, so `scrub(scrub(x)) == scrub(x)`. `strip_url` reduces a URL sent
as a value to its scheme, host and path. README § Scrubbing lists the rules with examples.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

MIN_DIGITS = 7
"""A run of this many digits is a number that may identify someone (a phone number written without spaces, a
customer or order id, a timestamp). 7 is the shortest phone number in common use (a US local number); years (4),
postcodes (5) and the article or product ids of most sites (under a million) have fewer and stay."""
MIN_TOKEN = 16
"""A string of letters and digits this long may be a generated secret (64 bits of hex, 96 of base64); shorter
ones are kept: git short hashes (7-12), product codes, slugs' words."""

_SESSION_PARAMETER = re.compile(
    r";(?:jsessionid|phpsessid|aspsessionid\w*|sessionid|session_id|session|sessid|sid|cfid|cftoken)=[^/;?#&]*", re.I
)
"""Servlet, PHP, ASP and ColdFusion session ids put in the path when the browser refuses cookies."""

_HEX = "[0-9A-Fa-f]"


def _start(word: str) -> str:
    """Where a match may start: not inside a run of `word` characters (a character class's contents, ending with
    any -); right after a percent escape (`%2F`, `%20`) or a lone % it may, but not on an escape's hex digits."""
    return rf"(?:(?<=%{_HEX}{_HEX})|(?<![%{word}])|(?<=%)(?!{_HEX}{_HEX}))"


_AFTER_WORD_OR_DOT = _start(r"\w.+-")
_AFTER_RUN = _start("A-Za-z0-9_-")
_AFTER_HEX = _start("0-9A-Fa-f")
_AFTER_MAC = _start(r"\w:-")
_AFTER_IP4 = _start(r"\w.")
_AFTER_IP6 = _start(r"\w:")
_AFTER_PHONE = _start(r"\d+")  # after letters too: tel:, phone+33..., Call0612...
_AFTER_DIGIT = _start(r"\d")
# Each rule is one pass over the text, run only when a cheap look says it could match, and from where it could
# (the one pattern of all rules that came before cost 5-20 us on every value, most of it in lookbehinds tried at
# each position).
_EMAIL = re.compile(
    # Also percent-encoded (jane%40example.com); `icon@2x.png` is an image.
    rf"{_AFTER_WORD_OR_DOT}(?:[\w.+-]|%2[BbEe])+(?:@|%40|%2540)(?!\d(?:\.\d)?x\.)(?:[\w-]+(?:\.|%2[Ee]))+[^\W\d_]{{2,}}"
)
# A JWT: base64url of '{"' (eyJ), then its payload and signature, dot-separated.
_JWT = re.compile(rf"{_AFTER_RUN}eyJ[A-Za-z0-9_-]{{8,}}\.[A-Za-z0-9_-]{{8,}}(?:\.[A-Za-z0-9_-]*)?")
_UUID = re.compile(rf"{_AFTER_HEX}{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}(?!{_HEX})")
_MAC = re.compile(rf"{_AFTER_MAC}(?:{_HEX}{{2}}[:-]){{5}}{_HEX}{{2}}(?![\w:-])")
_IP4 = re.compile(rf"{_AFTER_IP4}\d{{1,3}}\.(?:\d{{1,3}}\.){{2}}\d{{1,3}}(?!\.?\w)")  # each part checked
_IP6 = re.compile(
    rf"{_AFTER_IP6}(?:(?:{_HEX}{{1,4}}:){{7}}{_HEX}{{1,4}}"
    rf"|(?:{_HEX}{{1,4}}:){{1,6}}:(?:{_HEX}{{1,4}}(?::{_HEX}{{1,4}}){{0,5}})?)(?![\w:])"
)
# Digits in groups (phone numbers, card numbers), or after a +; checked by _phone. Looked for only where a digit
# has a separator or a + next to it.
_PHONE = re.compile(
    rf"{_AFTER_PHONE}(?:(?:\+|%2[Bb])\d{{7,15}}(?!\d)"
    r"|(?:\+|%2[Bb])?\(?\d{1,8}\)?(?:(?:[ .-]|%20){1,2}\(?\d{1,8}\)?)+(?!\d))"
)
_PHONE_HINT = re.compile(r"\d\)?(?:[ .-]|%20){1,2}\(?\d|[+(]\d|%2[Bb]\d")
_PHONE_LEAD = 13
"""A phone number starts at most this many characters before its first hint (%2B, a parenthesis, 8 digits)."""
# A run of letters, digits, - and _ long enough to be a token; checked by _run.
_RUN = re.compile(rf"{_AFTER_RUN}[A-Za-z0-9_-]{{{MIN_TOKEN},}}")
_LONG = re.compile(rf"[A-Za-z0-9_-]{{{MIN_TOKEN}}}")
"""Where the first run long enough for _RUN starts (a fast scan: it starts with what it consumes)."""
_ANY_DIGIT = re.compile(r"\d")
_LONG_NUMBER = re.compile(rf"{_AFTER_DIGIT}\d{{{MIN_DIGITS},}}(?!\d)")
_DIGITS = re.compile(rf"\d{{{MIN_DIGITS}}}")
# A quick look before the full pattern: text without any of these characters cannot match it (most event
# names, many paths).
_SUSPECT = re.compile(r"[\dA-Z@;]")  # any script's digits: \d below matches them too
_NUMBER = re.compile(rf"(?<!\d)\d{{{MIN_DIGITS},}}(?!\d)")
_GROUPS = re.compile(r"\d+")
_ONE_SEPARATOR = [re.compile(rf"(?<!\d)\d{{1,4}}(?:(?:{sep})\d{{1,4}})+(?!\d)") for sep in (" |%20", r"\.", "-")]
_SEPARATORS = re.compile(r"[ .-]")
_ALL_HEX = re.compile(rf"{_HEX}+")
_SPLIT = re.compile(r"([-_])")
_LONG_PART = re.compile(rf"[A-Za-z0-9]{{{MIN_TOKEN}}}")
_QUERY = re.compile(r"[?#]")
_PREFIX = re.compile(r"(?:[a-z]{1,8}_)+")
_CAMEL_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_DIGIT_RUN = re.compile(r"\d+")
_CONSONANTS = re.compile(r"[b-df-hj-np-tv-xz]+", re.I)
_VOWELS = frozenset("aeiouyAEIOUY")


def scrub(text: str) -> str:
    """The text with e-mail addresses, phone numbers, long numbers, UUIDs, IP addresses, tokens and session path
    parameters replaced (see the module's docstring); text with none of them is returned as it is."""
    if not _SUSPECT.search(text):
        return text
    if ";" in text:
        text = _SESSION_PARAMETER.sub("", text)
    if "@" in text or "%40" in text or "%2540" in text:
        text = _EMAIL.sub("(email)", text)
    if "eyJ" in text:
        text = _JWT.sub("(token)", text)
    if _ANY_DIGIT.search(text) is not None:
        if text.count("-") >= 4:
            text = _UUID.sub("(uuid)", text)
        if text.count(":") >= 5 or text.count("-") >= 5:
            text = _MAC.sub("(token)", text)
        if text.count(".") >= 3:
            text = _IP4.sub(_ip4, text)
        if "::" in text or text.count(":") >= 7:
            text = _IP6.sub(_ip6, text)
        hint = _PHONE_HINT.search(text)
        if hint is not None:
            text = _sub(_PHONE, _phone, text, max(0, hint.start() - _PHONE_LEAD))
    long = _LONG.search(text)
    if long is not None:
        text = _sub(_RUN, _run, text, long.start())
    number = _DIGITS.search(text)
    if number is not None:
        text = _sub(_LONG_NUMBER, _number, text, number.start())
    return text


def strip_url(text: str) -> str:
    """An absolute http(s) URL reduced to scheme, host (and port) and scrubbed path: its user name and password,
    query and fragment are dropped (they are where tokens and e-mail addresses travel). Other text is scrubbed."""
    text = text.strip()
    if not text[:8].lower().startswith(("http://", "https://")):
        return scrub(text)
    try:
        url = urlsplit(text)
        host, port = url.hostname, url.port
    except ValueError:
        host = None
    if not host:  # not a URL after all (a bad port, no host): its query and fragment go all the same
        return scrub(_QUERY.split(text, 1)[0])
    name = scrub(host)
    netloc = f"[{name}]" if ":" in name else name  # an IPv6 address scrubbing kept (none does)
    if port is not None:
        netloc += f":{port}"
    return f"{url.scheme.lower()}://{netloc}{scrub(url.path or '/')}"


def _sub(pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str], text: str, pos: int) -> str:
    """`pattern.sub(replace, text)` for matches from `pos` on (lookbehinds still see what is before it)."""
    out: list[str] = []
    last = 0
    for match in pattern.finditer(text, pos):
        out += (text[last : match.start()], replace(match))
        last = match.end()
    return "".join((*out, text[last:])) if out else text


def _number(match: re.Match[str]) -> str:
    return "(number)"


def _ip4(match: re.Match[str]) -> str:
    text = match.group()
    if any(int(part) > 255 or (part != "0" and part.startswith("0")) for part in text.split(".")):
        return text
    # 120.0.0.0 is a browser version, 0.x and x.0 no host's address.
    return text if text.startswith("0.") or text.endswith(".0") else "(ip)"


def _ip6(match: re.Match[str]) -> str:
    text = match.group()
    return "(ip)" if any(c.isdigit() for c in text) else text  # "dead::beef" is not an address


def _phone(match: re.Match[str]) -> str:
    """Digits after a + (7 to 15: E.164), or 9 or more digits in groups of at most 4 with one kind of separator
    (06 12 34 56 78, 555-123-4567, (555) 123-4567), are a phone number; a card number's 16 digits a number.
    Dates (2024-05-12), versions (10.0.19045) and ISBNs (978-3-16-148410-0) stay."""
    text = match.group()
    plain = text.replace("%20", " ").replace("%2B", "+").replace("%2b", "+")
    groups = _GROUPS.findall(plain)
    digits = sum(len(g) for g in groups)
    if plain.startswith("+"):
        return "(phone)" if 7 <= digits <= 15 else _NUMBER.sub("(number)", text)
    if digits >= 9 and (len(set(_SEPARATORS.findall(plain))) <= 1 or "(" in plain):
        if all(len(g) <= 4 for g in groups):
            return "(phone)" if digits <= 15 else "(number)"
        if digits >= 14 and all(len(g) <= 6 for g in groups):
            return "(number)"
    spaced = set(_SEPARATORS.findall(plain)) == {" "}
    if spaced and 10 <= digits <= 13 and len(groups) <= 4 and all(len(g) <= 6 for g in groups):
        return "(phone)"  # national formats in space-separated groups of up to 6: 07911 123456, 44 7911 123456
    for pattern in _ONE_SEPARATOR:  # a phone number in a longer run of digits (06 12 34 56 78-2024)
        text = pattern.sub(_grouped, text)
    return _NUMBER.sub("(number)", text)


def _grouped(match: re.Match[str]) -> str:
    return "(phone)" if 9 <= sum(c.isdigit() for c in match.group()) <= 15 else match.group()


def _run(match: re.Match[str]) -> str:
    """A run of letters, digits, - and _: the whole run, or the parts between its - and _, when they look generated
    (see `looks_random`); long numbers in what stays."""
    text = match.group()
    if "-" not in text and "_" not in text:
        return "(token)" if looks_random(text) else _NUMBER.sub("(number)", text)
    if _LONG_PART.search(text):  # a part long enough to be a token alone (reset-password-8f2a9c3e...)
        parts = _SPLIT.split(text)
        replaced = [("(token)" if len(p) >= MIN_TOKEN and looks_random(p) else p) for p in parts]
        if "(token)" in replaced:
            rest = "".join(p for p, r in zip(parts, replaced, strict=True) if p == r)
            if looks_random(rest):  # what is left is random too (the rest of a UUID-like id): all of it goes
                return "(token)"
            return _NUMBER.sub("(number)", "".join(replaced))
    if looks_random(text):
        # A base64url token, whose - and _ cut it into short pieces, or a prefixed id (cus_NffrFeUfNV2Hib,
        # sk_live_...): the prefix says what it is and stays.
        prefix = _PREFIX.match(text)
        return (prefix.group() if prefix else "") + "(token)"
    return _NUMBER.sub("(number)", text)


def looks_random(text: str) -> bool:
    """Whether letters and digits look generated rather than written: hex with both letters and digits; case
    changing every 2 or 3 characters (`NffrFeUfNV2Hib`, where camelCase words are longer); digits scattered in 3
    or more places among letters (`k3j5h2g8f9`, where names have one or two: `iphone15`, `mp4H264`); or scattered
    digits with consonants piled up or few vowels (`JBSWY3DPEHPK3PXP`). Measured on random strings of 16 to 43
    characters (base64, base62, base36, base32, hex) and on camelCase, slugs and identifiers made of English
    words (tests/test_scrub.py)."""
    core = text.replace("-", "").replace("_", "")
    if len(core) < MIN_TOKEN or core.isdigit():
        return False
    mixed = not core.islower() and not core.isupper()
    if core.isalpha():
        # Letters only: random when the case changes every 2 or 3 characters; words otherwise.
        return mixed and len(core) < 2.6 * len(_CAMEL_PARTS.findall(text))
    if _ALL_HEX.fullmatch(core):
        return True
    if mixed and len(core) < 2.6 * len(_CAMEL_PARTS.findall(text)):
        return True
    glued = sum(
        1
        for m in _DIGIT_RUN.finditer(text)
        if (m.start() and text[m.start() - 1].isalpha()) or (m.end() < len(text) and text[m.end()].isalpha())
    )
    if glued >= 3:
        return True
    if glued >= 2 and any(len(run) >= 5 for part in _CAMEL_PARTS.findall(text) for run in _CONSONANTS.findall(part)):
        return True
    if not glued:
        return False
    letters = sum(c.isalpha() for c in core)
    return sum(c in _VOWELS for c in core) < 0.2 * letters
