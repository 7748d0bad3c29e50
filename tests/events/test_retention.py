"""The retention service deletes events older than the retention period, and only those."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from tests.server.helpers import listen_to_every_event

from headwater.server import services
from headwater.server.database import Database
from headwater.store import tables

from .conftest import TestClient


@pytest.fixture
def one_day() -> Iterator[None]:
    services.set_retention_days(1)
    yield
    services.set_retention_days(None)


def test_old_events_their_inbox_rows_and_old_firings_are_deleted(
    client: TestClient, database_url: str, engine: sa.Engine, one_day: None
) -> None:
    listen_to_every_event(client)
    now = time.time()
    old, recent = str(uuid.uuid4()), str(uuid.uuid4())
    client.post(
        "/events",
        json=[
            {
                "id": old,
                "event": "x",
                "resource": {"headwater.resource.id": "r"},
                "occurred": now - 2 * 86400,
            },
            {
                "id": recent,
                "event": "x",
                "resource": {"headwater.resource.id": "r"},
                "occurred": now - 3600,
            },
        ],
    )
    with engine.begin() as conn:
        for occurred in (now - 3 * 86400, now - 60):
            conn.execute(
                sa.insert(tables.automation_firing).values(
                    id=uuid.uuid4(),
                    automation_id=uuid.uuid4(),
                    trigger_id="t",
                    state="TRIGGERED",
                    bucket_key="",
                    context={},
                    occurred=occurred,
                )
            )
    db = Database(database_url)
    try:
        outcome = services.round_services()["retention"](db, now)
    finally:
        db.dispose()

    assert outcome.changed == 2
    ids = [e["id"] for e in client.post("/events/filter", json={}).json()["events"]]
    assert ids == [recent]
    with engine.connect() as conn:
        inbox = conn.execute(sa.select(tables.event_inbox.c.event_id)).scalars().all()
        firings = conn.execute(sa.select(tables.automation_firing.c.occurred)).scalars().all()
    assert [str(i) for i in inbox] == [recent]
    assert len(firings) == 1 and firings[0] > now - 3600
