from __future__ import annotations

import pytest

from analytics.beacon import parse_url
from analytics.referrers import host, is_self, is_spam, source


@pytest.mark.parametrize(
    ("referrer", "expected_source", "expected_host"),
    [
        ("https://www.google.com/search?q=private", "Google", "google.com"),
        ("https://www.google.fr/", "Google", "google.fr"),
        ("https://www.google.co.uk/", "Google", "google.co.uk"),
        ("https://google.com.br/", "Google", "google.com.br"),
        ("https://www.bing.com/search?q=x", "Bing", "bing.com"),
        ("https://duckduckgo.com/", "DuckDuckGo", "duckduckgo.com"),
        ("https://l.facebook.com/l.php?u=x", "Facebook", "l.facebook.com"),
        ("https://m.facebook.com/", "Facebook", "m.facebook.com"),
        ("https://www.linkedin.com/feed/", "LinkedIn", "linkedin.com"),
        ("https://lnkd.in/abc", "LinkedIn", "lnkd.in"),
        ("https://old.reddit.com/r/python", "Reddit", "old.reddit.com"),
        ("https://t.co/xyz", "X (Twitter)", "t.co"),
        ("https://x.com/someone", "X (Twitter)", "x.com"),
        ("https://github.com/org/repo", "GitHub", "github.com"),
        ("https://news.ycombinator.com/item?id=1", "Hacker News", "news.ycombinator.com"),
        ("https://www.qwant.com/?q=x", "Qwant", "qwant.com"),
        ("android-app://com.google.android.gm/", "Gmail", "com.google.android.gm"),
        ("https://blog.someone.net/post/1?x=y", "blog.someone.net", "blog.someone.net"),
        ("https://google.evil.com/", "google.evil.com", "google.evil.com"),
        ("https://notgoogle.com/", "notgoogle.com", "notgoogle.com"),
    ],
)
def test_referrer_becomes_a_source_name_and_a_bare_host(
    referrer: str, expected_source: str, expected_host: str
) -> None:
    name = host(parse_url(referrer))
    assert name == expected_host
    assert source(name, "") == expected_source


@pytest.mark.parametrize(
    ("fallback", "expected"),
    [("newsletter", "newsletter"), ("google", "Google"), ("HN", "Hacker News"), ("fb", "Facebook"), ("", "")],
)
def test_without_referrer_the_utm_source_or_ref_names_the_source(fallback: str, expected: str) -> None:
    assert source("", fallback) == expected


def test_referrer_wins_over_utm_source() -> None:
    assert source("news.ycombinator.com", "newsletter") == "Hacker News"


def test_self_referrals() -> None:
    assert is_self("example.com", "example.com", "example.com")
    assert is_self("blog.example.com", "example.com", "example.com")
    assert is_self("shop.example.net", "shop.example.net", "example.com")
    assert not is_self("example.com.evil.net", "example.com", "example.com")


def test_spam_domains_match_subdomains_and_extra_entries() -> None:
    assert is_spam("semalt.com")
    assert is_spam("www2.darodar.com")
    assert not is_spam("google.com")
    assert is_spam("sub.spammy.example", frozenset({"spammy.example"}))
