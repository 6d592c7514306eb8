"""Whatever the bytes, the ingest endpoint answers with a 2xx or a 4xx, never a 500, and stores only valid events."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Harness

KEYS = [
    "name",
    "n",
    "url",
    "u",
    "domain",
    "d",
    "referrer",
    "r",
    "props",
    "p",
    "m",
    "meta",
    "revenue",
    "$",
    "interactive",
    "i",
    "h",
    "w",
    "sd",
    "e",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)
plausible_bodies = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["pageview", "engagement", "Signup"]),
        "url": st.sampled_from(["https://example.com/", "https://example.com/a?utm_source=x"]),
        "domain": st.just("example.com"),
    },
).flatmap(
    lambda base: st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6).map(lambda extra: {**base, **extra})
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=st.binary(max_size=300))
async def test_random_bytes_never_cause_a_server_error(harness: Harness, body: bytes) -> None:
    response = await harness.send(body, headers={"Content-Type": "text/plain"})
    assert response.status_code in (202, 400, 413), response.text


@FUZZ
@given(body=plausible_bodies)
async def test_mutated_plausible_bodies_are_accepted_or_refused_with_a_reason(harness: Harness, body: dict) -> None:
    before = len(await harness.rows())
    response = await harness.send(json.dumps(body).encode())
    assert response.status_code in (202, 400, 413), response.text
    stored = len(await harness.rows()) - before
    if response.status_code == 202 and "x-analytics-dropped" not in response.headers:
        assert stored == 1
    else:
        assert stored == 0
        if response.status_code != 202:
            assert response.json()["error"]
