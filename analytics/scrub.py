"""Scrubbing: what could name a person in a free-text value is replaced by a placeholder before it is stored.

`scrub(text)` is the one function every stored free-text value goes through (page path, event name, UTM values,
property values, source, referrer and hostnames): e-mail addresses become `(email)` (also percent-encoded, with
non-ASCII letters, or with the @ spelt otherwise: `(at)`, `&#64;`), phone numbers `(phone)`, runs of 7 or more
digits, card numbers however grouped, IBANs and UK National Insurance numbers `(number)`, UUIDs `(uuid)`, IP
addresses `(ip)`, and long random-looking strings (hex, base64, JWTs, generated keys, AWS access key ids)
`(token)`; session ids in path parameters (`;jsessionid=...`) are removed. Pure and idempotent: no placeholder
matches any rule, so `scrub(scrub(x)) == scrub(x)`. `scrub_host` scrubs a host name in the case it was sent in,
then lowercases it; `strip_url` reduces a URL sent as a value to its scheme, host and path (a `mailto:` or
`javascript:` URL to its scheme). README § Scrubbing lists the rules with examples, and what they do not catch.
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
_AFTER_MAC = _start(r"\w:") + f"(?<!{_HEX}-)"  # not in a longer run of hex pairs (aa-bb-...-ff-00)
_AFTER_IP4 = _start(r"\w.")
_AFTER_IP6 = _start(r"\w:")
_AFTER_PHONE = _start(r"\d+")  # after letters too: tel:, phone+33..., Call0612...
_AFTER_DIGIT = _start(r"\d")
# Each rule is one pass over the text, run only when a cheap look says it could match, and from where it could
# (the one pattern of all rules that came before cost 5-20 us on every value, most of it in lookbehinds tried at
# each position).
# What joins an address's parts: `@` (also percent-encoded once or twice, as %u0040, full-width, as an HTML
# entity, or spelt out in brackets: `(at)`, `[at]`), and the dots of its domain (also `[dot]`).
_AT = (
    r"(?:@|%40|%2540|%u0040|\uff20|\ufe6b|&#0*64;|&#[xX]0*40;|&commat;"
    r"|\s*[(\[{<]\s*(?i:at)\s*[)\]}>]\s*)"
)
_DOT = r"(?:\.|%2[Ee]|\uff0e|\s*[(\[{<]\s*(?i:dot)\s*[)\]}>]\s*)"
_AT_WORD = re.compile(r"[(\[{<]\s*at\s*[)\]}>]", re.I)
_AT_HINT = re.compile("[%&(\\[{<\uff20\ufe6b]")
"""Where an `@` spelt otherwise could be (most values have none of these)."""
# A percent-encoded byte of a non-ASCII character (a browser sends `/users/张伟@qq.com` as `%E5%BC%A0...@qq.com`),
# also encoded twice (%25E5): part of the address, like the letter it encodes.
_NON_ASCII = rf"%(?:25)?[89A-Fa-f]{_HEX}"
# Where an address may start: as _AFTER_WORD_OR_DOT, but not right after the escape of a non-ASCII byte (it is part
# of the address: an address that could start after each of them would be looked for from each, in square time).
_AFTER_LOCAL = rf"(?:(?<=%[0-7]{_HEX})(?<!%25)|(?<=%25)(?![89A-Fa-f]{_HEX})|(?<![%\w.+-])|(?<=%)(?!{_HEX}{_HEX}))"
_EMAIL = re.compile(
    # Also percent-encoded (jane%40example.com); `icon@2x.png` is an image. A domain has a dot, but for
    # `localhost` and an address literal (`jane@[192.168.1.1]`).
    rf"{_AFTER_LOCAL}(?:[\w.+-]|%2[BbDdEe]|%5[Ff]|{_NON_ASCII})+{_AT}(?!\d(?:\.\d)?x\.)"
    rf"(?:(?:(?:[\w-]|%2[Dd]|{_NON_ASCII})+{_DOT})+(?:[^\W\d_]|{_NON_ASCII}){{2,}}"
    r"|localhost(?![\w.-])|\[(?:IPv6:)?[0-9A-Fa-f:.]+\])"
)
# A JWT: base64url of '{"' (eyJ), then its payload and signature, dot-separated.
_JWT = re.compile(rf"{_AFTER_RUN}eyJ[A-Za-z0-9_-]{{8,}}\.[A-Za-z0-9_-]{{8,}}(?:\.[A-Za-z0-9_-]*)?")
_UUID = re.compile(rf"{_AFTER_HEX}{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}(?!{_HEX})")
_COLON = "(?::|%3[Aa])"
"""A colon, also percent-encoded (`encodeURIComponent` of an address in a route: 2001%3Adb8%3A%3A1)."""
_MAC = re.compile(rf"{_AFTER_MAC}(?:{_HEX}{{2}}(?:-|{_COLON})){{5}}{_HEX}{{2}}(?![\w:]|-{_HEX}|%3[Aa])")
_IP4 = re.compile(rf"{_AFTER_IP4}\d{{1,3}}\.(?:\d{{1,3}}\.){{2}}\d{{1,3}}(?!\.?\w)")  # each part checked
_IP6 = re.compile(
    rf"{_AFTER_IP6}(?:(?:{_HEX}{{1,4}}{_COLON}){{7}}{_HEX}{{1,4}}"
    rf"|(?:{_HEX}{{1,4}}{_COLON}){{1,6}}{_COLON}(?:{_HEX}{{1,4}}(?:{_COLON}{_HEX}{{1,4}}){{0,5}})?)(?![\w:]|%3[Aa])"
)
_ENCODED_COLON = re.compile("%3[Aa]")
# An IPv4 address in a host name: its four numbers joined by dots or dashes, among other labels
# (203.0.113.7.nip.io, ip-203-0-113-7.ec2.internal, ec2-203-0-113-7.compute-1.amazonaws.com, c-73-22-11-5.isp.net);
# in other text, AWS's dashed form after `ip-` or `ec2-`. Each part checked, as for _IP4.
_HOST_IP4 = re.compile(r"(?<!\d)(?<!\d\.)\d{1,3}([.-])\d{1,3}\1\d{1,3}\1\d{1,3}(?![.-]?\d)")
_DASHED_IP4 = re.compile(r"(?<![A-Za-z0-9])((?:ip|ec2)-)(\d{1,3}(?:-\d{1,3}){3})(?!-?\d)", re.I)
# UK National Insurance numbers (QQ 12 34 56 C): the two letters HMRC allocates (and QQ, its documentation's
# example), six digits, A to D; an IBAN (GB82 WEST 1234 5698 7654 32), checked by its mod-97 check digits.
_NINO = re.compile(
    rf"{_start('A-Za-z0-9')}(?:(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]|QQ)"
    r"(?:(?: |%20)?\d\d){3}(?: |%20)?[A-D](?![A-Za-z0-9])"
)
_IBAN = re.compile(
    rf"{_start('A-Za-z0-9')}[A-Z]{{2}}\d\d(?:(?: |%20)?[A-Z0-9]{{4}}){{2,7}}(?:(?: |%20)?[A-Z0-9]{{1,3}})?"
    r"(?![A-Za-z0-9])"
)
_UPPER_PAIR = re.compile(r"[A-Z]{2}(?: |%20)?\d")
"""Where a National Insurance number or an IBAN could start."""
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
_AWS_KEY = re.compile(r"(?:AKIA|ASIA)[A-Z0-9]{16}", re.I)
"""An AWS access key id (AKIAIOSFODNN7EXAMPLE): 20 characters, mostly letters, that do not look random."""
_ANY_DIGIT = re.compile(r"\d")
_LONG_NUMBER = re.compile(rf"{_AFTER_DIGIT}\d{{{MIN_DIGITS},}}(?!\d)")
_DIGITS = re.compile(rf"\d{{{MIN_DIGITS}}}")
# A quick look before the full pattern: text without any of these characters cannot match it (most event
# names, many paths): digits, capitals, what an e-mail address is joined with, session parameters.
_SUSPECT = re.compile("[\\dA-Z@;&(\\[{<\uff20\ufe6b]")  # any script's digits: \d below matches them too
_NUMBER = re.compile(rf"(?<!\d)\d{{{MIN_DIGITS},}}(?!\d)")
_GROUPS = re.compile(r"\d+")
_ONE_SEPARATOR = [re.compile(rf"(?<!\d)\d{{1,4}}(?:(?:{sep})\d{{1,4}})+(?!\d)") for sep in (" |%20", r"\.", "-")]
_SEPARATORS = re.compile(r"[ .-]")
_DATE = re.compile(r"(?<!\d)(?:(\d{4})([ .-])(\d\d?)\2(\d\d?)|(\d\d?)([ .-])(\d\d?)\6(\d{4}))(?!\d)")
"""A date in a run of digits (2024-05-12 10:30, 12.05.2024 10:30): year, month and day, or day, month and year."""
_ALL_HEX = re.compile(rf"{_HEX}+")
_SPLIT = re.compile(r"([-_])")
_LONG_PART = re.compile(rf"[A-Za-z0-9]{{{MIN_TOKEN}}}")
_QUERY = re.compile(r"[?#]")
_SPACE = re.compile(r"\s")
_PREFIX = re.compile(r"(?:[a-z]{1,8}_)+")
_CAMEL_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_DIGIT_RUN = re.compile(r"\d+")
_CONSONANTS = re.compile(r"[b-df-hj-np-tv-xz]+", re.I)
_VOWELS = frozenset("aeiouyAEIOUY")


def scrub(text: str) -> str:
    """The text with e-mail addresses, phone numbers, long numbers, UUIDs, IP addresses, tokens, national ids
    and session path parameters replaced (see the module's docstring); text with none of them is returned as it
    is."""
    if not _SUSPECT.search(text):
        return text
    if ";" in text:
        text = _SESSION_PARAMETER.sub("", text)
    if "@" in text or (_AT_HINT.search(text) is not None and _spelt_at(text)):
        text = _EMAIL.sub("(email)", text)
    if "eyJ" in text:
        text = _JWT.sub("(token)", text)
    if _ANY_DIGIT.search(text) is not None:
        dashes = text.count("-")
        colons = text.count(":")
        encoded = len(_ENCODED_COLON.findall(text)) if "%3" in text else 0
        colons += encoded
        if dashes >= 4:
            text = _UUID.sub("(uuid)", text)
        if colons >= 5 or dashes >= 5:
            text = _MAC.sub("(token)", text)
        if text.count(".") >= 3:
            text = _IP4.sub(_ip4, text)
        if dashes >= 4 and ("ip-" in text or "IP-" in text or "ec2-" in text or "EC2-" in text):
            text = _DASHED_IP4.sub(_dashed_ip4, text)
        if "::" in text or colons >= 7 or (encoded and colons >= 2):
            text = _IP6.sub(_ip6, text)
        pair = None if text.islower() else _UPPER_PAIR.search(text)
        if pair is not None:
            text = _sub(_NINO, _number, text, pair.start())
            text = _sub(_IBAN, _iban, text, pair.start())
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


def _spelt_at(text: str) -> bool:
    """Whether the text has an `@` spelt otherwise (see _AT)."""
    if "%" in text and ("%40" in text or "%2540" in text or "%u0040" in text):
        return True
    if "&" in text and ("&#" in text or "&commat;" in text):
        return True
    if not text.isascii() and ("\uff20" in text or "\ufe6b" in text):
        return True
    return ("(" in text or "[" in text or "{" in text or "<" in text) and _AT_WORD.search(text) is not None


def scrub_host(name: str) -> str:
    """A host name as sent, scrubbed, then lowercased as host names are stored. Scrubbed in its own case first
    (a token's mixed case is what tells it from a word: `AbCdEf...` is random, `abcdef...` could be a name), then
    lowercased, and the IPv4 addresses among its labels (`203.0.113.7.nip.io`, `ip-203-0-113-7.ec2.internal`)
    replaced too."""
    if not _SUSPECT.search(name):  # no digit, no ASCII capital: nothing to replace (most host names)
        return name.lower()
    text = scrub(name)
    lowered = text.lower()
    if lowered != text:  # (browsers send host names lowercased: most are scrubbed once)
        lowered = scrub(lowered)
    if _ANY_DIGIT.search(lowered) is not None and lowered.count(".") + lowered.count("-") >= 3:
        lowered = _HOST_IP4.sub(_ip4, lowered)
    return lowered


def host_as_sent(netloc: str) -> str:
    """The host of a URL's authority (`user:pw@Host.Example:8443`), in the case it was sent in: what
    `urlsplit(...).hostname` is before it is lowercased."""
    host = netloc.rpartition("@")[2]
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.partition(":")[0]


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_SPECIAL = frozenset({"http", "https", "ws", "wss", "ftp"})
"""Schemes whose URLs always have a host: browsers skip any slashes and backslashes after the scheme
(`https:/host`, `https:\\host`), and read a backslash in the path as a slash."""
_OPAQUE = {
    "mailto": "(email)",
    "tel": "(phone)",
    "sms": "(phone)",
    "callto": "(phone)",
    "sip": "",
    "xmpp": "",
    "javascript": "",
    "vbscript": "",
    "data": "",
    "blob": "",
}
"""URLs without a host whose whole content may name someone or hold anything: the scheme is kept, with what the
rest was (an address, a phone number) or nothing."""


def strip_url(text: str) -> str:
    """A URL reduced to scheme, host (and port) and scrubbed path: its user name and password, query and fragment
    are dropped (they are where tokens and e-mail addresses travel). Any scheme with a host (`ftp://`, `wss://`,
    `myapp://`), a scheme-relative `//host/path`, a malformed `https:/host`; `mailto:`, `tel:`, `javascript:` and
    the like keep their scheme only (see _OPAQUE). Other text is scrubbed."""
    text = text.strip()
    found = _SCHEME.match(text)
    scheme = found.group(1).lower() if found else ""
    rest = text[found.end() :] if found else text
    if scheme in _SPECIAL:
        return _hierarchical(f"{scheme}://", rest.replace("\\", "/").lstrip("/"))
    if scheme in _OPAQUE:
        return f"{scheme}:{_OPAQUE[scheme] if _QUERY.split(rest, 1)[0] else ''}"
    if rest.startswith("//") and (scheme or not _SPACE.search(rest)):
        # Another scheme with a host (ftps://, myapp://), or none: //host/path (but not a "// comment").
        return _hierarchical(f"{scheme}://" if scheme else "//", rest[2:])
    if scheme and rest.startswith("/"):  # a path without a host (file:/..., msteams:/l/meetup-join/...)
        return f"{scheme}:{scrub(_QUERY.split(rest, 1)[0])}"
    return scrub(text)


def _hierarchical(prefix: str, rest: str) -> str:
    """`prefix` (scheme and //), then the host (and port) and scrubbed path of `rest`, the URL after them."""
    try:
        url = urlsplit(f"//{rest}")
        host, port = url.hostname, url.port
    except ValueError:
        host = None
    if not host:  # not a URL after all (a bad port, no host): its credentials, query and fragment go all the same
        before = _QUERY.split(rest, 1)[0]
        authority, slash, path = before.partition("/")
        return prefix + scrub(authority.rpartition("@")[2] + slash + path)
    name = scrub_host(host_as_sent(url.netloc))
    netloc = f"[{name}]" if ":" in name else name  # an IPv6 address scrubbing kept (none does)
    if port is not None:
        netloc += f":{port}"
    return f"{prefix}{netloc}{scrub(url.path or '/')}"


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
    return "(ip)" if _is_ip4(match.group()) else match.group()


def _dashed_ip4(match: re.Match[str]) -> str:
    return match.group(1) + ("(ip)" if _is_ip4(match.group(2)) else match.group(2))


def _is_ip4(text: str) -> bool:
    """Four numbers joined by dots (or dashes) are an address when each is one (0 to 255, no leading zero) and it
    is not a version: 120.0.0.0 is a browser's, 0.x and x.0 no host's address."""
    parts = text.replace("-", ".").split(".")
    if any(int(part) > 255 or (part != "0" and part.startswith("0")) for part in parts):
        return False
    return parts[0] != "0" and parts[-1] != "0"


def _ip6(match: re.Match[str]) -> str:
    text = match.group()
    # "dead::beef" is not an address (nor the 3 of an encoded colon, %3A, a digit)
    return "(ip)" if any(c.isdigit() for c in _ENCODED_COLON.sub(":", text)) else text


def _iban(match: re.Match[str]) -> str:
    """An IBAN when its check digits say so (15 to 34 characters, mod 97): the whole of it is a number."""
    text = match.group()
    code = text.replace("%20", "").replace(" ", "")
    if not 15 <= len(code) <= 34:
        return text
    return "(number)" if int("".join(str(int(c, 36)) for c in code[4:] + code[:4])) % 97 == 1 else text


def _luhn(digits: str) -> bool:
    """Whether the digits end with a valid Luhn check digit, as card numbers do."""
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _phone(match: re.Match[str]) -> str:
    """Digits after a + (7 to 15: E.164), or 9 or more digits in groups of at most 4 with one kind of separator
    (06 12 34 56 78, 555-123-4567, (555) 123-4567) or with spaces and dashes (555 123-4567), are a phone number;
    a card number's 13 to 19 digits, however they are grouped (4111 1111-1111 1111), a number. Dates (2024-05-12,
    also before a time: 2024-05-12 10:30), versions (10.0.19045), years (1990-2000 2010-2020) and ISBNs
    (978-3-16-148410-0) stay."""
    text = match.group()
    plain = text.replace("%20", " ").replace("%2B", "+").replace("%2b", "+")
    groups = _GROUPS.findall(plain)
    digits = sum(len(g) for g in groups)
    if plain.startswith("+"):
        return "(phone)" if 7 <= digits <= 15 else _NUMBER.sub("(number)", text)
    if digits < 9 or all(len(g) == 4 and g[:2] in ("19", "20") for g in groups):
        return _NUMBER.sub("(number)", text)
    kinds = set(_SEPARATORS.findall(plain))
    if 13 <= digits <= 19 and all(len(g) <= 6 for g in groups) and _luhn("".join(groups)):
        return "(number)"  # a card number
    # Spaces and dashes mixed, as in 555 123-4567 or 07911-123 456; not in a date with its time.
    mixed = kinds == {" ", "-"} and _DATE.search(plain) is None
    if len(kinds) <= 1 or "(" in plain or mixed:
        if all(len(g) <= 4 for g in groups):
            return "(phone)" if digits <= 15 else "(number)"
        if digits >= 14 and all(len(g) <= 6 for g in groups):
            return "(number)"
    # National formats in groups of up to 6 (07911 123456, 44 7911 123456, 07911-123456), but not an ISBN-10,
    # which ends with one check digit (3-16-148410-0).
    national = kinds == {" "} or kinds == {"-"} or mixed
    longest = max(len(g) for g in groups)
    if national and 10 <= digits <= 13 and len(groups) <= 4 and longest <= 6 and len(groups[-1]) > 1:
        return "(phone)"
    for pattern in _ONE_SEPARATOR:  # a phone number in a longer run of digits (06 12 34 56 78.2024)
        text = pattern.sub(_grouped, text)
    return _NUMBER.sub("(number)", text)


def _grouped(match: re.Match[str]) -> str:
    return "(phone)" if 9 <= sum(c.isdigit() for c in match.group()) <= 15 else match.group()


def _generated(text: str) -> bool:
    """Whether a run of letters and digits is a generated secret: random-looking, or an AWS access key id."""
    return looks_random(text) or _AWS_KEY.fullmatch(text) is not None


def _run(match: re.Match[str]) -> str:
    """A run of letters, digits, - and _: the whole run, or the parts between its - and _, when they look generated
    (see `looks_random`); long numbers in what stays."""
    text = match.group()
    if "-" not in text and "_" not in text:
        return "(token)" if _generated(text) else _NUMBER.sub("(number)", text)
    if _LONG_PART.search(text):  # a part long enough to be a token alone (reset-password-8f2a9c3e...)
        parts = _SPLIT.split(text)
        replaced = [("(token)" if len(p) >= MIN_TOKEN and _generated(p) else p) for p in parts]
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
