from __future__ import annotations

import pytest

from analytics.beacon import parse_url
from analytics.pages import Page, hash_route, page


@pytest.mark.parametrize(
    ("url", "hash_mode", "expected"),
    [
        ("https://example.com", False, Page("example.com", "/")),
        ("https://www.Example.com/Pricing/", False, Page("example.com", "/Pricing/")),
        ("https://example.com/a?id=42&email=x@y.z", False, Page("example.com", "/a")),
        ("https://example.com/a#section", False, Page("example.com", "/a")),
        ("https://example.com/#/settings", True, Page("example.com", "/#/settings")),
        ("https://example.com/a", True, Page("example.com", "/a")),
        (
            "https://example.com/?utm_source=news&UTM_MEDIUM=email&utm_campaign=spring+sale&utm_content=a&utm_term=b&x=1",
            False,
            Page("example.com", "/", "news", "email", "spring sale", "a", "b"),
        ),
        ("https://example.com/?utm_source=first&utm_source=second", False, Page("example.com", "/", "first")),
        ("https://example.com/?ref=producthunt", False, Page("example.com", "/", ref="producthunt")),
        ("https://example.com/?source=hn", False, Page("example.com", "/", ref="hn")),
        ("app://localhost/login", False, Page("localhost", "/login")),
    ],
)
def test_page_keeps_path_and_utm_values_only(url: str, hash_mode: bool, expected: Page) -> None:
    assert page(parse_url(url), hash_mode) == expected


@pytest.mark.parametrize(
    ("fragment", "route"),
    [
        ("/settings", "/settings"),
        ("/", "/"),
        ("!/users/42", "!/users/42"),
        ("/verify?email=jane@example.com&code=482913", "/verify"),
        ("/search&q=jane", "/search"),
        ("access_token=ya29.a0AfH6&token_type=Bearer&expires_in=3599", ""),
        ("/callback/token=abc", "/callback/"),
        ("?utm_source=x", ""),
    ],
)
def test_a_hash_route_keeps_its_route_and_drops_its_parameters(fragment: str, route: str) -> None:
    assert hash_route(fragment) == route
    path = page(parse_url(f"https://example.com/app#{fragment}"), hash_mode=True).path
    assert path == (f"/app#{route}" if route else "/app")
