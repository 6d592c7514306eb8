"""Hostile input and floods: nothing a visitor or an attacker sends may cost another request's event."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.beacon import Beacon, Rejection, parse
from tests.conftest import Harness, pageview
from tests.test_store_sqlite import event

# Every string a beacon carries, and where it goes in the body.
STRING_FIELDS: dict[str, Any] = {
    "name": lambda s: pageview(name="x" + s),
    "url": lambda s: pageview(url="https://example.com/" + s),
    "domain": lambda s: pageview(domain="example.com," + s),
    "referrer": lambda s: pageview(referrer="https://ref.example/" + s),
    "props key": lambda s: pageview(props={"k" + s: "v"}),
    "props value": lambda s: pageview(props={"k": "v" + s}),
    "meta string": lambda s: pageview(meta=json.dumps({"k": s}, ensure_ascii=True)),
    "revenue currency": lambda s: pageview(revenue={"amount": 1, "currency": s}),
}
POISON = ["\udfff", "\ud800", "\x00", "a\udc80b", "\ud83d"]  # lone surrogates (one half of an emoji) and NUL


def body(field: str, text: str) -> bytes:
    # ensure_ascii: the surrogate travels as the JSON escape \udfff, which is how an attacker sends it
    return json.dumps(STRING_FIELDS[field](text), ensure_ascii=True).encode()


def storable(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" not in value and value.encode("utf-8", "strict") is not None
    if isinstance(value, tuple):
        return all(storable(v) for v in value)
    return True


@pytest.mark.parametrize("field", STRING_FIELDS)
@pytest.mark.parametrize("poison", POISON, ids=repr)
async def test_poisoned_events_do_not_cost_honest_events_committed_with_them(
    harness: Harness, field: str, poison: str
) -> None:
    honest = [pageview(url=f"https://example.com/honest-{i}") for i in range(30)]
    requests = [harness.send(json.dumps(b).encode()) for b in honest]
    requests.insert(15, harness.send(body(field, poison)))
    answers = await asyncio.gather(*requests)
    bad = answers.pop(15)
    assert [a.status_code for a in answers] == [202] * 30
    assert bad.status_code in (202, 400), bad.text  # 202 only when the value is ignored (an unknown extra domain)
    if bad.status_code == 400:
        assert bad.json()["field"] and ("surrogate" in bad.text or "NUL" in bad.text or "currency" in bad.text)
    stored = {r["pathname"] for r in await harness.rows()}
    assert {f"/honest-{i}" for i in range(30)} <= stored


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(list(STRING_FIELDS)), text=st.text(st.characters(exclude_categories=()), max_size=60))
def test_parsing_refuses_what_cannot_be_stored_and_names_the_field(field: str, text: str) -> None:
    found = parse(body(field, text), "text/plain")
    if isinstance(found, Rejection):
        assert found.status in (400, 413) and found.field
        json.dumps(found.body()).encode()  # the error itself can be sent
    else:
        assert isinstance(found, Beacon)
        assert all(storable(getattr(found, f)) for f in found.__slots__)  # type: ignore[attr-defined]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(list(STRING_FIELDS)), text=st.text(st.characters(exclude_categories=()), min_size=1))
async def test_any_text_in_any_field_is_stored_or_refused_alone(harness: Harness, field: str, text: str) -> None:
    before = len(await harness.rows())
    honest, hostile = await asyncio.gather(
        harness.send(pageview(url="https://example.com/ok")), harness.send(body(field, text))
    )
    assert honest.status_code == 202
    assert hostile.status_code in (202, 400, 413), hostile.text
    stored = len(await harness.rows()) - before
    assert stored == 1 + (hostile.status_code == 202 and "x-analytics-dropped" not in hostile.headers)


async def test_a_row_the_database_refuses_is_retried_apart_from_the_others(harness: Harness) -> None:
    """Defence in depth behind parsing: a value that reaches the real store and fails there."""
    writer = harness.services.writer
    honest = [writer.submit([event(ts=i, pathname=f"/h{i}")]) for i in range(20)]
    bad = writer.submit([event(ts=99, pathname="/\udfff")])
    results = await asyncio.gather(*honest, bad, return_exceptions=True)
    assert results[:20] == [None] * 20
    assert "could not be stored" in str(results[20])
    assert {r["pathname"] for r in await harness.rows()} == {f"/h{i}" for i in range(20)}
