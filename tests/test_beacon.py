"""Beacon parsing: the Plausible body in both spellings, and a regression table of inputs that must be refused."""

from __future__ import annotations

import json

import pytest

from analytics.beacon import Beacon, Rejection, parse


def ok(body: object, content_type: str = "application/json") -> Beacon:
    result = parse(json.dumps(body).encode(), content_type)
    assert isinstance(result, Beacon), result
    return result


def test_long_and_short_keys_mean_the_same() -> None:
    long = ok(
        {
            "name": "Signup",
            "url": "https://a.example/x",
            "domain": "a.example",
            "referrer": "https://b.example/",
            "props": {"k": "v"},
            "revenue": {"amount": 1, "currency": "USD"},
            "interactive": False,
        }
    )
    short = ok(
        {
            "n": "Signup",
            "u": "https://a.example/x",
            "d": "a.example",
            "r": "https://b.example/",
            "p": {"k": "v"},
            "$": {"amount": 1, "currency": "USD"},
            "i": False,
        }
    )
    assert long == short


def test_legacy_meta_props_as_a_json_string() -> None:
    assert ok({"n": "x", "u": "https://a.example/", "d": "a.example", "m": '{"plan":"pro"}'}).props == (
        ("plan", "pro"),
    )
    assert ok({"n": "x", "u": "https://a.example/", "d": "a.example", "meta": {"a": 1}}).props == (("a", "1"),)


def test_prop_values_become_strings_and_nulls_are_dropped() -> None:
    props = ok(
        {
            "n": "x",
            "u": "https://a.example/",
            "d": "a.example",
            "props": {"b": True, "n": 2.5, "i": 7, "none": None, "empty": ""},
        }
    ).props
    assert props == (("b", "true"), ("i", "7"), ("n", "2.5"))


def test_domains_are_normalised_and_split() -> None:
    beacon = ok({"n": "x", "u": "https://a.example/", "d": " WWW.A.example , b.example,a.example"})
    assert beacon.domains == ("a.example", "b.example")


def test_any_content_type_is_read_as_json() -> None:
    body = {"n": "x", "u": "https://a.example/", "d": "a.example"}
    for content_type in ("text/plain;charset=UTF-8", "application/x-www-form-urlencoded", None, "application/json"):
        assert isinstance(parse(json.dumps(body).encode(), content_type), Beacon)


def test_non_json_body_with_a_form_type_says_so() -> None:
    rejection = parse(b"name=pageview", "application/x-www-form-urlencoded")
    assert isinstance(rejection, Rejection)
    assert "application/x-www-form-urlencoded" in rejection.message


def test_engagement_fields() -> None:
    beacon = ok({"n": "engagement", "u": "https://a.example/", "d": "a.example", "sd": 55, "e": 3000.0})
    assert (beacon.scroll_depth, beacon.engaged_ms) == (55, 3000)


def test_revenue_accepts_numbers_and_decimal_strings() -> None:
    base = {"n": "Buy", "u": "https://a.example/", "d": "a.example"}
    assert ok({**base, "revenue": {"amount": "1322.22", "currency": "USD"}}).revenue.amount_micros == 1_322_220_000  # type: ignore[union-attr]
    assert ok({**base, "$": '{"amount": 3, "currency": "jpy"}'}).revenue.currency == "JPY"  # type: ignore[union-attr]


# Inputs that once broke parsers of this kind, or that must never be stored.
REGRESSIONS = [
    (b"\xff\xfe\x00", 400),
    (b"null", 400),
    (b'"pageview"', 400),
    (b"1e999999", 400),
    (b"9" * 5000, 400),
    (b'{"n":"x","u":"https://a.example/","d":"a.example","w":1e400}', 400),
    (b'{"n":"x","u":"https://a.example/","d":"a.example","w":true}', 400),
    (b'{"n":"x","u":"https://a.example/","d":"a.example","i":2}', 400),
    (b'{"n":"x","u":"https://a.example/","d":"a.example","p":"[1]"}', 400),
    (b'{"n":"x","u":"https://a.example/","d":"a.example","p":"{bad"}', 400),
    (b'{"n":"x","u":"https://a.example/","d":"a.example","$":{"amount":true,"currency":"EUR"}}', 400),
    (b'{"n":"x","u":"https://a.example/","d":"a.example","$":{"amount":"NaN","currency":"EUR"}}', 400),
    (b'{"n":"x","u":"https://a.example/","d":"a.example","$":{"amount":1e13,"currency":"EUR"}}', 400),
    (b'{"n":"x","u":"https://a.example/","d":"a.example","$":5}', 400),
    (b'{"n":"x","u":"JaVaScRiPt:alert(1)","d":"a.example"}', 400),
    (b'{"n":"x","u":" vbscript:msgbox","d":"a.example"}', 400),
    (b'{"n":"x","u":"https://","d":"a.example"}', 400),
    (b'{"n":"x","u":"https://a.example/","d":",,,"}', 400),
    (b'{"n":"x","u":"https://a.example/","d":" . "}', 400),
    (b'{"n":"x","u":"https://a.example/","d":"a.example","r":"not a url"}', 400),
    (b'{"n":"x","u":"https://a.example/","d":"a.example","r":{"href":"x"}}', 400),
    (b'{"n":["x"],"u":"https://a.example/","d":"a.example"}', 400),
]


@pytest.mark.parametrize(("body", "status"), REGRESSIONS)
def test_regressions_are_refused_with_a_reason(body: bytes, status: int) -> None:
    result = parse(body, "application/json")
    assert isinstance(result, Rejection)
    assert result.status == status
    assert result.message
