"""GET /api/health, what a container's HEALTHCHECK and a load balancer ask: 200 only when the database answers."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from analytics import app as app_module
from analytics.store import SQLiteStore
from tests.conftest import Harness


async def test_health_is_ok_when_the_database_answers(harness: Harness) -> None:
    response = await harness.client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "waiting_events": 0}


async def test_health_is_503_when_the_database_fails(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    await harness.store.close()  # its connections gone, as after a failure of the file system under it
    response = await harness.client.get("/api/health")
    assert response.status_code == 503 and response.headers["retry-after"] == "2"
    assert response.json() == {"status": "unavailable", "error": "the database does not answer", "waiting_events": 0}
    assert any("health check: the database does not answer" in r.getMessage() for r in caplog.records)


async def test_health_is_503_while_the_database_does_not_answer_and_200_again_after(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "HEALTH_TIMEOUT_S", 0.3)
    store = harness.store
    assert isinstance(store, SQLiteStore)
    # A statement that never ends holds the connection the check reads through, as a stuck disk would.
    endless = asyncio.create_task(
        store.admin.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n")
    )
    await asyncio.sleep(0.05)
    stuck = await harness.client.get("/api/health")
    assert stuck.status_code == 503 and stuck.json()["status"] == "unavailable"
    await store.admin.interrupt()
    with pytest.raises(sqlite3.OperationalError, match="interrupted"):
        await endless
    assert (await harness.client.get("/api/health")).status_code == 200
