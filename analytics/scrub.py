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
# Where a match may start: not inside a word or a number; just after a percent escape (`%20`) is a start too.
_START_WORD = r"(?:(?<=%[0-9A-Fa-f]{2})|(?<![A-Za-z0-9_%-]))"
_START_DIGITS = r"(?:(?<=%[0-9A-Fa-f]{2})|(?<![\w+%])(?<!\d[ .-]))"
_PATTERN = re.compile(
    "|".join(
        (
            # A JWT: base64url of '{"' (eyJ), then its payload and signature, dot-separated.
            r"(?P<jwt>(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*)?)",
            # An e-mail address, also percent-encoded (jane%40example.com); `icon@2x.png` is an image.
            r"(?P<email>(?:[\w.+-]|%2[BbEe])+(?:@|%40)(?!\d(?:\.\d)?x\.)(?:[\w-]+\.)+[^\W\d_]{2,}(?![\w-]))",
            rf"(?P<uuid>(?<!{_HEX}){_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}(?!{_HEX}))",
            rf"(?P<mac>(?<![\w:-])(?:{_HEX}{{2}}[:-]){{5}}{_HEX}{{2}}(?![\w:-]))",
            r"(?P<ip4>(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\.?\w))",
            rf"(?P<ip6>(?<![\w:])(?:(?:{_HEX}{{1,4}}:){{7}}{_HEX}{{1,4}}"
            rf"|(?:{_HEX}{{1,4}}:){{1,6}}:(?:{_HEX}{{1,4}}(?::{_HEX}{{1,4}}){{0,5}})?)(?![\w:]))",
            # Digits in groups (phone numbers, card numbers), or after a +; checked by _phone.
            rf"(?P<phone>{_START_DIGITS}(?:(?:\+|%2[Bb])\d{{7,15}}(?!\d)"
            r"|(?:\+|%2[Bb])?\(?\d{1,8}\)?(?:(?:[ .-]|%20){1,2}\(?\d{1,8}\)?)+(?!\w)))",
            # A run of letters, digits, - and _ long enough to be a token; checked by _run.
            rf"(?P<run>{_START_WORD}[A-Za-z0-9_-]{{{MIN_TOKEN},}})",
            rf"(?P<number>(?:(?<=%[0-9A-Fa-f]{{2}})|(?<![\d%]))\d{{{MIN_DIGITS},}}(?!\d))",
        )
    )
)
# A quick look before the full pattern: text without any of these characters cannot match it (most event
# names, many paths).
_SUSPECT = re.compile(r"[0-9A-Z@;]")
_NUMBER = re.compile(rf"(?<!\d)\d{{{MIN_DIGITS},}}(?!\d)")
_GROUPS = re.compile(r"\d+")
_SEPARATORS = re.compile(r"[ .-]")
_ALL_HEX = re.compile(rf"{_HEX}+")
_SPLIT = re.compile(r"([-_])")
_QUERY = re.compile(r"[?#]")
_PREFIX = re.compile(r"(?:[a-z]{1,8}_)+")
_CAMEL_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_GLUED_DIGITS = re.compile(r"(?<=[A-Za-z])\d+|\d+(?=[A-Za-z])")
_CONSONANTS = re.compile(r"[b-df-hj-np-tv-xz]+", re.I)
_VOWELS = frozenset("aeiouyAEIOUY")


def scrub(text: str) -> str:
    """The text with e-mail addresses, phone numbers, long numbers, UUIDs, IP addresses, tokens and session path
    parameters replaced (see the module's docstring); text with none of them is returned as it is."""
    if not _SUSPECT.search(text):
        return text
    if ";" in text:
        text = _SESSION_PARAMETER.sub("", text)
    return _PATTERN.sub(_replace, text)


def strip_url(text: str) -> str:
    """An absolute http(s) URL reduced to scheme, host (and port) and scrubbed path: its user name and password,
    query and fragment are dropped (they are where tokens and e-mail addresses travel). Other text is scrubbed."""
    if not text[:8].lower().startswith(("http://", "https://")):
        return scrub(text)
    try:
        url = urlsplit(text.strip())
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


def _replace(match: re.Match[str]) -> str:
    kind, text = match.lastgroup, match.group()
    if kind == "email":
        return "(email)"
    if kind == "uuid":
        return "(uuid)"
    if kind in ("jwt", "mac"):
        return "(token)"
    if kind == "ip4":
        # 120.0.0.0 is a browser version, 0.x and x.0 no host's address.
        return text if text.startswith("0.") or text.endswith(".0") else "(ip)"
    if kind == "ip6":
        return "(ip)" if any(c.isdigit() for c in text) else text  # "dead::beef" is not an address
    if kind == "phone":
        return _phone(text)
    if kind == "run":
        return _run(text)
    return "(number)"


def _phone(text: str) -> str:
    """Digits after a + (7 to 15: E.164), or 9 or more digits in groups of at most 4 with one kind of separator
    (06 12 34 56 78, 555-123-4567, (555) 123-4567), are a phone number; a card number's 16 digits a number.
    Dates (2024-05-12), versions (10.0.19045) and ISBNs (978-3-16-148410-0) stay."""
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
    return _NUMBER.sub("(number)", text)


def _run(text: str) -> str:
    """A run of letters, digits, - and _: the whole run, or the parts between its - and _, when they look generated
    (see `looks_random`); long numbers in what stays."""
    if "-" in text or "_" in text:
        parts = _SPLIT.split(text)
        replaced = [("(token)" if len(p) >= MIN_TOKEN and looks_random(p) else p) for p in parts]
        if "(token)" not in replaced and looks_random(text):
            # A base64url token, whose - and _ cut it into short pieces, or a prefixed id (cus_NffrFeUfNV2Hib,
            # sk_live_...): the prefix says what it is and stays.
            prefix = _PREFIX.match(text)
            return (prefix.group() if prefix else "") + "(token)"
        text = "".join(replaced)
    elif looks_random(text):
        return "(token)"
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
    digits = sum(c.isdigit() for c in core)
    if digits and _ALL_HEX.fullmatch(core) and not core.isalpha():
        return True
    parts = _CAMEL_PARTS.findall(text)
    if not core.islower() and not core.isupper() and len(core) < 2.6 * len(parts):
        return True
    glued = len(_GLUED_DIGITS.findall(text))
    if glued >= 3:
        return True
    if glued >= 2 and any(len(run) >= 5 for p in parts for run in _CONSONANTS.findall(p)):
        return True
    letters = len(core) - digits
    return glued >= 1 and sum(c in _VOWELS for c in core) < 0.2 * letters
